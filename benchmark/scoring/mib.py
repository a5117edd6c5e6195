"""MIB's circuit-localization metrics, CPR and CMD (Mueller et al. 2025), of a ranking.

As the MIB circuit track computes them (hannamw/MIB-circuit-track, evaluation.py
`evaluate_area_under_curve`, read for the facts): the circuits of the top n units, n =
int(p * units) (rounded down) for p in PERCENTAGES; each circuit's normalised faithfulness
f(C) = (m(C) - m(empty)) / (m(N) - m(empty)) with m the task's own metric averaged over the
evaluation split (N: the full model); the trapezoid rule over the points (p, f) on a linear p axis,
not divided by its range (0.999): an f of 1 everywhere has area 0.999. CPR is the area under f
from the ranking by signed score (higher is better); CMD the area under |1 - f| from the ranking
by |score| (lower is better), |1 - f| taken at the points as MIB does (not integrated exactly
where a segment crosses 1, unlike recovery.faithfulness_area).

Ours differ from MIB's in four stated ways: ties rank in canonical order (ranked_indices; MIB's
torch.argsort leaves them unspecified); circuits are not pruned of dangling edges (MIB prunes;
under resample ablation that changes nothing, since a component whose inputs are all ablated
outputs its corrupted value); on Tracr tasks, which have no task metric, m = -faithfulness (KL,
MSE to the full model), so f = 1 - F(C) / F(empty), our normalised faithfulness; and a record
whose `ranking` is "signed" (its scores are importances, not signed effects) is ranked as given
for CMD, where MIB takes |score| (the same ranking while the scores are >= 0, as every signed
method's here are).
"""
from __future__ import annotations

import math

import numpy as np

from benchmark.scoring.circuits import top_sets

PERCENTAGES = (.001, .002, .005, .01, .02, .05, .1, .2, .5, 1)


def mib_counts(n_units: int) -> list[int]:
    """Units kept at each of MIB's percentages: int(p * n), as MIB rounds."""
    return [int(p * n_units) for p in PERCENTAGES]


def mib_faithfulness(circuit: dict, empty: dict) -> float:
    """f(C) from two rows of measures (SplitEvaluator's): with the task's own metric where the
    task has one (`task_metric_circuit`, `task_metric_full`), else with m = -faithfulness.
    NaN where the empty circuit scores as the full model (nothing to normalise by)."""
    if _finite(circuit.get("task_metric_circuit")) and _finite(empty.get("task_metric_circuit")):
        m_c, m_e = circuit["task_metric_circuit"], empty["task_metric_circuit"]
        m_n = circuit["task_metric_full"]
    else:
        m_c, m_e, m_n = -circuit["faithfulness"], -empty["faithfulness"], 0.0
    if not all(_finite(v) for v in (m_c, m_e, m_n)) or m_n == m_e:
        return math.nan
    return (m_c - m_e) / (m_n - m_e)


def mib_areas(faithfulness) -> tuple[float, float]:
    """(area under f, area under |1 - f|) over PERCENTAGES, trapezoid rule on the linear axis;
    NaN if any point is."""
    f = np.asarray(faithfulness, dtype=np.float64)
    if len(f) != len(PERCENTAGES) or not np.isfinite(f).all():
        return math.nan, math.nan
    x = np.asarray(PERCENTAGES)
    dx = np.diff(x)
    under = float(np.sum(dx * (f[:-1] + f[1:]) / 2))
    gap = np.abs(1 - f)
    return under, float(np.sum(dx * (gap[:-1] + gap[1:]) / 2))


def mib_scores(units, signed, ranked, evaluate, empty: dict) -> dict:
    """{"mib_cpr", "mib_cmd"} of one ranking over `units`: `signed` the values ranked for CPR,
    `ranked` those ranked for CMD (the benchmark's ranking: |score| for signed effects);
    `evaluate(unit set) -> measures` (cached: most of these circuits are also `top=k` rows)."""
    counts = mib_counts(len(units))
    curves = []
    for values in (signed, ranked):
        curves.append([mib_faithfulness(evaluate(c), empty)
                       for c in top_sets(units, values, counts)])
    cpr, _ = mib_areas(curves[0])
    _, cmd = mib_areas(curves[1])
    return {"mib_cpr": _or_none(cpr), "mib_cmd": _or_none(cmd)}


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _or_none(v: float):
    return v if math.isfinite(v) else None
