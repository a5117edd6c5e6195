"""Medians and inter-quartile ranges over seeds: the two numbers of every leaderboard cell.

Shared by the edge-level summary (summary.py) and its node-level columns (levels.py).
"""
from __future__ import annotations

import math

import numpy as np


def finite_values(s) -> np.ndarray:
    """The finite numbers of a column (expects numeric dtype; see summary.prepare)."""
    v = np.asarray(s, dtype=np.float64)
    return v[np.isfinite(v)]


def median(s) -> float:
    v = finite_values(s)
    return float(np.median(v)) if v.size else math.nan


def iqr(s) -> float:
    v = finite_values(s)
    return float(np.percentile(v, 75) - np.percentile(v, 25)) if v.size else math.nan


def with_spread(row: dict, name: str, values) -> None:
    """row[name] = the median of `values`, row[name_iqr] = their IQR."""
    row[name], row[f"{name}_iqr"] = median(values), iqr(values)
