"""The page's "Node level" section: per task, each method's circuits seen as whole components.

Formats the node-level columns of the summary lines (benchmark.report.levels): recovery of the
node ground truth (Tracr tasks), integrated faithfulness over the fraction of writers kept, and
MIB's CPR / CMD of the node ranking. Edge methods are shown through their node view (an edge
circuit's writers; an edge ranking's node scores, each writer's best outgoing edge).
"""
from __future__ import annotations

import html
import math

import pandas as pd

from benchmark.report.render_headline import _num  # the headline's number format

COLUMNS = [("method", "method"), ("level", "circuit_level"), ("ablation", "ablation"),
           ("n", "n_examples"), ("setting", "setting"), ("node truth", "node_convention"),
           ("node F1", "node_f1"), ("node exact", "node_exact_rate"),
           ("node AUROC", "node_auroc"), ("integrated faithfulness (nodes)", "node_faith_area"),
           ("node sparsity", "node_sparsity"), ("CPR (nodes)", "node_mib_cpr"),
           ("CMD (nodes)", "node_mib_cmd")]
SHOWN = ("node_f1", "node_auroc", "node_faith_area", "node_mib_cpr", "node_mib_cmd")
LEGEND = (
    "Circuits as whole components (writers: embeddings, heads, MLPs). level: what the method "
    "discovers; an edge method is read through its node view (the writers of its edges; a "
    "writer's score is its best outgoing edge's). node F1 / exact: the discovered circuit's "
    "writers against the node ground truth matching the ablation (Tracr tasks); node AUROC: the "
    "node ranking's. Integrated faithfulness (nodes): the area under 1 - KL(circuit) / "
    "KL(empty) over the fraction of writers kept, each circuit run with whole writers ablated. "
    "CPR / CMD (nodes): MIB's areas under f and |1 - f| over the top 0.1% ... 100% of writers "
    "(f from the task metric, or 1 - KL(C) / KL(empty) on Tracr tasks); CPR higher, CMD lower is "
    "better. Medians over seeds.")


def node_lines(table: pd.DataFrame) -> pd.DataFrame:
    """The setting lines that have a node-level number."""
    if table.empty or not set(SHOWN) <= set(table.columns):
        return table.iloc[0:0]
    lines = table[table.level == "setting"]
    return lines[lines[list(SHOWN)].notna().any(axis=1)]


def _text(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return _num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def nodes_html(table: pd.DataFrame) -> str:
    """The section, or "" when no line has a node-level number."""
    lines = node_lines(table)
    if lines.empty:
        return ""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h, _ in COLUMNS)
    parts = ["<h2 id='nodes'>Node level</h2>", f"<p class='legend'>{esc(LEGEND)}</p>"]
    for task, t in lines.groupby("task", sort=True):
        body = "".join("<tr>" + "".join(f"<td>{esc(_text(r.get(c)))}</td>" for _, c in COLUMNS)
                       + "</tr>" for r in t.sort_values(["ablation", "method"]).to_dict("records"))
        parts += [f"<h3>{esc(task)}</h3>",
                  ("<div class='scroll'><table class='board'><thead><tr>"
                   f"{head}</tr></thead><tbody>{body}</tbody></table></div>")]
    return "".join(parts)
