"""The 'Scaling at matched sparsity' section of leaderboard.md and .html: Bhaskar et al. 2024's
Table 1 layout (rows methods, columns example counts, cells "KL (runtime s)").

Formats benchmark.report.scaling_table's long table only; a separate module so render.py stays the
per-task tables' renderer.
"""
from __future__ import annotations

import html
import math
import re

import pandas as pd

from benchmark.report.scaling_table import MATCH_TOLERANCE, MATCHED_SPARSITY, MIN_EDGES

TITLE = (f"Scaling at matched sparsity ({100 * MATCHED_SPARSITY:g}%, as in Bhaskar et al. 2024 "
         "Table 1)")
LEGEND = (f"Tasks scored with KL on graphs of at least {MIN_EDGES:,} edges (on smaller graphs a "
          "few percent of edges is a handful of edges). Each cell: KL(full || circuit) of the "
          f"circuit at {100 * MATCHED_SPARSITY:g}% edge sparsity, lower is better, and in "
          "parentheses the discovery's wall time in seconds; the median over seeds. Score "
          f"methods: their top-ranked edges at exactly {MATCHED_SPARSITY:g} (`sparsity="
          f"{MATCHED_SPARSITY:g}` in the config's `sparsities`). Circuit methods (Edge Pruning, "
          "ACDC): the setting whose discovered circuits' median sparsity is closest to "
          f"{MATCHED_SPARSITY:g}, shown with that sparsity, if within "
          f"{100 * MATCH_TOLERANCE:g} points. scaling_table.csv has every cell; "
          "kl_vs_sparsity.png the whole range.")


def _num(v: float) -> str:
    return f"{v:.3g}" if v == 0 or abs(v) >= 1e-3 else f"{v:.1e}".replace("e-0", "e-")


def _seconds(v: float) -> str:
    return "?" if math.isnan(v) else f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def cell_text(r: dict) -> tuple[str, str]:
    """(main text, details) of one cell: 'KL (runtime s)', then where it was read."""
    if r["status"] == "not scored":
        return "", f"not scored at {MATCHED_SPARSITY:g}"
    if r["status"] != "ok":
        return "", (f"no circuit within {100 * MATCH_TOLERANCE:g} pts "
                    f"(closest {r['sparsity']:.3g})")
    details = []
    if r["kind"] == "circuit":
        details.append(f"at {r['sparsity']:.3g}" + (f", {r['setting']}" if r["setting"] else ""))
    seeds, runs = int(r["seeds"]), int(r["runs"])
    if seeds > 1 or runs > seeds:
        details.append(f"median of {seeds} seeds" + (f", {runs - seeds} failed"
                                                     if runs > seeds else ""))
    return f"{_num(r['kl'])} ({_seconds(r['runtime_s'])} s)", "; ".join(details)


def grids(table: pd.DataFrame):
    """Per (task, ablation): (heading, example counts, [(row label, [cell]...)], note)."""
    out = []
    for (task, ablation), t in table.groupby(["task", "ablation"], sort=True):
        counts = sorted(t.n_examples.unique())
        rows, left_out = [], []
        t = t.assign(label=[m + (f" ({s})" if k == "scores" and s else "")
                            for m, k, s in zip(t.method, t.kind, t.setting.fillna(""))])
        for label, line in t.groupby("label", sort=True):
            if (line.status == "not scored").all():
                left_out.append(label)
                continue
            by_n = {r["n_examples"]: cell_text(r) for r in line.to_dict("records")}
            rows.append((label, [by_n.get(n, ("", "not run")) for n in counts]))
        note = (f"Left out: {', '.join(left_out)}, not scored at sparsity {MATCHED_SPARSITY:g}: "
                f"add {MATCHED_SPARSITY:g} to `sparsities` in the config." if left_out else "")
        heading = f"{task}, {ablation} ablation ({int(t.n_edges.iloc[0]):,} edges)"
        out.append((heading, counts, rows, note))
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def scaling_markdown(table: pd.DataFrame) -> list[str]:
    """Markdown lines of the section; none when no task qualifies."""
    if table.empty:
        return []
    out = [f"## {TITLE}", "", LEGEND, ""]
    for heading, counts, rows, note in grids(table):
        out += [f"### {heading}", "", "| method | " + " | ".join(
            f"{n:,} examples" for n in counts) + " |", "|---" * (len(counts) + 1) + "|"]
        for label, cells in rows:
            out.append(f"| {_md(label)} | " + " | ".join(
                _md(main + (f" · {d}" if main and d else d)) for main, d in cells) + " |")
        out += ["", note, ""] if note else [""]
    return out


SCALING_CSS = """
table.scaling td{white-space:normal;min-width:9em} table.scaling td.m{text-align:left;
font-weight:600} table.scaling span.d{display:block;color:#666;font-size:11px}
"""


def _code(text: str) -> str:
    """Escaped HTML of Markdown text whose `quoted` parts are code."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def scaling_html(table: pd.DataFrame) -> str:
    """HTML of the section; empty when no task qualifies."""
    if table.empty:
        return ""
    esc = html.escape
    parts = [f"<h2 id='scaling'>{esc(TITLE)}</h2>", f"<p class='legend'>{_code(LEGEND)}</p>"]
    for heading, counts, rows, note in grids(table):
        head = "<th class='l'>method</th>" + "".join(f"<th>{n:,} examples</th>" for n in counts)
        body = "".join(
            f"<tr><td class='m'>{esc(label)}</td>" + "".join(
                f"<td>{esc(main)}" + (f"<span class='d'>{esc(d)}</span>" if d else "") + "</td>"
                for main, d in cells) + "</tr>" for label, cells in rows)
        parts += [f"<h3>{esc(heading)}</h3>",
                  (f"<div class='scroll'><table class='scaling'><thead><tr>{head}</tr></thead>"
                   f"<tbody>{body}</tbody></table></div>")]
        if note:
            parts.append(f"<p class='legend'>{_code(note)}</p>")
    return "\n".join(parts)
