import sys; sys.path.insert(0, snakemake.scriptdir)  # noqa: E702,F821
from _log import redirect  # noqa: E402
from benchmark.pipeline import leaderboard_stage, provenance  # noqa: E402

sm = snakemake  # noqa: F821
redirect(sm)
leaderboard_stage(list(sm.input), sm.params.out_dir, provenance(dict(sm.params.config)))
