"""The leaderboard's answer in one table: which method, at what cost, how sure.

From score rows alone. First one number per *run* (task, ablation, method, example count,
seed), every setting of a method pooled as its sweep:
- `faith_area`: integrated faithfulness, the area under normalised faithfulness over the
  fraction of edges kept (scoring.faithfulness_area): a score method's whole ranking, a circuit
  method's circuits joined by straight lines between the empty circuit and the full model;
- `recovery`: ROC AUC against the ground truth matching the ablation (a score method's ranking;
  a circuit method's sweep, or its one circuit's ROC point);
- `exact`: the run recovered that ground truth exactly (a ranking: its top edges are exactly the
  ground truth, AUROC 1; a circuit method: any of its circuits);
- `node_faith_area`, `node_recovery`: the same two at node level, from the node rows (a
  ranking's `node:top=k` circuits and node AUROC; a circuit method's node views and their
  sweep's ROC area against the node ground truth): every method has them, edge- or node-level;
- `mib_cpr`, `mib_cmd`: MIB's CPR and CMD of an edge ranking (benchmark.scoring.mib; none for
  circuit methods and node-level rankings, whose node-level values are in leaderboard.csv);
- `runtime_s`: wall seconds of discovery, every setting of the sweep together.
The edge-level numbers of a node-level method come from its circuits' edge views
(report.levels.edge_view).

Then, per (method, ablation), over the *matched cells* (task, ablation, seed at each task's main
example count: the one most methods ran at): the mean of each number with a 95% bootstrap
interval over cells, the mean rank among the methods of each cell with its interval, and, for
every pair of methods, a paired Wilcoxon signed-rank test over the cells both ran.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

from benchmark.report.levels import (
    NODE,
    edge_view,
    is_node_row,
    node_convention,
    node_curve_points,
)
from benchmark.report.signed_rank import signed_rank_p
from benchmark.report.summary import curve_points, method_kinds, prepare, rows_convention
from benchmark.scoring.recovery import BOOTSTRAP_RESAMPLES, CONFIDENCE, faithfulness_area, sweep_auc

CELL = ["task", "ablation", "n_examples", "seed"]
RUN = CELL + ["method"]
# metric -> True when higher is better (ranks: 1 is best)
METRICS = {"faith_area": True, "recovery": True, "exact": True, "node_faith_area": True,
           "node_recovery": True, "mib_cpr": True, "mib_cmd": False, "runtime_s": False}
LABELS = {"faith_area": "integrated faithfulness", "recovery": "recovery (AUROC)",
          "exact": "exact recoveries", "node_faith_area": "node integrated faithfulness",
          "node_recovery": "node recovery (AUROC)", "mib_cpr": "MIB CPR", "mib_cmd": "MIB CMD",
          "runtime_s": "runtime s"}
PAIRED_TEST = "Wilcoxon signed-rank (two-sided, exact with ties: report.signed_rank)"


def _median_or_nan(values) -> float:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    return float(np.median(v)) if v.size else math.nan


def _run_numbers(g: pd.DataFrame, kind: str, conv: str, ablation: str) -> dict:
    """The numbers of one run (all settings of one method in one cell)."""
    settings_ok = g.groupby("params").status.agg(lambda s: (s == "ok").all())
    out = {"settings": len(settings_ok), "failed_settings": int((~settings_ok).sum())}
    out.update(_node_numbers(g, kind, ablation))
    per_setting = g[g.status == "ok"].drop_duplicates("params")  # a node method's too
    out["runtime_s"] = float(per_setting.runtime_s.sum()) if len(per_setting) else math.nan
    g, _ = edge_view(g)
    ok = g[g.status == "ok"]
    truth = ok[f"f1_{conv}"].notna().any() if len(ok) else False
    if kind == "scores":
        per_setting = [(faithfulness_area(curve_points(s[s.circuit.str.startswith("top=")])),
                        s[f"auroc_{conv}"].iloc[0] if len(s) else math.nan)
                       for _, s in ok.groupby("params")]
        out["faith_area"] = _median_or_nan(a["area"] for a, _ in per_setting)
        for m in ("mib_cpr", "mib_cmd"):
            out[m] = _median_or_nan(s[m].iloc[0] for _, s in ok.groupby("params"))
        out["faith_gap"] = _median_or_nan(a["gap"] for a, _ in per_setting)
        if truth:
            out["recovery"] = _median_or_nan(r for _, r in per_setting)
            out["exact"] = float(out["recovery"] == 1.0) if np.isfinite(out["recovery"]) \
                else math.nan
    else:
        disc = ok[ok.circuit == "discovered"]
        if len(disc):
            area = faithfulness_area(curve_points(disc))
            out["faith_area"], out["faith_gap"] = area["area"], area["gap"]
            if truth:
                points = list(zip(disc[f"fpr_{conv}"], disc[f"tpr_{conv}"]))
                out["recovery"] = sweep_auc(points)["trapezoid"]
                out["exact"] = float(disc[f"exact_{conv}"].fillna(0).astype(bool).any())
    return out


def _node_numbers(g: pd.DataFrame, kind: str, ablation: str) -> dict:
    """node_faith_area and node_recovery of one run, from its node rows."""
    ok = g[g.status == "ok"]
    node = ok[is_node_row(ok)]
    conv = node_convention(ok, ablation) if len(node) else None
    areas, recoveries = [], []
    for _, s in node.groupby("params"):
        if kind == "scores":
            curve = s[s.circuit.str.startswith(NODE + "top=")]
            if conv:
                recoveries.append(s[f"node_auroc_{conv}"].iloc[0])
        else:
            curve = s[s.circuit == NODE + "discovered"]
        if len(curve):
            areas.append(faithfulness_area(node_curve_points(curve))["area"])
    out = {"node_faith_area": _median_or_nan(areas)}
    if kind != "scores" and conv:  # a sweep's circuits: the ROC area of their node views
        disc = node[node.circuit == NODE + "discovered"]
        if len(disc):
            points = list(zip(disc[f"node_fpr_{conv}"], disc[f"node_tpr_{conv}"]))
            recoveries = [sweep_auc(points)["trapezoid"]]
    out["node_recovery"] = _median_or_nan(recoveries)
    return out


def run_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run with its four numbers (NaN where a run failed or has no ground truth)."""
    work = prepare(df)
    kinds = method_kinds(work)
    rows = []
    for key, g in work.groupby(RUN, sort=True):
        conv = rows_convention(g, key[1])
        numbers = _run_numbers(g, kinds.get(key[4], ""), conv, key[1])
        if numbers["failed_settings"] == numbers["settings"]:  # nothing ran: a visible cell
            numbers.update({m: math.nan for m in METRICS})
        rows.append({**dict(zip(RUN, key)), **numbers})
    cols = RUN + ["settings", "failed_settings", *METRICS, "faith_gap"]
    return pd.DataFrame(rows).reindex(columns=cols)


