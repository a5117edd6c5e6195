import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402

from benchmark.workflow.job_server import run_stage  # noqa: E402

sm = snakemake  # noqa: F821
redirect(sm)
run_stage("benchmark.workflow.stages:model_stage", sm.wildcards.model, sm.params.cache, sm.output[0],
          threads=sm.threads)
