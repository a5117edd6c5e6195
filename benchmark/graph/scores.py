"""Score vectors: one float64 per edge (or node) of a graph, in the graph's canonical order.

A method may give its scores as a vector in canonical order (a tensor, an array or a list: the
natural form at millions of edges) or as a dict {edge id: number} (small graphs, hand-written
methods). `score_vector` turns either into the one form the rest of the benchmark uses, a 1-D
float64 numpy array, after checking that it covers exactly the graph's units with finite real
numbers. float64 holds every float32 and float64 exactly, so the conversion changes no value.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from benchmark.graph.graph import Graph


def is_finite_number(v) -> bool:
    """A real number (not a bool) that is finite: what a score in a dict may be."""
    return (isinstance(v, numbers.Real) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def score_vector(scores, graph: Graph, level: str = "edge") -> np.ndarray:
    """`scores` as a float64 vector [n units] in canonical order, or a ValueError saying what is
    wrong: units missing or extra (dict), a wrong length (vector), non-real or non-finite values."""
    units = graph.units(level)
    if isinstance(scores, dict):
        if set(scores) != set(units):
            missing = set(units) - set(scores)
            extra = set(scores) - set(units)
            raise ValueError(f"scores must cover exactly the graph's {len(units)} {level}s; "
                             f"missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}")
        bad = [u for u, v in scores.items() if not is_finite_number(v)]
        if bad:
            raise ValueError(f"non-finite scores for {len(bad)} {level}s, e.g. {bad[:3]}")
        return np.array([float(scores[u]) for u in units], dtype=np.float64)
    values = _array(scores, level)
    if values.shape != (len(units),):
        raise ValueError(f"scores must cover exactly the graph's {len(units)} {level}s; got a "
                         f"vector of shape {tuple(values.shape)} (canonical order, "
                         f"graph.{level}s)")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"non-finite scores for {bad.size} {level}s, e.g. "
                         f"{[units[i] for i in bad[:3]]}")
    return values


def _array(scores, level: str) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        if scores.dtype == torch.bool or scores.is_complex():
            raise ValueError(f"scores must be real numbers, got a {scores.dtype} tensor")
        return scores.detach().to("cpu", torch.float64).numpy().copy()
    try:
        values = np.asarray(scores)
    except (TypeError, ValueError) as err:
        raise ValueError(f"scores must be a dict {{{level} id: number}} or a vector in "
                         f"canonical order, got {type(scores).__name__} ({err})") from None
    if values.dtype.kind not in "iuf":
        raise ValueError(f"scores must be a dict {{{level} id: number}} or a vector of real "
                         f"numbers in canonical order, got {type(scores).__name__} of dtype "
                         f"{values.dtype}")
    return np.array(values, dtype=np.float64)  # a copy: later edits of the input change nothing