def main_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs at each (task, ablation)'s main example count: the one the most methods ran at
    (ties: the larger count), so that ranks compare methods on the same footing."""
    if runs.empty:
        return runs
    counts = runs.groupby(["task", "ablation", "n_examples"]).method.nunique().reset_index()
    counts = counts.sort_values(["method", "n_examples"])
    main = counts.groupby(["task", "ablation"]).tail(1)[["task", "ablation", "n_examples"]]
    return runs.merge(main, on=["task", "ablation", "n_examples"])


def _interval(values, statistic=np.mean, seed: int = 0) -> tuple[float, float, float]:
    """(statistic, 95% percentile-bootstrap low, high) of finite values; NaNs when none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    value = float(statistic(v))
    if v.size < 2 or np.ptp(v) == 0:
        return value, value, value
    res = bootstrap((v,), lambda x, axis=-1: statistic(x, axis=axis), vectorized=True,
                    n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE,
                    method="percentile", rng=seed)
    return value, float(res.confidence_interval.low), float(res.confidence_interval.high)


def _ranks(cells: pd.DataFrame, metric: str) -> pd.Series:
    """Rank of each run among the methods of its cell on `metric` (1 best, ties averaged); a
    run that failed ranks below every run that did not (where the metric exists at all)."""
    worst = -np.inf if METRICS[metric] else np.inf
    failed = cells.failed_settings == cells.settings
    values = cells[metric].where(~failed, worst)
    defined = cells.assign(v=cells[metric]).groupby(CELL).v.transform(lambda v: v.notna().any())
    values = values.where(defined)
    return values.groupby([cells[c] for c in CELL]).rank(ascending=not METRICS[metric],
                                                         method="average")


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """summary.csv: one row per (method, ablation) over the matched cells."""
    cells = main_cells(run_table(df))
    columns = ["method", "ablation", "tasks", "runs", "failed"]
    for m in METRICS:
        columns += [m, f"{m}_low", f"{m}_high", f"{m}_rank", f"{m}_rank_low",
                    f"{m}_rank_high", f"{m}_runs"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    for m in METRICS:
        cells[f"{m}_rank"] = _ranks(cells, m)
    rows = []
    for (method, ablation), g in cells.groupby(["method", "ablation"], sort=True):
        row = {"method": method, "ablation": ablation, "tasks": g.task.nunique(),
               "runs": len(g), "failed": int((g.failed_settings == g.settings).sum())}
        for m in METRICS:
            stat = np.median if m == "runtime_s" else np.mean
            row[m], row[f"{m}_low"], row[f"{m}_high"] = _interval(g[m], stat)
            row[f"{m}_rank"], row[f"{m}_rank_low"], row[f"{m}_rank_high"] = \
                _interval(g[f"{m}_rank"])
            row[f"{m}_runs"] = int(g[m].notna().sum())
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["ablation", "faith_area_rank", "method"],
                             na_position="last").reset_index(drop=True)


