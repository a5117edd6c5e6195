"""The headline table at the top of leaderboard.html: colour-scaled, sortable, offline.

Formats benchmark.report.headline's numbers only. Sorting is a few lines of inline script (no CDN):
click a header, or open the page with `?sort=<column>` (e.g. `?sort=runtime_s`) to share a view.
"""
from __future__ import annotations

import html
import math

import pandas as pd

from benchmark.report.headline import LABELS, METRICS, PAIRED_TEST

HEADLINE_CSS = """
table.headline td.m{text-align:left;font-weight:600} table.headline th{cursor:pointer}
table.headline th.sorted::after{content:" \\25BE"} table.headline td{padding:3px 7px}
table.headline span.ci{color:#555;font-size:11px} p.answer{font-size:14px;max-width:1100px}
details.tests{font-size:12px;margin:.5em 0 1.5em} details.tests td{text-align:left}
"""

SORT_SCRIPT = """
(function(){
  var table = document.querySelector('table.headline'); if (!table) return;
  function sortBy(key){
    var th = table.querySelector('th[data-key="' + key + '"]'); if (!th) return;
    var ascending = th.dataset.better !== 'high';
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    rows.sort(function(a, b){
      var x = a.querySelector('[data-key="' + key + '"]').dataset.v;
      var y = b.querySelector('[data-key="' + key + '"]').dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      if (isNaN(nx) && isNaN(ny)) return x < y ? -1 : x > y ? 1 : 0;
      if (isNaN(nx)) return 1; if (isNaN(ny)) return -1;
      return ascending ? nx - ny : ny - nx;
    });
    rows.forEach(function(r){ table.tBodies[0].appendChild(r); });
    table.querySelectorAll('th').forEach(function(h){ h.classList.remove('sorted'); });
    th.classList.add('sorted');
  }
  table.querySelectorAll('th[data-key]').forEach(function(th){
    th.addEventListener('click', function(){ sortBy(th.dataset.key); });
  });
  var wanted = new URLSearchParams(window.location.search).get('sort');
  if (wanted) sortBy(wanted);
})();
"""


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _colour(value: float, lo: float, hi: float, higher_better: bool) -> str:
    """Background from red (worst in the column) to green (best); none without a value."""
    if value is None or math.isnan(value) or math.isnan(lo) or hi == lo:
        return ""
    t = (value - lo) / (hi - lo)
    t = t if higher_better else 1 - t
    return f" style='background:hsl({120 * t:.0f},65%,84%)'"


def _metric_cells(r: dict, m: str, scale: dict) -> str:
    esc = html.escape
    value, low, high = r[m], r[f"{m}_low"], r[f"{m}_high"]
    rank, rlo, rhi = r[f"{m}_rank"], r[f"{m}_rank_low"], r[f"{m}_rank_high"]
    if m == "exact" and r[f"{m}_runs"]:
        shown = f"{round(value * r[f'{m}_runs'])}/{r[f'{m}_runs']}"
    else:
        shown = _num(value)
    ci = f" <span class='ci'>[{_num(low)}, {_num(high)}]</span>" if shown and low != high else ""
    rank_ci = (f" <span class='ci'>[{_num(rlo, 2)}, {_num(rhi, 2)}]</span>"
               if _num(rank) and rlo != rhi else "")
    lo, hi = scale[m]
    value_attr = "" if value is None or math.isnan(value) else f"{value:.6g}"
    rank_attr = "" if rank is None or math.isnan(rank) else f"{rank:.6g}"
    return (f"<td data-key='{m}' data-v='{value_attr}'"
            f"{_colour(value, lo, hi, METRICS[m])}>{esc(shown)}{ci}</td>"
            f"<td data-key='{m}_rank' data-v='{rank_attr}'"
            f"{_colour(rank, *scale[m + '_rank'], False)}>{esc(_num(rank, 2))}{rank_ci}</td>")


