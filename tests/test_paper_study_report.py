"""The Edge Pruning paper's GPT-2 study in the leaderboard: KL vs sparsity (its Figure 2) and
KL and runtime at matched sparsity (its Table 1), from synthetic score rows (no model).

Task ioi@narrow_gpt2 (32,491 edges, KL, resample) at 200 and 400 examples: EAP and random score
methods at five sparsities (0.966 among them) x 3 seeds, Edge Pruning at three targets (one seed
of one failed) and, at 400, only at targets that fall short of 0.966 by more than 2 points;
ACDC at two thresholds, 200 examples only. greater_than@narrow_gpt2: EAP, one seed. A 110-edge
ioi@tiny_gpt2 is left out of both views.
"""
import json
import re

import numpy as np
import pandas as pd
import pytest
from test_headline import _dom

from benchmark.report.leaderboard import build_leaderboard
from benchmark.report.plots import draw_kl_vs_sparsity
from benchmark.report.scaling_table import figure_points, scaling_table
from benchmark.scoring.schema import COLUMNS

BIG, SMALL = 32_491, 110
SPARSITIES = (0.9, 0.95, 0.966, 0.98, 0.99)
EAP_KL = dict(zip(SPARSITIES, (0.2, 0.5, 0.8, 1.5, 3.0)))  # median over seeds, 200 examples
RANDOM_KL = dict(zip(SPARSITIES, (1.0, 2.0, 3.0, 4.0, 5.0)))
SEED_FACTOR = (1.0, 1.5, 0.5)  # median 1
# Edge Pruning at 200 examples: target -> per seed (reached sparsity, KL, runtime); None: failed
EP_200 = {0.95: [(0.949, 0.6, 100), (0.95, 0.7, 110), (0.951, 0.65, 120)],
          0.97: [(0.966, 0.9, 200), (0.968, 1.1, 220), None],
          0.99: [(0.99, 2.5, 300)] * 3}
EP_400 = {0.9: [(0.91, 0.3, 400)] * 3, 0.95: [(0.94, 0.5, 500)] * 3}
ACDC_200 = {0.01: (0.955, 0.4, 500), 0.1: (0.98, 1.2, 450)}  # threshold -> seed 0's


def _row(**kw):
    row = {c: None for c in COLUMNS}
    row.update(task="ioi@narrow_gpt2", ablation="resample", status="ok", error="",
               faithfulness_metric="kl", method_version="1", task_version="1",
               git_commit="c0ffee", config_hash="cfg1", n_edges=BIG, device="cuda",
               hardware="x86_64", eval_examples=500, eval_seen_in_discovery=0.0,
               input_space=None, params="{}", faithfulness_empty=10.0, task_metric_ratio=0.5)
    row.update(kw)
    return row


