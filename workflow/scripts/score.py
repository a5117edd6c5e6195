import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402
from benchmark.score_stage import score_stage  # noqa: E402

sm = snakemake  # noqa: F821
redirect(sm)
score_stage(sm.wildcards.task, sm.params.cache, list(sm.input.circuits), sm.output[0],
            sparsities=sm.params.sparsities, eval_examples=sm.params.eval_examples,
            config_hash_=sm.params.config_hash)
