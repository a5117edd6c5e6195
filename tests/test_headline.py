"""The headline: integrated faithfulness, intervals, ranks and paired tests, on rows whose
answers are known by hand; and the page a reader opens, rendered in a real headless browser."""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from benchmark.report.headline import headline, main_cells, pairwise_tests, run_table
from benchmark.report.leaderboard import build_leaderboard
from benchmark.scoring.recovery import faithfulness_area, ranking_counts, ratio_interval
from benchmark.scoring.schema import COLUMNS

N_EDGES = 10
EMPTY = 2.0  # KL of the empty circuit in every synthetic cell


def test_faithfulness_area_by_hand():
    assert faithfulness_area([]) == {"area": 0.5, "gap": 0.5}  # the straight line
    half = faithfulness_area([(0.5, 0.5)])
    assert half["area"] == pytest.approx(0.5) and half["gap"] == pytest.approx(0.5)
    early = faithfulness_area([(0.2, 1.0)])  # full behaviour from 20% of the edges on
    assert early["area"] == pytest.approx(0.9) and early["gap"] == pytest.approx(0.1)
    # overshooting 1 is a gap too: |1 - f| crosses 0 at x = 1/3
    over = faithfulness_area([(0.5, 1.5)])
    assert over["area"] == pytest.approx(1.0) and over["gap"] == pytest.approx(1 / 3)
    # ends given explicitly or out-of-range points do not count twice
    assert faithfulness_area([(0.0, 0.3), (1.0, 0.2), (0.5, 0.5)]) == half


def test_ranking_counts_are_every_count_on_small_graphs_and_a_grid_on_large():
    assert ranking_counts(10) == list(range(11))
    grid = ranking_counts(32491)
    assert grid[0] == 0 and grid[-1] == 32491 and grid == sorted(set(grid))
    assert 65 in grid and 162 in grid and 16246 in grid and len(grid) == 12


def test_ratio_interval_brackets_the_mean_and_is_seeded():
    rng = np.random.default_rng(0)
    num, den = rng.exponential(1.0, 400), np.full(400, 2.0)
    low, high = ratio_interval(num, den)
    assert low < num.sum() / den.sum() < high and high - low < 0.2
    assert ratio_interval(num, den) == (low, high)
    assert ratio_interval(np.ones(5), np.ones(5)) == (1.0, 1.0)


def _row(**kw):
    row = {c: None for c in COLUMNS}
    row.update(ablation="zero", status="ok", error="", faithfulness_metric="kl",
               n_edges=N_EDGES, faithfulness_empty=EMPTY, params="{}", n_examples=100)
    row.update(kw)
    return row


def _ranking(task, seed, method, kept_at_full, auroc, runtime, n=100):
    """A score method whose top-k circuit is as faithful as the full model from
    `kept_at_full` edges on, and as the empty circuit below."""
    rows = []
    for k in range(N_EDGES + 1):
        faith = 0.0 if k >= kept_at_full else EMPTY
        rows.append(_row(task=task, seed=seed, method=method, circuit=f"top={k}", edges_kept=k,
                         sparsity=1 - k / N_EDGES, faithfulness=faith, auroc_zero=auroc,
                         f1_zero=0.5, runtime_s=runtime, n_examples=n))
    return rows


def _synthetic_rows():
    rows = []
    for task in ("reverse", "sort"):
        for seed in range(3):
            # "sharp": full behaviour from 2 of 10 edges (area 0.05 + 0.8), perfect ranking
            rows += _ranking(task, seed, "sharp", 2, 1.0, 1.0 + seed)
            # "blunt": from 6 of 10 edges (area 0.05 + 0.4), a worse ranking, cheaper
            rows += _ranking(task, seed, "blunt", 6, 0.8, 0.1)
            # a circuit method at two settings: (0.2, 1.0) and (0.1, 0.5): area 0.875
            for thr, (kept, faith, fpr, tpr, exact) in {
                    0.01: (2, 0.0, 0.0, 1.0, True), 0.1: (1, 1.0, 0.0, 0.5, False)}.items():
                rows.append(_row(task=task, seed=seed, method="acdc", circuit="discovered",
                                 params=json.dumps({"threshold": thr}), edges_kept=kept,
                                 sparsity=1 - kept / N_EDGES, faithfulness=faith,
                                 fpr_zero=fpr, tpr_zero=tpr, exact_zero=exact, f1_zero=0.9,
                                 runtime_s=5.0))
        # a scaling cell only "blunt" ran: not part of the ranked cells
        rows += _ranking(task, 0, "blunt", 6, 0.8, 0.1, n=100_000)
    # one failed run of "sharp" on sort, seed 2 is replaced
    rows = [r for r in rows if not (r["method"] == "sharp" and r["task"] == "sort"
                                    and r["seed"] == 2)]
    rows.append(_row(task="sort", seed=2, method="sharp", status="timeout", error="timed out",
                     circuit=None))
    return pd.DataFrame(rows, columns=COLUMNS)


