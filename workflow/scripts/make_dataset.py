import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402
from benchmark.datasets import dataset_stage  # noqa: E402

sm = snakemake  # noqa: F821
redirect(sm)
dataset_stage(sm.wildcards.task, sm.params.cache, int(sm.wildcards.n), int(sm.wildcards.seed),
              sm.params.eval_examples, sm.output[0])
