"""Send a job's stdout and stderr, and those of its child processes, to its Snakemake log."""
import os
import sys


def redirect(snakemake):
    log = open(snakemake.log[0], "w", buffering=1)
    for fd in (1, 2):  # at the descriptor level, so that an isolated method's output lands too
        os.dup2(log.fileno(), fd)
    sys.stdout = sys.stderr = log
    return log