def test_run_numbers_by_hand():
    runs = run_table(_synthetic_rows()).set_index(["task", "method", "n_examples", "seed"])
    sharp, blunt = runs.loc[("reverse", "sharp", 100, 0)], runs.loc[("reverse", "blunt", 100, 1)]
    assert sharp.faith_area == pytest.approx(0.85) and sharp.recovery == 1.0 and sharp.exact == 1
    assert blunt.faith_area == pytest.approx(0.45) and blunt.recovery == 0.8 and blunt.exact == 0
    acdc = runs.loc[("reverse", "acdc", 100, 0)]
    # points (0.1, 0.5), (0.2, 1.0) joined to (0, 0) and (1, 1): 0.025 + 0.075 + 0.8
    assert acdc.faith_area == pytest.approx(0.9) and acdc.exact == 1
    assert acdc.recovery == pytest.approx(1.0) and acdc.runtime_s == 10.0  # both settings
    failed = runs.loc[("sort", "sharp", 100, 2)]
    assert np.isnan(failed.faith_area) and failed.failed_settings == 1


def test_headline_ranks_intervals_and_tests():
    df = _synthetic_rows()
    assert set(main_cells(run_table(df)).n_examples) == {100}
    table = headline(df).set_index("method")
    assert list(table.index) == ["acdc", "sharp", "blunt"]  # by mean faithfulness rank
    blunt, sharp = table.loc["blunt"], table.loc["sharp"]
    assert blunt.runs == 6 and sharp.runs == 6 and sharp.failed == 1 and sharp.tasks == 2
    # acdc (0.9) ranks 1 everywhere; sharp's failed run ranks last in its cell, below blunt
    assert table.loc["acdc"].faith_area_rank == 1.0
    assert sharp.faith_area_rank == pytest.approx(13 / 6)
    assert blunt.faith_area == pytest.approx(0.45) and blunt.faith_area_rank == pytest.approx(17 / 6)
    assert blunt.faith_area_low == blunt.faith_area_high == pytest.approx(0.45)
    assert sharp.faith_area == pytest.approx(0.85) and sharp.faith_area_runs == 5
    assert blunt.runtime_s == 0.1 and blunt.runtime_s_rank == 1.0
    assert blunt.faith_area_rank_low < blunt.faith_area_rank < blunt.faith_area_rank_high
    assert sharp.runtime_s_low < sharp.runtime_s <= sharp.runtime_s_high
    assert table.loc["acdc"].exact == 1.0 and blunt.exact == 0.0
    tests = pairwise_tests(df)
    pair = tests[(tests.metric == "faith_area") & (tests.method_a == "blunt")
                 & (tests.method_b == "sharp")].iloc[0]
    # 5 matched runs, sharp better in all: exact two-sided signed-rank p = 2 / 2^5
    assert pair.cells == 5 and pair.b_better == 5 and pair.p_value == pytest.approx(2 / 32)
    assert pair.median_difference == pytest.approx(-0.4)
    same = tests[(tests.metric == "recovery") & (tests.method_a == "acdc")
                 & (tests.method_b == "sharp")].iloc[0]
    assert same.p_value == 1.0 and same.a_better == same.b_better == 0  # both AUROC 1


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("CI needs Debian's chromium for the page test (.ci/run installs it)")
    pytest.skip("no chromium: apt-get install chromium to render the leaderboard page")


def _dom(page, query=""):
    proc = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--dump-dom", f"file://{page}{query}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _headline_rows(dom):
    """The headline's body rows as a reader sees them: the text of each cell."""
    table = re.search(r"<table class=\"headline\">(.*?)</table>", dom, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
            for r in rows]


