"""The leaderboard for people: Markdown and HTML tables of the summary, legend, provenance.

Only formats what benchmark.report.summary computed, so changing how it looks never changes a number.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.families import ALL
from benchmark.report.render_families import CSS as FAMILY_CSS
from benchmark.report.render_families import families_html
from benchmark.report.render_headline import (
    HEADLINE_CSS,
    HEADLINE_LEGEND,
    SORT_SCRIPT,
    answer_text,
    headline_html,
    tests_html,
)
from benchmark.report.render_nodes import nodes_html
from benchmark.report.render_scaling import SCALING_CSS, scaling_html, scaling_markdown
from benchmark.report.summary import split_notes


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
            ("integrated faithfulness", ("faith_area",)),
            ("sparsity", ("sparsity",)), ("edges", ("edges_kept",)),
            ("task metric ratio", ("task_metric_ratio",)), ("F1", ("f1",)),
            ("exact", ("exact_rate",)), ("AUROC", ("auroc",)),
            ("CPR / CMD", ("mib_cpr", "mib_cmd")),
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


LEGEND = ("Cells: median over seeds, with the inter-quartile range in parentheses when it is not "
          "negligible (>= 0.5% of the median). Faithfulness: KL(full || circuit) at the non-BOS "
          "positions for categorical tasks, MSE for numerical ones, on the held-out split; lower "
          "is better. On a language model (task@model): KL of the next-token distribution at the "
          "answer position, and the task metric ratio is the task's own measure (logit "
          "difference, Greater-Than probability gap) of the circuit over the full model's; no "
          "ground truth, so no F1, exact or AUROC. faith@s: the top-ranked edges of a score "
          "method at sparsity s. setting: the hyper-parameters a method sweeps or that differ "
          "between its lines of a task ('-': none). integrated faithfulness: the area under "
          "1 - KL(circuit) / KL(empty circuit) over the fraction of edges kept (see the headline)"
          "; higher is better. CPR / CMD: MIB's areas under f and under |1 - f| over the top "
          "0.1% to 100% of a ranking's edges (f from the task metric; 1 - KL / KL(empty) on Tracr"
          " tasks), score methods only. F1, exact and AUROC are against the ground "
          "truth matching the ablation (zero -> zero, resample -> resample, mean -> zero); exact "
          "counts the runs that recovered it exactly, out of all runs (a failed run did not). A "
          "`sweep` line summarises a circuit method over its settings: the ROC AUC of the "
          "settings' points per seed (trapezoid, and ACDC's pessimistic staircase), and the cost "
          "of the whole sweep. status counts the runs that failed, timed out or gave non-finite "
          "numbers. leaderboard.csv has every hyper-parameter, every convention and the IQRs; "
          "scores.csv has every row.")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: pd.DataFrame, sparsities, notes: dict | None = None,
                scaling: pd.DataFrame | None = None) -> str:
    """A section per task with one Markdown table; failures bold and listed below; then the
    scaling table at matched sparsity (render_scaling) when a task qualifies."""
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
    out += scaling_markdown(scaling if scaling is not None else pd.DataFrame())
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


def _pooled(table: pd.DataFrame) -> pd.DataFrame:
    """The rows over every task family (the headline's own), without the family column."""
    if "family" not in table:
        return table
    return table[table.family == ALL].drop(columns="family").reset_index(drop=True)


def to_html(table: pd.DataFrame, df: pd.DataFrame, plots: list[str], provenance: dict,
            sparsities, headline: pd.DataFrame | None = None,
            tests: pd.DataFrame | None = None, scaling: pd.DataFrame | None = None) -> str:
    """A static page: the headline (which method, at what cost, how sure), then a table per
    task (failed lines red), the scaling table at matched sparsity when a task qualifies, the
    plots, a provenance footer. Offline: no external resources."""
    scaling = scaling if scaling is not None else pd.DataFrame()
    esc = html.escape
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<title>circuitbench leaderboard</title>",
             f"<style>{CSS}{HEADLINE_CSS}{SCALING_CSS}{FAMILY_CSS}</style></head><body>",
             "<h1>circuitbench leaderboard</h1>"]
    if headline is not None:
        tests = tests if tests is not None else pd.DataFrame()
        pooled, pooled_tests = _pooled(headline), _pooled(tests)
        answer = answer_text(pooled, pooled_tests) if len(pooled_tests) else ""
        parts += ["<h2 id='headline'>Headline</h2>",
                  f"<p class='answer'>{esc(answer)}</p>" if answer else "",
                  headline_html(pooled), f"<p class='legend'>{esc(HEADLINE_LEGEND)}</p>",
                  tests_html(pooled_tests), families_html(headline, tests)]
    parts += ["<h2 id='details'>Per task</h2>", f"<p class='legend'>{esc(LEGEND)}</p>"]
    if table.empty:
        parts.append("<p>No score rows.</p>")
    links = [f"<a href='#{esc(t)}'>{esc(t)}</a>" for t in sorted(table.task.unique())]
    if len(scaling):
        links.append("<a href='#scaling'>scaling at matched sparsity</a>")
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
    parts.append(nodes_html(table))
    if len(scaling):
        parts.append(scaling_html(scaling))
    parts.append("<h2 id='plots'>Plots</h2>")
    for p in plots:
        title = Path(p).stem.replace("_", " ")
        parts.append(f"<figure><img src='{esc(p)}' alt='{esc(title)}'>"
                     f"<figcaption>{esc(p)}</figcaption></figure>")
    parts.append(provenance_html(df, provenance))
    parts.append(f"<script>{SORT_SCRIPT}</script></body></html>")
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
              ("scoring config hashes (sparsities, eval_examples, kernels)",
               _distinct(df, "config_hash")),
              ("method versions", ", ".join(
                  f"{m} v{v}" for m, v in sorted(zip(versions.method.astype(str),
                                                     versions.method_version.astype(str))))),
              ("task versions", ", ".join(
                  f"{t} v{v}" for t, v in sorted(set(zip(df.task.astype(str),
                                                         df.task_version.astype(str)))))),
              ("hardware", _distinct(df, "hardware")), ("devices", _distinct(df, "device"))]
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items)
    return f"<footer id='provenance'><h3>Provenance</h3><table>{rows}</table></footer>"
