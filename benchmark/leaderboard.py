"""The leaderboard, built only from score rows: tables (CSV, Markdown, HTML) and plots.

Per task, one line per (ablation, method, example count, hyper-parameter setting) with medians
and inter-quartile ranges over seeds of faithfulness (of the discovered circuit, or at each fixed
sparsity for score methods), size, recovery of each ground-truth convention, and cost. A circuit
method swept over several settings (ACDC thresholds, Edge Pruning targets) gets one extra `sweep`
line with the ROC AUC of its settings. Failed, timed-out and invalid runs are counted and shown,
never dropped silently.

Entry point: `build_leaderboard(score_files, out_dir, provenance)`.
"""
from __future__ import annotations

import html
import io
import itertools
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.artifact import atomic_write_bytes, atomic_write_text  # noqa: E402
from benchmark.evaluate import COLUMNS  # noqa: E402
from benchmark.ground_truth import CONVENTIONS  # noqa: E402
from benchmark.scoring import sweep_auc  # noqa: E402

# The ground truth each ablation should recover: mean ablation keeps the zero convention.
MATCHING = {"zero": "zero", "resample": "resample", "mean": "zero"}
KEY = ["task", "ablation", "method", "n_examples"]
SORT = ["task", "method", "ablation", "n_examples", "seed", "params", "circuit"]
INTEGER_COLUMNS = ["seed", "n_examples", "n_edges", "edges_kept", "forward_passes",
                   "backward_passes", "eval_examples"]
PLOTS = ["faithfulness_vs_sparsity.png", "roc.png", "runtime_vs_examples.png"]
FAITH_FLOOR = 1e-6  # plots only: faithfulness below this (exact circuits, float noise) sits here


# ---------------------------------------------------------------- reading


def read_scores(score_files) -> pd.DataFrame:
    """Every row of the score CSVs, in COLUMNS order, sorted deterministically."""
    frames = []
    for path in sorted(map(str, score_files)):
        try:
            frame = pd.read_csv(path, dtype={"params": str, "circuit": str, "error": str})
        except pd.errors.EmptyDataError:
            continue
        if len(frame):
            frames.append(frame.reindex(columns=COLUMNS))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    for c in INTEGER_COLUMNS:
        values = pd.to_numeric(df[c], errors="coerce")
        if (values.dropna() % 1 == 0).all():
            df[c] = values.astype("Int64")
    return df.sort_values(SORT, kind="mergesort", na_position="last").reset_index(drop=True)


def sparsities_of(df: pd.DataFrame) -> list[float]:
    """The fixed sparsities at which score methods were evaluated (from circuit labels)."""
    labels = df.circuit.dropna().astype(str)
    return sorted({float(c.split("=", 1)[1]) for c in labels if c.startswith("sparsity=")})


# ---------------------------------------------------------------- statistics


def _values(s) -> np.ndarray:
    """The finite numbers of a column (expects numeric dtype; see prepare)."""
    v = np.asarray(s, dtype=np.float64)
    return v[np.isfinite(v)]


def _median(s) -> float:
    v = _values(s)
    return float(np.median(v)) if v.size else math.nan


def _iqr(s) -> float:
    v = _values(s)
    return float(np.percentile(v, 75) - np.percentile(v, 25)) if v.size else math.nan


def _truthy(s: pd.Series) -> pd.Series:
    return s.astype(str).str.lower().isin(["true", "1", "1.0"])


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """The columns the summary and plots use: metrics as floats, exact_* as bools, status
    filled."""
    unused = [c for c in COLUMNS if c.startswith(("precision_", "recall_"))]
    work = df.drop(columns=unused + ["agreement", "device", "hardware", "eval_examples",
                                     "eval_seen_in_discovery", "input_space"])
    text = {"task", "method", "params", "ablation", "circuit", "faithfulness_metric", "status",
            "error", "method_version", "task_version", "git_commit", "config_hash"}
    for c in work.columns:
        if c.startswith("exact_"):
            work[c] = _truthy(work[c])
        elif c not in text and c not in ("seed", "n_examples"):
            work[c] = pd.to_numeric(work[c], errors="coerce").astype(np.float64)
    work["status"] = work.status.fillna("failed").astype(str)
    work["params"] = work.params.fillna("{}").astype(str)
    return work


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
    """method -> 'circuit' or 'scores', from the circuit labels of its rows."""
    kinds = {}
    for method, g in df.groupby("method"):
        labels = g.circuit.dropna().astype(str)
        kinds[method] = ("circuit" if (labels == "discovered").any()
                         else "scores" if labels.str.startswith("sparsity=").any() else "")
    return kinds


