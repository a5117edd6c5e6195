"""The exact two-sided p-value of the Wilcoxon signed-rank test, ties included.

scipy's `wilcoxon` takes a permutation test when differences tie or are zero: 2^n sign flips up
to n = 13, 9,999 random ones above, so a p-value then depends on an unseeded generator, and
the leaderboard spent 100 of its 140 s there (the default run's 947 paired tests). Under the
null each nonzero difference's sign is + or - with probability 1/2 independently, so the
statistic (the sum of the ranks of the positive differences, ties given their mean rank) has an
exact distribution that a short dynamic programme over doubled (integer) ranks computes: the same
p-value as enumerating every sign flip, for any n, deterministic and in microseconds.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata


def signed_rank_p(diff) -> float:
    """Two-sided p = min(1, 2 min(P(T <= t), P(T >= t))), T the sum of the positive
    differences' ranks; zero differences are dropped (Wilcoxon's zero method). 1 when every
    difference is 0, NaN for no differences."""
    d = np.asarray(diff, dtype=np.float64)
    if d.size == 0:
        return math.nan
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    doubled = np.rint(2 * rankdata(np.abs(d))).astype(np.int64)  # mean ranks are k/2
    counts = np.zeros(int(doubled.sum()) + 1)
    counts[0] = 1.0
    for r in doubled:  # each rank (>= 2 doubled) counts in T or not, each with probability 1/2
        counts[r:] = counts[r:] + counts[:-r].copy()
        counts /= 2.0
    t = int(doubled[d > 0].sum())
    low, high = counts[:t + 1].sum(), counts[t:].sum()
    return float(min(1.0, 2 * min(low, high)))
