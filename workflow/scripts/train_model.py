import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402
from benchmark.pipeline import model_stage  # noqa: E402

redirect(snakemake)  # noqa: F821
model_stage(snakemake.wildcards.model, snakemake.params.cache, snakemake.output[0])  # noqa: F821