def headline_html(table: pd.DataFrame) -> str:
    """The 'which method, at what cost, how sure' table."""
    if table.empty:
        return "<p>No runs to rank.</p>"
    esc = html.escape
    scale = {}
    for m in METRICS:
        for c in (m, f"{m}_rank"):
            v = pd.to_numeric(table[c], errors="coerce")
            scale[c] = (float(v.min()), float(v.max())) if v.notna().any() else (math.nan,) * 2
    head = ["<th data-key='method'>method</th>", "<th data-key='ablation'>ablation</th>",
            "<th data-key='runs' title='runs ranked: tasks x seeds at each main example count'>"
            "runs</th>"]
    for m in METRICS:
        better = "high" if METRICS[m] else "low"
        head += [f"<th data-key='{m}' data-better='{better}'>{esc(LABELS[m])}</th>",
                 f"<th data-key='{m}_rank' data-better='low'>rank</th>"]
    body = []
    for r in table.to_dict("records"):
        failed = f" ({r['failed']} failed)" if r["failed"] else ""
        cells = [f"<td class='m' data-key='method' data-v='{esc(r['method'])}'>"
                 f"{esc(r['method'])}</td>",
                 f"<td class='l' data-key='ablation' data-v='{esc(r['ablation'])}'>"
                 f"{esc(r['ablation'])}</td>",
                 f"<td data-key='runs' data-v='{r['runs']}'>{r['runs']} on {r['tasks']} "
                 f"tasks{esc(failed)}</td>"]
        cells += [_metric_cells(r, m, scale) for m in METRICS]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ("<div class='scroll'><table class='headline'><thead><tr>" + "".join(head)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>")


def answer_text(table: pd.DataFrame, tests: pd.DataFrame) -> str:
    """One sentence per ablation: the best method on integrated faithfulness and whether it is
    distinguishable from the runner-up."""
    lines = []
    for ablation, t in table.groupby("ablation", sort=True):
        ranked = t.dropna(subset=["faith_area_rank"]).sort_values("faith_area_rank")
        if ranked.empty:
            continue
        best = ranked.iloc[0]
        text = (f"{ablation} ablation: {best.method} ranks first on integrated faithfulness "
                f"(mean rank {_num(best.faith_area_rank, 2)} over {best.runs} runs)")
        if len(ranked) > 1:
            second = ranked.iloc[1]
            pair = tests[(tests.ablation == ablation) & (tests.metric == "faith_area")
                         & tests.method_a.isin([best.method, second.method])
                         & tests.method_b.isin([best.method, second.method])]
            if len(pair):
                p = pair.p_value.iloc[0]
                text += (f"; against {second.method}, the runner-up, paired p = {_num(p, 2)}"
                         f" over {int(pair.cells.iloc[0])} runs")
        cheapest = t.dropna(subset=["runtime_s"]).sort_values("runtime_s")
        if len(cheapest):
            text += (f"; cheapest: {cheapest.iloc[0].method} "
                     f"(median {_num(cheapest.iloc[0].runtime_s)} s a run)")
        lines.append(text + ".")
    return " ".join(lines)


def tests_html(tests: pd.DataFrame) -> str:
    """The paired tests, folded: which differences the runs support."""
    if tests.empty:
        return ""
    esc = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("ablation", "metric", "method a", "method b",
                                              "runs", "median a - b", "a better / b better",
                                              "p"))
    rows = "".join(
        f"<tr><td>{esc(r.ablation)}</td><td>{esc(LABELS.get(r.metric, r.metric))}</td>"
        f"<td>{esc(r.method_a)}</td><td>{esc(r.method_b)}</td><td>{r.cells}</td>"
        f"<td>{esc(_num(r.median_difference))}</td><td>{r.a_better} / {r.b_better}</td>"
        f"<td>{esc(_num(r.p_value, 2))}</td></tr>" for r in tests.itertuples())
    return (f"<details class='tests'><summary>Paired tests between methods ({esc(PAIRED_TEST)}"
            f", over the runs both made; pairwise.csv)</summary><table><thead><tr>{head}</tr>"
            f"</thead><tbody>{rows}</tbody></table></details>")


HEADLINE_LEGEND = (
    "One row per method and ablation, over the runs (task x seed) at each task's main example "
    "count. Integrated faithfulness: the area under the circuit's normalised faithfulness "
    "(1 - KL(full || circuit) / KL(full || empty circuit)) over the fraction of edges kept, "
    "from the empty circuit (0) to the full model (1): a score method along its whole ranking, "
    "a circuit method through its circuits; higher is better. Recovery: ROC AUC against the "
    "ground truth matching the ablation (Tracr tasks only). Exact: runs that recovered it "
    "exactly. Node integrated faithfulness and node recovery: the same over whole components "
    "(writers kept; an edge method's circuits seen as their edges' writers, its ranking as each "
    "writer's best edge), against the node ground truth; every method has them (HISP and NAP rank nodes, not edges: "
    "only these; subnetwork probing's node circuits count at edge level as the edges between "
    "their nodes). MIB CPR / CMD: "
    "MIB's areas under f and |1 - f| of an edge ranking (f from the task metric; 1 - KL / "
    "KL(empty) on Tracr tasks). "
    "Runtime: median wall seconds of a run's discovery (all settings of a sweep). "
    "Brackets: 95% bootstrap intervals over runs; rank: the method's mean rank among the "
    "methods of each run's cell (1 is best). Colour: green best, red worst in the column. "
    "Click a header to sort.")
