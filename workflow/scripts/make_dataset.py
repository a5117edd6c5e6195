import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402

from benchmark.workflow.job_server import run_stage  # noqa: E402

sm = snakemake  # noqa: F821
redirect(sm)
run_stage("benchmark.datasets:dataset_stage", sm.wildcards.task, sm.params.cache,
          int(sm.wildcards.n), int(sm.wildcards.seed), sm.params.eval_examples, sm.output[0],
          threads=sm.threads)