# ---------------------------------------------------------------- summary rows


def _with_spread(row: dict, name: str, values: pd.Series) -> None:
    row[name], row[f"{name}_iqr"] = _median(values), _iqr(values)


def _failures(g: pd.DataFrame) -> str:
    bad = g[g.status != "ok"].drop_duplicates(["seed", "status", "error"])
    return "; ".join(f"seed {s}: {st}: {_last_line(e)}"
                     for s, st, e in zip(bad.seed, bad.status, bad.error))


def _last_line(error) -> str:
    lines = [x for x in str(error if isinstance(error, str) else "").splitlines() if x.strip()]
    return lines[-1].strip()[:160] if lines else ""


def setting_row(key, g: pd.DataFrame, kind: str, sparsities) -> dict:
    """Summary over seeds of one (task, ablation, method, n, params)."""
    task, ablation, method, n, params = key
    conv = MATCHING.get(ablation, "zero")
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
        _with_spread(row, "f1", disc[f"f1_{conv}"])
        for c in CONVENTIONS:
            row[f"f1_{c}"] = _median(disc[f"f1_{c}"])
            row[f"exact_rate_{c}"] = f"{int(disc[f'exact_{c}'].sum())}/{len(statuses)}"
        exact = int(disc[f"exact_{conv}"].sum())
        row["exact_rate"] = f"{exact}/{len(statuses)}"
        row["exact_fraction"] = exact / len(statuses)
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
    return row


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
    conv = MATCHING.get(ablation, "zero")
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
            sweep = sweep_row(key, g)
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
            *spread("sparsity"), *spread("edges_kept"), *spread("f1"), "exact_rate",
            "exact_fraction", *spread("auroc"), "sweeps", *spread("sweep_auc_trapezoid"),
            *spread("sweep_auc_pessimistic"),
            *[f"{m}_{c}" for c in CONVENTIONS for m in ("f1", "exact_rate", "auroc")],
            "runtime_s", "forward_passes", "backward_passes", "peak_mem_mb", "failure"]


# ---------------------------------------------------------------- display


def _fmt(v, col: str = "") -> str:
    """A number for people: 3 significant digits, counts as integers, NaN as blank."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
        return str(v)
    if col in ("edges_kept", "forward_passes", "backward_passes", "n_examples", "runs"):
        return f"{v:g}" if abs(v) < 1e6 else f"{v:.3g}"
    if v == 0:
        return "0"
    text = f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.1e}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


def _cell(r, col: str) -> str:
    """Median, with the IQR in parentheses when it shows in 3 significant digits."""
    text = _fmt(r.get(col), col)
    spread = r.get(f"{col}_iqr")
    median = r.get(col)
    if (text and isinstance(spread, float) and not math.isnan(spread) and spread > 0
            and spread >= 0.005 * abs(median)):
        text += f" ({_fmt(spread, col)})"
    return text


def display_columns(table: pd.DataFrame, sparsities) -> list[tuple[str, tuple]]:
    """(header, table columns) shown in Markdown and HTML; two columns share a cell as 'a / b'.
    Columns without any value are left out."""
    cols = [("ablation", ("ablation",)), ("method", ("method",)), ("n", ("n_examples",)),
            ("setting", ("setting",)), ("runs", ("runs",)), ("status", ("status",)),
            ("faithfulness", ("faithfulness",)),
            *[(f"faith@{s:g}", (f"faith@{s:g}",)) for s in sparsities],
            ("sparsity", ("sparsity",)), ("edges", ("edges_kept",)), ("F1", ("f1",)),
            ("exact", ("exact_rate",)), ("AUROC", ("auroc",)),
            ("sweep AUC trap. / pess.", ("sweep_auc_trapezoid", "sweep_auc_pessimistic")),
            ("runtime s", ("runtime_s",)), ("passes fwd / bwd", ("forward_passes",
                                                                   "backward_passes"))]
    always = {"ablation", "method", "n_examples", "setting", "runs", "status"}
    return [(h, cs) for h, cs in cols if all(c in table.columns for c in cs)
            and (cs[0] in always or any(table[c].notna().any() for c in cs))]


def display_rows(t: pd.DataFrame, cols) -> list[tuple[dict, list[str]]]:
    """(table row, formatted cells) per line of one task's table."""
    out = []
    for _, r in t.iterrows():
        r = r.to_dict()
        cells = []
        for _, cs in cols:
            if len(cs) > 1:
                parts = [_fmt(r[c], c) for c in cs]
                cells.append(" / ".join(p or "-" for p in parts) if any(parts) else "")
            else:
                cells.append(_fmt(r[cs[0]], cs[0]) if cs[0] in ("runs", "n_examples")
                             else _cell(r, cs[0]))
        out.append((r, cells))
    return out


