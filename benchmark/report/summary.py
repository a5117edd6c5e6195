"""The leaderboard's numbers: summary rows over seeds, computed from score rows alone.

Per task, one line per (ablation, method, example count, hyper-parameter setting) with medians
and inter-quartile ranges over seeds of faithfulness (of the discovered circuit, or at each fixed
sparsity for score methods), size, recovery of each ground-truth convention, and cost. A circuit
method swept over several settings (ACDC thresholds, Edge Pruning targets) gets one extra `sweep`
line with the ROC AUC of its settings. Failed, timed-out and invalid runs are counted and shown,
never dropped silently. Kept apart from rendering and plots so the numbers can be tested and
reused without either.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from benchmark.core.conventions import CONVENTIONS, convention_for
from benchmark.report.levels import NODE_SUMMARY_COLUMNS, edge_view, node_summary
from benchmark.report.spread import finite_values as _values
from benchmark.report.spread import median as _median
from benchmark.report.spread import with_spread as _with_spread
from benchmark.scoring.recovery import faithfulness_area, normalised_faithfulness, sweep_auc
from benchmark.scoring.schema import COLUMNS

KEY = ["task", "ablation", "method", "n_examples"]



def rows_convention(rows: pd.DataFrame, ablation: str) -> str:
    """The convention score rows of one ablation are read against (conventions.convention_for):
    the one with values in these rows."""
    return convention_for(ablation, lambda c: f"f1_{c}" in rows and rows[f"f1_{c}"].notna().any())

def sparsities_of(df: pd.DataFrame) -> list[float]:
    """The fixed sparsities at which score methods were evaluated (from circuit labels)."""
    labels = df.circuit.dropna().astype(str)
    return sorted({float(c.split("=", 1)[1]) for c in labels if c.startswith("sparsity=")})


def _truthy(s: pd.Series) -> pd.Series:
    return s.astype(str).str.lower().isin(["true", "1", "1.0"])


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """The columns the summary and plots use: metrics as floats, exact_* as bools, status
    filled."""
    unused = [c for c in COLUMNS if c.startswith(("precision_", "recall_"))]
    work = df.drop(columns=unused + ["agreement", "device", "hardware", "eval_examples",
                                     "eval_seen_in_discovery", "input_space"])
    text = {"task", "method", "params", "ablation", "circuit", "faithfulness_metric", "status",
            "error", "method_version", "task_version", "git_commit", "config_hash", "task_metric",
            "level"}
    for c in work.columns:
        # exact_*: missing (no ground truth: language models) stays missing
        if c.startswith(("exact_", "node_exact_")):
            work[c] = _truthy(work[c]).astype(float).where(work[c].notna())
        elif c not in text and c not in ("seed", "n_examples"):
            work[c] = pd.to_numeric(work[c], errors="coerce").astype(np.float64)
    work["status"] = work.status.fillna("failed").astype(str)
    work["params"] = work.params.fillna("{}").astype(str)
    return work


def curve_points(rows: pd.DataFrame) -> list[tuple[float, float]]:
    """(fraction of edges kept, normalised faithfulness) of circuit rows."""
    return [(k / n, normalised_faithfulness(f, e)) for k, n, f, e in
            zip(rows.edges_kept, rows.n_edges, rows.faithfulness, rows.faithfulness_empty)]


def area_per_seed(rows: pd.DataFrame) -> pd.Series:
    """Integrated faithfulness per seed of ok circuit rows (`top=` rows of a ranking, or a
    circuit method's discovered circuits)."""
    return rows.groupby("seed").apply(lambda s: faithfulness_area(curve_points(s))["area"],
                                      include_groups=False)


def _params(p) -> dict:
    return json.loads(p) if isinstance(p, str) and p.strip() else {}


def _params_order(p: str):
    """Sort key of a params JSON: numbers compare as numbers (threshold 2 before 10)."""
    return tuple((k, (0, v, "") if isinstance(v, (int, float)) else (1, 0, json.dumps(v)))
                 for k, v in sorted(_params(p).items()))


def run_status(g: pd.DataFrame) -> pd.Series:
    """Status per seed of one setting: the first non-ok status among its rows, else ok."""
    return g.groupby("seed").status.agg(
        lambda s: next((v for v in s if v != "ok"), "ok"))


def status_label(statuses: pd.Series) -> str:
    """'ok', or the non-ok kinds with counts, e.g. 'failed (2/3), timeout (1/3)'."""
    n = len(statuses)
    bad = statuses[statuses != "ok"].value_counts().sort_index()
    return ", ".join(f"{k} ({v}/{n})" for k, v in bad.items()) or "ok"


def method_kinds(df: pd.DataFrame) -> dict:
    """method -> 'circuit' or 'scores', from the circuit labels of its rows (node rows' too)."""
    kinds = {}
    for method, g in df.groupby("method"):
        labels = g.circuit.dropna().astype(str).str.removeprefix("node:")
        kinds[method] = ("circuit" if (labels == "discovered").any()
                         else "scores" if labels.str.startswith(("sparsity=", "top=")).any()
                         else "")
    return kinds


def _failures(g: pd.DataFrame) -> str:
    bad = g[g.status != "ok"].drop_duplicates(["seed", "status", "error"])
    return "; ".join(f"seed {s}: {st}: {_last_line(e)}"
                     for s, st, e in zip(bad.seed, bad.status, bad.error))


def _last_line(error) -> str:
    lines = [x for x in str(error if isinstance(error, str) else "").splitlines() if x.strip()]
    return lines[-1].strip()[:160] if lines else ""


def setting_row(key, g: pd.DataFrame, kind: str, sparsities) -> dict:
    """Summary over seeds of one (task, ablation, method, n, params): the edge-level columns
    from its edge rows (levels.edge_view), the node-level ones from its node rows."""
    task, ablation, method, n, params = key
    every, (g, circuit_level) = g, edge_view(g)
    conv = rows_convention(g, ablation)
    statuses = run_status(g)
    ok = g[g.status == "ok"]
    row = {"task": task, "ablation": ablation, "method": method, "n_examples": n,
           "params": params, "kind": kind, "level": "setting", "convention": conv,
           "runs": len(statuses), "failed": int((statuses != "ok").sum()),
           "status": status_label(statuses),
           "faithfulness_metric": ",".join(sorted(g.faithfulness_metric.dropna().unique()))}
    by_circuit = dict(list(ok.groupby("circuit", sort=False)))
    disc = by_circuit.get("discovered")
    if disc is not None:
        for name in ("faithfulness", "sparsity", "edges_kept"):
            _with_spread(row, name, disc[name])
        _with_spread(row, "task_metric_ratio", disc["task_metric_ratio"])
        _with_spread(row, "f1", disc[f"f1_{conv}"])
        for c in CONVENTIONS:
            row[f"f1_{c}"] = _median(disc[f"f1_{c}"])
            if disc[f"exact_{c}"].notna().any():
                row[f"exact_rate_{c}"] = f"{int(disc[f'exact_{c}'].sum())}/{len(statuses)}"
        if disc[f"exact_{conv}"].notna().any():
            exact = int(disc[f"exact_{conv}"].sum())
            row["exact_rate"] = f"{exact}/{len(statuses)}"
            row["exact_fraction"] = exact / len(statuses)
    curve = ok[ok.circuit.str.startswith("top=")] if kind == "scores" else disc
    if curve is not None and len(curve):
        _with_spread(row, "faith_area", area_per_seed(curve))
    for s in sparsities:
        if f"sparsity={s:g}" in by_circuit:
            _with_spread(row, f"faith@{s:g}", by_circuit[f"sparsity={s:g}"].faithfulness)
    per_run = ok.drop_duplicates("seed")
    if _values(per_run[f"auroc_{conv}"]).size:
        _with_spread(row, "auroc", per_run[f"auroc_{conv}"])
        for c in CONVENTIONS:
            row[f"auroc_{c}"] = _median(per_run[f"auroc_{c}"])
    for c in ("runtime_s", "forward_passes", "backward_passes", "peak_mem_mb"):
        row[c] = _median(per_run[c])
    row["failure"] = _failures(g)
    return row | node_summary(every, ablation, kind, circuit_level)


def sweep_points(rows: pd.DataFrame, conv: str) -> list[tuple[float, float]]:
    """ROC points (fpr, tpr) of the `conv` convention from discovered-circuit rows."""
    pts = rows[[f"fpr_{conv}", f"tpr_{conv}"]].dropna()
    return [(float(f), float(t)) for f, t in pts.itertuples(index=False)]


def sweep_row(key, g: pd.DataFrame) -> dict | None:
    """One line for a circuit method run at >= 2 settings: ROC AUC of the sweep, median over
    seeds (per seed: the ok settings' ROC points through scoring.sweep_auc), and its cost."""
    if g.params.nunique() < 2:
        return None
    task, ablation, method, n = key
    conv = rows_convention(g, ablation)
    ok = g[(g.status == "ok") & (g.circuit == "discovered")]
    aucs = [sweep_auc(sweep_points(s, conv)) for _, s in ok.groupby("seed")
            if s.params.nunique() >= 2]
    statuses = pd.concat([run_status(s) for _, s in g.groupby("params")])
    settings = [_params(p) for p in sorted(g.params.unique(), key=_params_order)]
    varying = _varying_keys(settings)
    summary = {k: [s.get(k) for s in settings] for k in varying}
    per_seed = ok.groupby("seed")[["runtime_s", "forward_passes", "backward_passes"]].sum(
        min_count=1)
    row = {"task": task, "ablation": ablation, "method": method, "n_examples": n,
           "params": json.dumps(summary, sort_keys=True), "kind": "circuit", "level": "sweep",
           "convention": conv, "runs": len(statuses), "failed": int((statuses != "ok").sum()),
           "status": status_label(statuses), "sweeps": len(aucs),
           "faithfulness_metric": ",".join(sorted(g.faithfulness_metric.dropna().unique()))}
    if len(ok):
        _with_spread(row, "faith_area", area_per_seed(ok))
    if aucs:
        _with_spread(row, "sweep_auc_trapezoid", pd.Series([a["trapezoid"] for a in aucs]))
        _with_spread(row, "sweep_auc_pessimistic", pd.Series([a["pessimistic"] for a in aucs]))
    for c in per_seed.columns:
        row[c] = _median(per_seed[c])
    return row


def _varying_keys(settings: list[dict]) -> list[str]:
    keys = sorted({k for s in settings for k in s})
    return [k for k in keys if len({json.dumps(s.get(k)) for s in settings}) > 1]


def _setting_labels(table: pd.DataFrame) -> list[str]:
    """Readable setting per line: the hyper-parameters that differ between a method's lines of
    one task, or that the method sweeps anywhere; '-' when there are none."""
    lines = table[table.level == "setting"]
    shown = {}
    for keys, t in [*lines.groupby(["task", "method"]), *lines.groupby(KEY)]:
        shown.setdefault(keys[2] if len(keys) == 4 else keys[1], set()).update(
            _varying_keys([_params(p) for p in t.params]))
    labels = []
    for method, level, p in zip(table.method, table.level, table.params):
        values = _params(p)
        if level == "sweep":
            n = len(next(iter(values.values()), []))
            labels.append(f"sweep over {', '.join(values)} ({n} settings)" if n else "sweep")
        else:
            keys = sorted(shown.get(method, ()))
            labels.append(", ".join(f"{k}={values.get(k)}" for k in keys) or "-")
    return labels


def summarise(df: pd.DataFrame, sparsities) -> pd.DataFrame:
    """The leaderboard table: setting lines, then a sweep line per swept circuit method."""
    df = prepare(df)
    kinds = method_kinds(df)
    rows = []
    for key, g in df.groupby(KEY, sort=True, dropna=False):
        kind = kinds.get(key[2], "")
        settings = dict(list(g.groupby("params", sort=False)))
        for p in sorted(settings, key=_params_order):
            rows.append(setting_row((*key, p), settings[p], kind, sparsities))
        if kind == "circuit":
            sweep = sweep_row(key, edge_view(g)[0])
            if sweep:
                rows.append(sweep)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=_column_order(sparsities))
    table.insert(5, "setting", _setting_labels(table))
    return table.reindex(columns=_column_order(sparsities))