def test_the_page_a_reader_opens(tmp_path):
    scores = tmp_path / "scores.csv"
    _synthetic_rows().to_csv(scores, index=False)
    out = build_leaderboard([scores], tmp_path / "board")
    page = out["leaderboard.html"]
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # offline: nothing external
    dom = _dom(page)
    first_screen = dom[:dom.index("Per task")]
    assert "Headline" in first_screen and "integrated faithfulness" in first_screen
    rows = _headline_rows(dom)
    assert [r[0] for r in rows] == ["acdc", "sharp", "blunt"]  # by faithfulness rank
    assert "acdc ranks first on integrated faithfulness" in first_screen
    assert "paired p = " in first_screen and "cheapest: blunt" in first_screen
    # the sort the page applies on load (?sort=): runtime, cheapest first
    by_cost = [r[0] for r in _headline_rows(_dom(page, "?sort=runtime_s"))]
    assert by_cost == ["blunt", "sharp", "acdc"]
    blunt = rows[2]  # method, ablation, runs, then value and rank per measure
    assert blunt[1:5] == ["zero", "6 on 2 tasks", "0.45", "2.8 [2.5, 3]"], blunt
    assert blunt[7] == "0/6" and blunt[17].startswith("0.1")  # exact recoveries, runtime
    # node-level numbers and MIB's CPR / CMD: columns of their own, empty without node rows
    header = re.search(r"<table class=\"headline\">(.*?)</thead>", dom, re.S).group(1)
    for label in ("node integrated faithfulness", "node recovery (AUROC)", "MIB CPR", "MIB CMD"):
        assert label in header
    assert blunt[9:13] == ["", "", "", ""]
    summary = pd.read_csv(out["summary.csv"])
    assert set(summary.method) == {"acdc", "sharp", "blunt"}
    assert "p_value" in pd.read_csv(out["pairwise.csv"]).columns


def _family_rows():
    """`sharp` and `blunt` tie on the compiled task (both perfect), and differ on the compressed
    one in all 8 runs: only the per-family tests can see it."""
    rows = []
    for seed in range(8):
        rows += _ranking("reverse", seed, "sharp", 2, 1.0, 1.0)
        rows += _ranking("reverse", seed, "blunt", 2, 1.0, 1.0)
        rows += _ranking("reverse_c24", seed, "sharp", 2, 0.95, 1.0)
        rows += _ranking("reverse_c24", seed, "blunt", 6, 0.7 + 0.01 * seed, 1.0)
    # each ranking's circuit at one requested sparsity, as a score method's rows carry
    rows += [dict(r, circuit="sparsity=0.8") for r in rows if r["circuit"] == "top=2"]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["task_family"] = np.where(df.task == "reverse", "compiled", "compressed")
    return df


def test_recovery_per_task_family(tmp_path):
    from benchmark.report.families import by_family
    df = _family_rows()
    head = by_family(df, headline).set_index(["family", "method"])
    assert set(head.index.get_level_values(0)) == {"all", "compiled", "compressed"}
    assert head.loc[("compiled", "blunt")].recovery == head.loc[("compiled", "sharp")].recovery == 1
    compressed = head.loc[("compressed", "blunt")]
    assert compressed.recovery == pytest.approx(np.mean([0.7 + 0.01 * s for s in range(8)]))
    assert compressed.recovery_low < compressed.recovery < compressed.recovery_high
    assert head.loc[("all", "blunt")].runs == 16  # the pooled headline, as before
    tests = by_family(df, pairwise_tests)
    recovery = tests[tests.metric == "recovery"].set_index("family")
    assert recovery.loc["compiled"].p_value == 1.0
    # sharp better in all 8 paired runs: exact two-sided signed-rank p = 2 / 2^8
    assert recovery.loc["compressed"].p_value == pytest.approx(2 / 256)
    # a reader sees the section, the compressed family's p in bold, and the pooled headline
    scores = tmp_path / "scores.csv"
    df.to_csv(scores, index=False)
    dom = _dom(build_leaderboard([scores], tmp_path / "board")["leaderboard.html"])
    section = dom[dom.index("Recovery by task family"):dom.index("Per task")]
    assert "compiled" in section and "compressed" in section
    assert re.search(r"<td class=\"sig\">0\.0078</td>", section), section[:2000]
    assert [r[0] for r in _headline_rows(dom)] == ["sharp", "blunt"]