LEGEND = ("Cells: median over seeds, with the inter-quartile range in parentheses when it is "
          "not negligible (>= 0.5% of the median). Faithfulness: KL(full || circuit) at the "
          "non-BOS positions for categorical tasks, MSE for numerical ones, on the held-out "
          "split; lower is better. faith@s: the top-ranked edges of a score method at sparsity "
          "s. setting: the hyper-parameters a method sweeps or that differ between its lines of "
          "a task ('-': none). F1, exact and AUROC are against the ground truth matching the "
          "ablation (zero -> zero, resample -> resample, mean -> zero); exact counts the runs "
          "that recovered it exactly, out of all runs (a failed run did not). A `sweep` line "
          "summarises a circuit method over its settings: the ROC AUC of the settings' points "
          "per seed (trapezoid, and ACDC's pessimistic staircase), and the cost of the whole "
          "sweep. status counts the runs that failed, timed out or gave non-finite numbers. "
          "leaderboard.csv has every hyper-parameter, every convention and the IQRs; scores.csv "
          "has every row.")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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


def to_markdown(table: pd.DataFrame, sparsities, notes: dict | None = None) -> str:
    """A section per task with one Markdown table; failures bold and listed below."""
    out = ["# circuitbench leaderboard", "", LEGEND, ""]
    if table.empty:
        out += ["No score rows.", ""]
    for task, t in table.groupby("task", sort=True):
        cols = display_columns(t, sparsities)
        out += [f"## {task} ({t.faithfulness_metric.iloc[0]})", ""]
        if (notes or {}).get(task):
            out += [notes[task] + ".", ""]
        out += ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
        for r, cells in display_rows(t, cols):
            if r["failed"]:
                cells = [f"**{x}**" if cs[0] == "status" else x
                         for (_, cs), x in zip(cols, cells)]
            out.append("| " + " | ".join(_md_escape(x) for x in cells) + " |")
        failures = _failure_lines(t)
        if failures:
            out += ["", "Failures:", ""] + [f"- {_md_escape(x)}" for x in failures]
        out.append("")
    return "\n".join(out) + "\n"


def _failure_lines(t: pd.DataFrame) -> list[str]:
    rows = t[(t.level == "setting") & (t.failed > 0)]
    return [f"{r.method} ({r.ablation}, n={r.n_examples}, {r.setting}): {r.failure}"
            for r in rows.itertuples()]


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1500px;
 padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