def _column_order(sparsities) -> list[str]:
    """leaderboard.csv columns: identity, counts, medians each followed by its IQR, cost."""
    spread = lambda c: [c, f"{c}_iqr"]  # noqa: E731
    return ["task", "ablation", "method", "n_examples", "params", "setting", "kind", "level",
            "convention", "runs", "failed", "status", "faithfulness_metric",
            *spread("faithfulness"), *[x for s in sparsities for x in spread(f"faith@{s:g}")],
            *spread("faith_area"),
            *spread("sparsity"), *spread("edges_kept"), *spread("task_metric_ratio"),
            *spread("f1"), "exact_rate",
            "exact_fraction", *spread("auroc"), "sweeps", *spread("sweep_auc_trapezoid"),
            *spread("sweep_auc_pessimistic"),
            *[f"{m}_{c}" for c in CONVENTIONS for m in ("f1", "exact_rate", "auroc")],
            *NODE_SUMMARY_COLUMNS,
            "runtime_s", "forward_passes", "backward_passes", "peak_mem_mb", "failure"]


def split_notes(df: pd.DataFrame) -> dict[str, str]:
    """task -> how held-out its evaluation split is, from the score rows."""
    notes = {}
    if "eval_seen_in_discovery" not in df:
        return notes
    for task, g in df.groupby("task", sort=True):
        seen = pd.to_numeric(g.eval_seen_in_discovery, errors="coerce").dropna()
        space = pd.to_numeric(g.input_space, errors="coerce").dropna()
        if seen.empty:
            continue
        lo, hi = 100 * seen.min(), 100 * seen.max()
        share = f"{lo:.0f}%" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}%"
        notes[task] = (f"Evaluation inputs also seen in discovery: {share}"
                       + (f" ({int(space.iloc[0]):,} distinct inputs)" if len(space) else ""))
    return notes