def _scores_rows(method, table, runtimes, n, task="ioi@narrow_gpt2", n_edges=BIG, seeds=3):
    rows = []
    for seed in range(seeds):
        for s in SPARSITIES:
            kept = round((1 - s) * n_edges)
            rows.append(_row(task=task, n_edges=n_edges, method=method, seed=seed, n_examples=n,
                             circuit=f"sparsity={s:g}", edges_kept=kept,
                             sparsity=1 - kept / n_edges,
                             faithfulness=table[s] * SEED_FACTOR[seed] * 200 / n,
                             runtime_s=runtimes[seed]))
        # a point of the whole-ranking curve: never read as a fixed-sparsity circuit
        k = min(1000, n_edges // 2)
        rows.append(_row(task=task, n_edges=n_edges, method=method, seed=seed, n_examples=n,
                         circuit=f"top={k}", edges_kept=k, sparsity=1 - k / n_edges,
                         faithfulness=99.0, runtime_s=runtimes[seed]))
    return rows


def _circuit_rows(method, key, settings, n, extra=None):
    rows = []
    for value, per_seed in settings.items():
        params = json.dumps({key: value, **(extra or {})}, sort_keys=True)
        for seed, point in enumerate(per_seed):
            if point is None:
                rows.append(_row(method=method, params=params, seed=seed, n_examples=n,
                                 status="failed", error="RuntimeError: out of memory"))
                continue
            reached, kl, runtime = point
            rows.append(_row(method=method, params=params, seed=seed, n_examples=n,
                             circuit="discovered", sparsity=reached,
                             edges_kept=round((1 - reached) * BIG), faithfulness=kl,
                             runtime_s=runtime))
    return rows


def rows(without_random_at_matched=False):
    out = []
    for n, scale in ((200, 1), (400, 2)):
        out += _scores_rows("eap", EAP_KL, [10 * scale, 12 * scale, 11 * scale], n)
        out += _scores_rows("random", RANDOM_KL, [0.01] * 3, n)
        out += _scores_rows("eap", EAP_KL, [5, 5, 5], n, task="greater_than@narrow_gpt2",
                            seeds=1)
    out += _circuit_rows("edge_pruning", "target_sparsity", EP_200, 200, {"steps": 3000})
    out += _circuit_rows("edge_pruning", "target_sparsity", EP_400, 400, {"steps": 3000})
    out += _circuit_rows("acdc", "threshold", {t: [p] for t, p in ACDC_200.items()}, 200)
    out += _scores_rows("eap", EAP_KL, [1, 1, 1], 200, task="ioi@tiny_gpt2", n_edges=SMALL)
    if without_random_at_matched:
        out = [r for r in out if not (r["method"] == "random"
                                      and r["circuit"] == "sparsity=0.966")]
    return pd.DataFrame(out, columns=COLUMNS)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    rows().to_csv(tmp / "scores.csv", index=False)
    return build_leaderboard([tmp / "scores.csv"], tmp / "board")


def _cell(table, method, n, task="ioi@narrow_gpt2"):
    t = table[(table.task == task) & (table.method == method) & (table.n_examples == n)]
    assert len(t) == 1, t
    return t.iloc[0]


def test_the_table_reads_each_method_at_matched_sparsity():
    table = scaling_table(rows())
    assert set(table.task) == {"ioi@narrow_gpt2", "greater_than@narrow_gpt2"}  # not tiny
    eap, eap400 = _cell(table, "eap", 200), _cell(table, "eap", 400)
    assert (eap.status, eap.sparsity, eap.kl, eap.runtime_s) == ("ok", 0.966, 0.8, 11)
    assert (eap400.kl, eap400.runtime_s, eap400.seeds) == (pytest.approx(0.4), 22, 3)
    assert _cell(table, "random", 200).kl == 3.0
    ep = _cell(table, "edge_pruning", 200)  # closest of 0.95, 0.967, 0.99
    assert (ep.status, ep.sparsity, ep.setting) == ("ok", 0.967, "target_sparsity=0.97")
    assert (ep.kl, ep.runtime_s, ep.seeds, ep.runs) == (1.0, 210, 2, 3)
    short = _cell(table, "edge_pruning", 400)  # 0.91 and 0.94: more than 2 points off
    assert (short.status, short.sparsity) == ("none within tolerance", 0.94)
    assert np.isnan(short.kl) and np.isnan(short.runtime_s)
    acdc = _cell(table, "acdc", 200)  # 0.955 is 1.1 points off, 0.98 1.4
    assert (acdc.sparsity, acdc.kl, acdc.runtime_s, acdc.setting) == (
        0.955, 0.4, 500, "threshold=0.01")
    assert not ((table.method == "acdc") & (table.n_examples == 400)).any()


def test_a_score_method_not_scored_at_matched_sparsity_is_left_out_with_a_note(tmp_path):
    df = rows(without_random_at_matched=True)
    assert set(scaling_table(df).query("method == 'random'").status) == {"not scored"}
    df.to_csv(tmp_path / "scores.csv", index=False)
    md = build_leaderboard([tmp_path / "scores.csv"], tmp_path / "b")["leaderboard.md"]
    section = md.read_text().split("## Scaling at matched sparsity")[1]
    assert ("Left out: random, not scored at sparsity 0.966: add 0.966 to `sparsities` in the "
            "config.") in section
    assert "| random |" not in section and "| eap |" in section


def test_the_figure_draws_medians_at_fixed_and_reached_sparsities():
    points = figure_points(rows())
    ioi = points[(points.task == "ioi@narrow_gpt2") & (points.n_examples == 200)]
    line = lambda m: dict(zip(ioi[ioi.method == m].sparsity, ioi[ioi.method == m].kl))
    assert line("eap") == pytest.approx(EAP_KL)  # the `top=1000` rows (KL 99) are not drawn
    assert line("random") == pytest.approx(RANDOM_KL)
    assert line("edge_pruning") == pytest.approx({0.95: 0.65, 0.967: 1.0, 0.99: 2.5})
    assert line("acdc") == pytest.approx({0.955: 0.4, 0.98: 1.2})
    ep400 = points[(points.method == "edge_pruning") & (points.n_examples == 400)]
    assert list(ep400.sparsity) == [0.91, 0.94]
    assert "ioi@tiny_gpt2" not in set(points.task)
    palette = dict(zip(sorted(points.method.unique()), "rgbk"))
    fig = draw_kl_vs_sparsity(points, palette)
    # a panel per task (columns) and example count (rows)
    assert [a.get_title() for a in fig.axes] == [
        "greater_than@narrow_gpt2, n=200", "ioi@narrow_gpt2, n=200",
        "greater_than@narrow_gpt2, n=400", "ioi@narrow_gpt2, n=400"]
    assert [len(a.lines) for a in fig.axes] == [1, 4, 1, 3]  # acdc ran at 200 only
    assert all(a.get_yscale() == "log" and a.get_xlim()[0] < 0.9 for a in fig.axes)
    # a count run on one task only (the default's IOI at 400): no empty frame for the others
    only_ioi_400 = points[(points.n_examples == 200) | (points.task == "ioi@narrow_gpt2")]
    fig = draw_kl_vs_sparsity(only_ioi_400, palette)
    assert [a.get_title() for a in fig.axes if a.get_visible()] == [
        "greater_than@narrow_gpt2, n=200", "ioi@narrow_gpt2, n=200", "ioi@narrow_gpt2, n=400"]


def test_the_files_are_written_and_deterministic(board, tmp_path):
    png = board["kl_vs_sparsity.png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    csv = pd.read_csv(board["scaling_table.csv"])
    assert len(csv) == len(scaling_table(rows()))
    again = build_leaderboard([board["scores.csv"]], tmp_path)
    for name in ("kl_vs_sparsity.png", "scaling_table.csv", "leaderboard.md"):
        assert again[name].read_bytes() == board[name].read_bytes(), name


def test_no_large_kl_task_no_section_but_a_plot(tmp_path):
    small = rows().query("task == 'ioi@tiny_gpt2'")
    small.to_csv(tmp_path / "scores.csv", index=False)
    out = build_leaderboard([tmp_path / "scores.csv"], tmp_path / "b")
    assert "Scaling at matched sparsity" not in out["leaderboard.md"].read_text()
    assert "Scaling at matched sparsity" not in out["leaderboard.html"].read_text()
    assert out["kl_vs_sparsity.png"].read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(out["scaling_table.csv"]).empty


def _scaling_tables(dom):
    """Each scaling table as a reader sees it: heading, header cells, rows of (text, details)."""
    section = dom.split("Scaling at matched sparsity")[1].split("id=\"plots\"")[0]
    text = lambda h: re.sub(r"<[^>]+>", "", h).strip()
    out = []
    for heading, table in re.findall(r"<h3>(.*?)</h3>.*?<table class=\"scaling\">(.*?)</table>",
                                     section, re.DOTALL):
        head = [text(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", table)]
        body = []
        for tr in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.DOTALL):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.DOTALL)
            body.append([text(cells[0])] + [
                (text(c.split("<span")[0]), text(c[c.index("<span"):]) if "<span" in c else "")
                for c in cells[1:]])
        out.append((text(heading), head, body))
    return out


def test_the_page_shows_the_table(board):
    dom = _dom(board["leaderboard.html"])
    assert "Scaling at matched sparsity (96.6%, as in Bhaskar et al. 2024 Table 1)" in dom
    tables = _scaling_tables(dom)
    assert [t[0] for t in tables] == [
        "greater_than@narrow_gpt2, resample ablation (32,491 edges)",
        "ioi@narrow_gpt2, resample ablation (32,491 edges)"]
    _, head, body = tables[1]
    assert head == ["method", "200 examples", "400 examples"]
    assert body == [
        ["acdc", ("0.4 (500 s)", "at 0.955, threshold=0.01"), ("", "not run")],
        ["eap", ("0.8 (11 s)", "median of 3 seeds"), ("0.4 (22 s)", "median of 3 seeds")],
        ["edge_pruning",
         ("1 (210 s)", "at 0.967, target_sparsity=0.97; median of 2 seeds, 1 failed"),
         ("", "no circuit within 2 pts (closest 0.94)")],
        ["random", ("3 (0.01 s)", "median of 3 seeds"), ("1.5 (0.01 s)", "median of 3 seeds")]]
    assert "ioi@tiny_gpt2" not in dom.split("Scaling at matched sparsity")[1].split("id=\"plots")[0]
    assert "<img src=\"kl_vs_sparsity.png\"" in dom
    # the legend's config names read as code, not as Markdown backticks
    section = dom.split("Scaling at matched sparsity")[1].split("<h3")[0]
    assert "<code>sparsities</code>" in section and "`" not in section
