"""Recovery of a ground truth: set overlap for circuits, ranking quality for scores, ROC for sweeps.

All functions take plain Python collections or numpy vectors so they are easy to test by hand.
"""
from __future__ import annotations

import re

import numpy as np
from scipy.stats import bootstrap, rankdata

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000


def overlap(circuit, truth) -> dict:
    """Precision, recall, F1 and exact match of a circuit against a ground-truth edge set.

    Undefined values (precision of an empty circuit, recall of an empty truth) are None."""
    circuit, truth = set(circuit), set(truth)
    tp = len(circuit & truth)
    precision = tp / len(circuit) if circuit else None
    recall = tp / len(truth) if truth else None
    f1 = (2 * tp / (len(circuit) + len(truth))) if (circuit or truth) else None
    return {"precision": precision, "recall": recall, "f1": f1, "exact": circuit == truth}


SCORE_RESOLUTION = 1e-9  # relative to the largest |score|: finer differences are float noise


def comparable(scores) -> np.ndarray:
    """Scores rounded to SCORE_RESOLUTION of the largest |score|, so that rankings compare
    only differences the arithmetic resolves: an edge whose exact attribution is 0 comes out
    as 0 or 8.5e-13 depending on the CPU's kernels (measured on reverse's EAP scores), and
    without this the order of such ties, hence AUROC and top-k circuits, followed the CPU."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.abs(s[np.isfinite(s)])
    scale = finite.max() if finite.size else 0.0
    if scale == 0:
        return s
    quantum = SCORE_RESOLUTION * scale
    return np.where(np.isfinite(s), np.round(s / quantum) * quantum, s)


def ranked_indices(scores) -> np.ndarray:
    """Positions of a score vector (canonical order) from the highest score down (comparable
    scores; ties in canonical order)."""
    values = comparable(scores)
    return np.lexsort((np.arange(len(values)), -values))


def roc_auc(scores, labels) -> float | None:
    """Exact ROC-AUC of a ranking (ties count half, scores compared at SCORE_RESOLUTION): the
    probability that a random true edge outscores a random other edge. None when either class
    is empty."""
    s = comparable(scores)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)  # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def heads_of(edges) -> set:
    """The attention heads that write into a circuit (the writers of its edges): the node-level
    view of an edge circuit that a published head-level circuit is compared with."""
    return {w for w in (e.split("->")[0] for e in edges) if is_head(w)}


def is_head(node: str) -> bool:
    return re.fullmatch(r"a\d+\.h\d+", node) is not None


def head_scores(scores, outgoing) -> list[float]:
    """Per head, the largest score among the edges it writes (`outgoing[i]`: the positions in
    the score vector of head i's edges): a head matters as much as its most important output."""
    values = np.asarray(scores, dtype=np.float64)
    return [float(values[idx].max()) if len(idx) else -np.inf for idx in outgoing]


def roc_point(circuit, truth, all_edges) -> tuple[float, float]:
    """(false positive rate, true positive rate) of one circuit."""
    circuit, truth = set(circuit), set(truth)
    n_pos, n_neg = len(truth), len(all_edges) - len(truth)
    tpr = len(circuit & truth) / n_pos if n_pos else 0.0
    fpr = len(circuit - truth) / n_neg if n_neg else 0.0
    return fpr, tpr


def sweep_auc(points) -> dict:
    """Area under a family of ROC points (one per circuit of a sweep), with (0,0) and (1,1) added.

    trapezoid: straight lines between points sorted by FPR (the usual AUC).
    pessimistic: ACDC's staircase, which credits a TPR only from the FPR at which it is reached.
    """
    pts = sorted(set(points) | {(0.0, 0.0), (1.0, 1.0)})
    # keep the best TPR seen so far at each FPR (monotone envelope of the sweep)
    xs = np.array([p[0] for p in pts])
    ys = np.maximum.accumulate(np.array([p[1] for p in pts]))
    trapezoid = float(np.trapezoid(ys, xs))
    pessimistic = float(sum((xs[i + 1] - xs[i]) * ys[i] for i in range(len(xs) - 1)))
    return {"trapezoid": trapezoid, "pessimistic": pessimistic}


def ranking_counts(n_edges: int) -> list[int]:
    """Edge counts at which a ranking's top edges are scored: every count on small graphs, else
    12 fractions, dense at the small end where circuits live (each point is a masked forward
    over the evaluation split: half a second on the tiny language models here)."""
    if n_edges <= 64:
        return list(range(n_edges + 1))
    fractions = [0, .002, .005, .01, .02, .05, .1, .2, .3, .5, .7, 1]
    return sorted({round(f * n_edges) for f in fractions})


def normalised_faithfulness(faithfulness: float, empty: float) -> float:
    """1 - d(circuit) / d(empty circuit): 1 is the full model's behaviour (distance 0), 0 the
    empty circuit's; negative when a circuit is further from the full model than nothing."""
    if not (np.isfinite(faithfulness) and np.isfinite(empty)) or empty <= 0:
        return float("nan")
    return 1.0 - faithfulness / empty


def faithfulness_area(points) -> dict:
    """Areas over the fraction of edges kept x in [0, 1] of normalised faithfulness f(x), with
    the empty circuit (0, 0) and the full model (1, 1) as the ends, straight lines between:
    `area` = integral of f (higher is better; MIB's CPR on this normalisation) and `gap` =
    integral of |1 - f| (lower is better; MIB's CMD)."""
    pts = {0.0: 0.0, 1.0: 1.0}
    for x, f in points:
        if np.isfinite(x) and np.isfinite(f) and 0 < x < 1:
            pts[float(x)] = float(f)
    xs = np.array(sorted(pts))
    ys = np.array([pts[x] for x in xs])
    area = float(np.trapezoid(ys, xs))
    # |1 - f| is not linear where a segment crosses 1: integrate it exactly per segment
    gap = 0.0
    for (x0, y0), (x1, y1) in zip(zip(xs, 1 - ys), zip(xs[1:], 1 - ys[1:])):
        if y0 * y1 >= 0:
            gap += (x1 - x0) * abs(y0 + y1) / 2
        else:  # the segment crosses zero at t = y0 / (y0 - y1)
            t = y0 / (y0 - y1)
            gap += (x1 - x0) * (t * abs(y0) + (1 - t) * abs(y1)) / 2
    return {"area": area, "gap": float(gap)}


def ratio_interval(numerator, denominator, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of sum(numerator) / sum(denominator) over examples
    (scipy.stats.bootstrap, paired resampling, seeded): the spread of a mean faithfulness that
    comes from which evaluation examples were drawn."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    if num.size < 2 or not np.isfinite(num).all() or den.sum() <= 0:
        return float("nan"), float("nan")
    if np.ptp(num) == 0 and np.ptp(den) == 0:
        value = float(num.sum() / den.sum())
        return value, value
    res = bootstrap((num, den), lambda a, b, axis=-1: a.sum(axis) / np.maximum(b.sum(axis), 1),
                    paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
                    confidence_level=CONFIDENCE, method="percentile", rng=seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