p.legend{font-size:13px;color:#444;max-width:1100px;line-height:1.4}
div.scroll{overflow-x:auto;max-width:100%} table.board{max-width:100%}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d4d4d4;padding:2px 5px;text-align:right;white-space:nowrap}
span.iqr{color:#888;font-size:11px}
th{background:#eef1f7;white-space:normal;vertical-align:bottom} th.l{text-align:left}
td.l{text-align:left} td.w{white-space:normal;min-width:7em}
tr:nth-child(even) td{background:#fafafa}
tr.sweep td{background:#f1f6ee;font-style:italic}
tr.failed td{background:#fdecec} td.bad{color:#b00020;font-weight:bold}
tr.group td{border-top:2px solid #999}
ul.failures{font-size:12px;color:#7a0014}
figure{margin:1em 0} img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px;color:#666}
footer{margin-top:3em;font-size:12px;color:#555;border-top:1px solid #ddd}
footer td,footer th{font-size:12px;text-align:left;white-space:normal}
"""


TEXT_COLUMNS = ("ablation", "method", "setting", "status")


def _html_cell(c: str, text: str, failed: bool) -> str:
    esc = html.escape
    if c == "status":
        return f"<td class='l{' bad' if failed else ''}'>{esc(text)}</td>"
    if c == "setting":
        return f"<td class='l w'>{esc(text)}</td>"
    if c in TEXT_COLUMNS:
        return f"<td class='l'>{esc(text)}</td>"
    value, _, spread = text.partition(" (")
    if spread:
        return f"<td>{esc(value)} <span class='iqr'>({esc(spread)}</span></td>"
    return f"<td>{esc(text)}</td>"


def html_table(t: pd.DataFrame, cols) -> str:
    """One task's table; failed lines red, sweep lines green, a rule between ablations."""
    head = "".join(f"<th{' class=l' if cs[0] in TEXT_COLUMNS else ''}>"
                   f"{html.escape(h).replace('@', '<wbr>@')}</th>" for h, cs in cols)
    body, previous = [], None
    for r, cells in display_rows(t, cols):
        classes = [name for name, on in (("failed", r["failed"] > 0),
                                         ("sweep", r["level"] == "sweep"),
                                         ("group", previous not in (None, r["ablation"])))
                   if on]
        previous = r["ablation"]
        tds = "".join(_html_cell(cs[0], x, r["failed"] > 0)
                      for (_, cs), x in zip(cols, cells))
        body.append(f"<tr class='{' '.join(classes)}'>{tds}</tr>")
    return ("<div class='scroll'><table class='board'><thead><tr>" + head + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div>")


def to_html(table: pd.DataFrame, df: pd.DataFrame, plots: list[str], provenance: dict,
            sparsities) -> str:
    """A static page: a table per task (failed lines red), the plots, a provenance footer."""
    esc = html.escape
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<title>circuitbench leaderboard</title>", f"<style>{CSS}</style></head><body>",
             "<h1>circuitbench leaderboard</h1>", f"<p class='legend'>{esc(LEGEND)}</p>"]
    if table.empty:
        parts.append("<p>No score rows.</p>")
    links = [f"<a href='#{esc(t)}'>{esc(t)}</a>" for t in sorted(table.task.unique())]
    parts.append("<p>Tasks: " + " &middot; ".join(links + ["<a href='#plots'>plots</a>",
                                                           "<a href='#provenance'>provenance</a>"])
                 + "</p>")
    for task, t in table.groupby("task", sort=True):
        cols = display_columns(t, sparsities)
        parts.append(f"<h2 id='{esc(task)}'>{esc(task)} "
                     f"<small>({esc(t.faithfulness_metric.iloc[0])})</small></h2>")
        note = split_notes(df).get(task)
        if note:
            parts.append(f"<p class='split'>{esc(note)}.</p>")
        parts.append(html_table(t, cols))
        failures = _failure_lines(t)
        if failures:
            parts.append("<ul class='failures'>" + "".join(f"<li>{esc(x)}</li>" for x in failures)
                         + "</ul>")
    parts.append("<h2 id='plots'>Plots</h2>")
    for p in plots:
        title = Path(p).stem.replace("_", " ")
        parts.append(f"<figure><img src='{esc(p)}' alt='{esc(title)}'>"
                     f"<figcaption>{esc(p)}</figcaption></figure>")
    parts.append(provenance_html(df, provenance))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _distinct(df: pd.DataFrame, col: str) -> str:
    values = sorted({str(v) for v in df[col].dropna() if str(v) != ""})
    return ", ".join(values) or "(none)"


def provenance_html(df: pd.DataFrame, provenance: dict) -> str:
    """Footer: the build's provenance dict, and the versions and commits found in the rows."""
    esc = html.escape
    items = []
    for k in sorted(provenance):
        v = provenance[k]
        text = (", ".join(f"{p} {v[p]}" for p in sorted(v)) if isinstance(v, dict)
                else json.dumps(v) if isinstance(v, (list, tuple)) else str(v))
        items.append((f"build {k}", text))
    versions = df.dropna(subset=["method"]).drop_duplicates(["method", "method_version"])
    items += [("result git commits", _distinct(df, "git_commit")),
              ("result config hashes", _distinct(df, "config_hash")),
              ("method versions", ", ".join(
                  f"{m} v{v}" for m, v in sorted(zip(versions.method.astype(str),
                                                     versions.method_version.astype(str))))),
              ("task versions", ", ".join(
                  f"{t} v{v}" for t, v in sorted(set(zip(df.task.astype(str),
                                                         df.task_version.astype(str)))))),
              ("hardware", _distinct(df, "hardware")), ("devices", _distinct(df, "device"))]
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items)
    return f"<footer id='provenance'><h3>Provenance</h3><table>{rows}</table></footer>"


# ---------------------------------------------------------------- plots


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _empty_plot(path: Path, message: str) -> None:
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.axis("off")
    _save(fig, path)


def plot_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows (numeric) with the ROC point of the convention matching their ablation."""
    ok = prepare(df)
    ok = ok[ok.status == "ok"].copy()
    ok["n_examples"] = pd.to_numeric(ok.n_examples, errors="coerce").astype(np.float64)
    ok["convention"] = ok.ablation.map(MATCHING).fillna("zero")
    for m in ("fpr", "tpr"):
        ok[m] = np.nan
        for c in CONVENTIONS:
            here = ok.convention == c
            ok.loc[here, m] = ok.loc[here, f"{m}_{c}"]
    return ok


def _relplot(data: pd.DataFrame, x: str, y: str, palette: dict):
    """Scatter panels, one per task (wrapped at 4): hue method, marker ablation.

    Methods often land on the same points (EAP and EAP-IG on Tracr): each method is drawn
    smaller than, and on top of, the ones before it, so every method stays visible.
    """
    tasks = sorted(data.task.unique())
    order = sorted(palette)
    sizes = {m: 130 * 0.6 ** i for i, m in enumerate(order)}
    data = data.sort_values("method", key=lambda m: m.map(order.index), kind="stable")
    g = sns.relplot(data=data, x=x, y=y, hue="method", hue_order=order, palette=palette,
                    size="method", sizes=sizes, size_order=order,
                    style="ablation", style_order=sorted(data.ablation.unique()),
                    col="task", col_order=tasks, col_wrap=min(4, len(tasks)), kind="scatter",
                    height=3.4, aspect=1.15, alpha=0.8,
                    facet_kws={"sharex": False, "sharey": False})
    g.set_titles("{col_name}")
    return g


def plot_faithfulness(ok: pd.DataFrame, path: Path, palette: dict) -> None:
    """Faithfulness vs sparsity: every ok circuit as a point; score methods' medians joined."""
    data = ok.dropna(subset=["sparsity", "faithfulness"]).copy()
    if data.empty:
        return _empty_plot(path, "no faithfulness values")
    data["faith_plot"] = data.faithfulness.clip(lower=FAITH_FLOOR)
    log = bool((data.faithfulness > FAITH_FLOOR).any())
    g = _relplot(data, "sparsity", "faith_plot", palette)
    lines = data[data.circuit.astype(str).str.startswith("sparsity=")]
    # methods often agree exactly (EAP and EAP-IG on Tracr): a dash per method keeps both visible
    patterns = itertools.cycle([(None, None), (4, 2), (1, 1.5), (6, 2, 1, 2)])
    dash = dict(zip(sorted(palette), patterns))
    for task, ax in g.axes_dict.items():
        for (method, _), a in lines[lines.task == task].groupby(["method", "ablation"]):
            m = a.groupby("sparsity").faith_plot.median()
            ax.plot(m.index, m.values, color=palette[method], lw=1.4, alpha=0.8,
                    dashes=dash[method])
        if log:
            ax.set_yscale("log")
        ax.axhline(FAITH_FLOOR if log else 0, color="#999", lw=0.6, zorder=0)
    g.set_axis_labels("sparsity", f"faithfulness (floored at {FAITH_FLOOR:g})" if log
                      else "faithfulness")
    g.figure.suptitle("Faithfulness vs sparsity, lower is better (lines: score-method median "
                      "over seeds)", y=1.03)
    _save(g.figure, path)


def plot_roc(ok: pd.DataFrame, path: Path, palette: dict) -> None:
    """ROC points against the convention matching each row's ablation, per task."""
    data = ok.dropna(subset=["fpr", "tpr"])
    if data.empty:
        return _empty_plot(path, "no ROC points")
    g = _relplot(data, "fpr", "tpr", palette)
    for ax in g.axes.flat:
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--", zorder=0)
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), aspect="equal")
    g.set_axis_labels("false positive rate", "true positive rate")
    g.figure.suptitle("ROC points vs the ground truth matching the ablation "
                      "(zero, mean -> zero; resample -> resample)", y=1.03)
    _save(g.figure, path)


def plot_runtime(ok: pd.DataFrame, path: Path, palette: dict) -> None:
    """Discovery wall time vs example count, one point per run, median line per method."""
    keys = ["task", "method", "params", "seed", "n_examples", "ablation"]
    runs = ok.drop_duplicates(keys).dropna(subset=["n_examples", "runtime_s"])
    runs = runs[(runs.n_examples > 0) & (runs.runtime_s > 0)]
    if runs.empty:
        return _empty_plot(path, "no runtimes")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    order = sorted(palette)
    sns.scatterplot(data=runs, x="n_examples", y="runtime_s", hue="method", hue_order=order,
                    palette=palette, alpha=0.35, s=24, ax=ax, legend=False)
    sns.lineplot(data=runs, x="n_examples", y="runtime_s", hue="method", hue_order=order,
                 palette=palette, estimator="median", errorbar=None, marker="o", ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="discovery examples (n_examples)",
           ylabel="wall seconds (runtime_s)")
    ns = sorted(runs.n_examples.unique())
    ax.set_xlim(ns[0] / 2, ns[-1] * 2)
    ax.set_xticks(ns)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title("Runtime vs example count (points: runs; lines: median over tasks and seeds)")
    ax.legend(title="method", bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False)
    _save(fig, path)


def plot_all(df: pd.DataFrame, out: Path) -> list[str]:
    """The three PNGs (a placeholder image when nothing can be plotted); their file names."""
    ok = plot_rows(df)
    methods = sorted(ok.method.dropna().unique())
    palette = dict(zip(methods, sns.color_palette("tab10", max(len(methods), 1))))
    if ok.empty:
        for name in PLOTS:
            _empty_plot(out / name, "no successful runs")
        return list(PLOTS)
    with sns.axes_style("whitegrid"), plt.rc_context({"figure.max_open_warning": 0}):
        plot_faithfulness(ok, out / PLOTS[0], palette)
        plot_roc(ok, out / PLOTS[1], palette)
        plot_runtime(ok, out / PLOTS[2], palette)
    return list(PLOTS)


# ---------------------------------------------------------------- entry point


def build_leaderboard(score_files, out_dir, provenance: dict | None = None) -> dict[str, Path]:
    """Read score CSVs and write scores.csv, leaderboard.csv/.md/.html and three PNG plots to
    out_dir, each atomically. Returns file name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = read_scores(score_files)
    sparsities = sparsities_of(df)
    table = summarise(df, sparsities)
    plots = plot_all(df, out)
    files = {"scores.csv": df.to_csv(index=False),
             "leaderboard.csv": table.to_csv(index=False),
             "leaderboard.md": to_markdown(table, sparsities, split_notes(df)),
             "leaderboard.html": to_html(table, df, plots, provenance or {}, sparsities)}
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return {name: out / name for name in [*files, *plots]}
