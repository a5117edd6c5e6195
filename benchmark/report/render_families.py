"""The page's "Recovery by task family" section: per family with a ground truth, each method's
recovery with its interval and rank, and the paired tests between methods on recovery.

Formats the `family` rows of the headline and pairwise tables (benchmark.report.families).
"""
from __future__ import annotations

import html

import pandas as pd

from benchmark.report.families import ALL
from benchmark.report.headline import PAIRED_TEST
from benchmark.report.render_headline import _num  # the headline's number format

CSS = ("table.family td{padding:3px 7px} table.family td.m{text-align:left;font-weight:600}"
       " td.sig{font-weight:700}")
LEGEND = (
    "Recovery: mean ROC AUC against the ground truth matching the ablation over the family's "
    "runs (task x seed at each task's main example count), 95% bootstrap interval in brackets; "
    "rank: mean rank among the methods of each run's cell (1 is best). Paired tests: "
    f"{PAIRED_TEST} over the runs both methods made; p < 0.01 in bold.")


def _family_table(rows: pd.DataFrame) -> str:
    esc = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("method", "ablation", "runs", "recovery (AUROC)",
                                              "rank", "exact recoveries",
                                              "integrated faithfulness"))
    body = []
    for r in rows.sort_values(["ablation", "recovery_rank", "method"]).itertuples():
        body.append(
            f"<tr><td class='m'>{esc(r.method)}</td><td>{esc(r.ablation)}</td>"
            f"<td>{r.recovery_runs}</td>"
            f"<td>{_num(r.recovery)} [{_num(r.recovery_low)}, {_num(r.recovery_high)}]</td>"
            f"<td>{_num(r.recovery_rank, 2)}</td><td>{_num(r.exact, 2)}</td>"
            f"<td>{_num(r.faith_area)}</td></tr>")
    return (f"<table class='family'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            "</tbody></table>")


def _tests_list(tests: pd.DataFrame) -> str:
    esc = html.escape
    items = []
    for r in tests.sort_values(["ablation", "p_value"]).itertuples():
        sig = " class='sig'" if r.p_value < 0.01 else ""
        items.append(f"<tr><td>{esc(r.ablation)}</td><td>{esc(r.method_a)}</td>"
                     f"<td>{esc(r.method_b)}</td><td>{r.cells}</td>"
                     f"<td>{_num(r.median_difference)}</td><td{sig}>{_num(r.p_value, 2)}</td>"
                     "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("ablation", "method a", "method b", "runs",
                                              "median a - b", "p"))
    return (f"<details><summary>Paired tests on recovery</summary><table class='family'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(items)}</tbody></table></details>")


def families_html(headline: pd.DataFrame, tests: pd.DataFrame) -> str:
    """The section, or "" when the scores hold one family or no family has a ground truth."""
    if "family" not in headline or headline.family.nunique() < 3:  # `all` plus >= 2 families
        return ""
    esc = html.escape
    parts = ["<h2 id='families'>Recovery by task family</h2>",
             f"<p class='legend'>{esc(LEGEND)}</p>"]
    for family, rows in headline[headline.family != ALL].groupby("family", sort=False):
        rows = rows[rows.recovery_runs > 0]
        if rows.empty:
            continue
        parts += [f"<h3>{esc(family)}</h3>", _family_table(rows)]
        pairs = tests[(tests.family == family) & (tests.metric == "recovery")].dropna(
            subset=["p_value"])
        if len(pairs):
            parts.append(_tests_list(pairs))
    return "".join(parts) if len(parts) > 2 else ""
