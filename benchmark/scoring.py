"""Recovery of a ground truth: set overlap for circuits, ranking quality for scores, ROC for sweeps.

All functions take plain Python collections so they are easy to test by hand.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def overlap(circuit, truth) -> dict:
    """Precision, recall, F1 and exact match of a circuit against a ground-truth edge set.

    Undefined values (precision of an empty circuit, recall of an empty truth) are None."""
    circuit, truth = set(circuit), set(truth)
    tp = len(circuit & truth)
    precision = tp / len(circuit) if circuit else None
    recall = tp / len(truth) if truth else None
    f1 = (2 * tp / (len(circuit) + len(truth))) if (circuit or truth) else None
    return {"precision": precision, "recall": recall, "f1": f1, "exact": circuit == truth}


def roc_auc(scores, labels) -> float | None:
    """Exact ROC-AUC of a ranking (ties count half): the probability that a random true edge
    outscores a random other edge. None when either class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)  # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def top_k(scores: dict, k: int, order) -> frozenset:
    """The k highest-scoring edges; ties broken by canonical edge order, so it is deterministic."""
    ranked = sorted(scores, key=lambda e: (-scores[e], order(e)))
    return frozenset(ranked[:k])


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
