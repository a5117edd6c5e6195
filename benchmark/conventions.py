"""Names shared by the whole benchmark: ablations, ground-truth conventions and how they pair.

One home, free of heavy imports, so that the masked forward, the ground truth, scoring, the
leaderboard, the CLI and scripts (and a later model backend) agree on the same names.
"""

# How a removed edge's output is replaced: by zero, by the output on the paired corrupted input,
# or by the mean output over a reference set.
ABLATIONS = ("zero", "resample", "mean")
# The ground-truth circuits each task has: structural (weights), zero and resample (ablation).
CONVENTIONS = ("structural", "zero", "resample")
# The convention each ablation should recover: mean ablation has none of its own, so zero.
MATCHING = {"zero": "zero", "resample": "resample", "mean": "zero"}
