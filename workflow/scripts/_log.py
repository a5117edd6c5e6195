"""Send a job's stdout and stderr to its Snakemake log file."""
import sys


def redirect(snakemake):
    log = open(snakemake.log[0], "w", buffering=1)
    sys.stdout = sys.stderr = log
    return log