def pairwise_tests(df: pd.DataFrame) -> pd.DataFrame:
    """pairwise.csv: per ablation and metric, every pair of methods over the cells both ran,
    the median paired difference (a - b) and the Wilcoxon signed-rank p-value."""
    cells = main_cells(run_table(df))
    rows = []
    for ablation, a_cells in cells.groupby("ablation", sort=True):
        for m in ("faith_area", "recovery", "node_faith_area", "node_recovery", "mib_cpr",
                  "runtime_s"):
            wide = a_cells.pivot_table(index=CELL, columns="method", values=m, aggfunc="first")
            for a, b in itertools.combinations(sorted(wide.columns), 2):
                both = wide[[a, b]].dropna()
                if len(both) == 0:
                    continue
                diff = (both[a] - both[b]).to_numpy()
                p = _wilcoxon_p(diff)
                rows.append({"ablation": ablation, "metric": m, "method_a": a, "method_b": b,
                             "cells": len(both), "median_difference": float(np.median(diff)),
                             "a_better": int((diff > 0).sum() if METRICS[m]
                                             else (diff < 0).sum()),
                             "b_better": int((diff < 0).sum() if METRICS[m]
                                             else (diff > 0).sum()),
                             "test": PAIRED_TEST, "p_value": p})
    return pd.DataFrame(rows, columns=["ablation", "metric", "method_a", "method_b", "cells",
                                       "median_difference", "a_better", "b_better", "test",
                                       "p_value"])


def _wilcoxon_p(diff: np.ndarray) -> float:
    """p-value of the signed-rank test (exact, ties included: report.signed_rank); 1 when
    every difference is 0, NaN with one cell."""
    if len(diff) < 2:
        return math.nan
    return signed_rank_p(diff)
