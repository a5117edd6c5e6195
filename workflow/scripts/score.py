import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402

from benchmark.workflow.job_server import run_stage  # noqa: E402

sm = snakemake  # noqa: F821
redirect(sm)
run_stage("benchmark.scoring.stage:score_stage", sm.wildcards.task, sm.params.cache,
          list(sm.input.circuits), sm.output[0], sparsities=list(sm.params.sparsities),
          eval_examples=sm.params.eval_examples, config_hash_=sm.params.config_hash,
          device=getattr(sm.params, "device", "cpu"), threads=sm.threads)
