"""Names shared by the whole benchmark: ablations, ground-truth conventions and how they pair.

One home, free of heavy imports, so that the masked forward, the ground truth, scoring, the
leaderboard, the CLI and scripts (and a later model backend) agree on the same names.
"""

# How a removed edge's output is replaced: by zero, by the output on the paired corrupted input,
# or by the mean output over a reference set.
ABLATIONS = ("zero", "resample", "mean")
# The ground-truth circuits a task can have: structural (weights), zero and resample (ablation)
# are edge sets every Tracr task derives; `published` is a circuit a paper reports for a real
# language model, at the level it was reported (the IOI heads of Wang et al. 2022 on GPT-2
# small: heads, not edges).
EDGE_CONVENTIONS = ("structural", "zero", "resample")
NODE_CONVENTIONS = ("published",)
CONVENTIONS = EDGE_CONVENTIONS + NODE_CONVENTIONS
# The convention each ablation should recover: mean ablation has none of its own, so zero.
MATCHING = {"zero": "zero", "resample": "resample", "mean": "zero"}


def convention_for(ablation: str, has_truth) -> str:
    """The convention a run under `ablation` is scored against: its matching one, else the
    published circuit when only that exists (a real language model). `has_truth(c)` says
    whether the run's rows have convention c."""
    matching = MATCHING.get(ablation, "zero")
    if not has_truth(matching) and any(has_truth(c) for c in NODE_CONVENTIONS):
        return next(c for c in NODE_CONVENTIONS if has_truth(c))
    return matching
