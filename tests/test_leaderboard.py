"""The leaderboard is built from score rows alone, shows failures, and is deterministic."""
import json

import pandas as pd
import pytest

from benchmark.evaluate import COLUMNS
from benchmark.leaderboard import build_leaderboard
from benchmark.scoring import sweep_auc


def _row(**kw):
    row = {c: None for c in COLUMNS}
    row.update(task="reverse", ablation="zero", n_examples=1000, status="ok", error="",
               faithfulness_metric="kl", method_version="1", git_commit="abc", n_edges=94)
    row.update(kw)
    return row


def _rows():
    rows = []
    for seed in range(3):
        for thr, exact, fpr, tpr in ((0.01, True, 0.0, 1.0), (1.0, False, 0.0, 0.5)):
            rows.append(_row(method="acdc", params=json.dumps({"threshold": thr}), seed=seed,
                             circuit="discovered", faithfulness=0.001 * (seed + 1) * thr,
                             sparsity=0.88, edges_kept=11, exact_zero=exact, f1_zero=1.0,
                             fpr_zero=fpr, tpr_zero=tpr, runtime_s=1.0 + seed,
                             forward_passes=57, backward_passes=0))
        for s, faith in ((0.5, 0.0), (0.9, 0.1 * (seed + 1))):
            rows.append(_row(method="eap", params="{}", seed=seed, circuit=f"sparsity={s:g}",
                             faithfulness=faith, sparsity=s, auroc_zero=0.99, fpr_zero=0.1,
                             tpr_zero=0.9, runtime_s=0.5, forward_passes=2, backward_passes=1))
        rows.append(_row(method="edge_pruning", params="{}", seed=seed, status="failed",
                         error="RuntimeError: boom", runtime_s=0.1))
    rows.append(_row(task="xproportion", faithfulness_metric="mse", method="eap", params="{}",
                     seed=0, circuit="sparsity=0.9", faithfulness=0.02, sparsity=0.9,
                     auroc_zero=1.0, fpr_zero=0.0, tpr_zero=1.0, runtime_s=0.1))
    return rows


@pytest.fixture()
def board(tmp_path):
    rows = _rows()
    files = []
    for i, chunk in enumerate((rows[:10], rows[10:])):
        path = tmp_path / f"part{i}.csv"
        pd.DataFrame(chunk, columns=COLUMNS).to_csv(path, index=False)
        files.append(path)
    out = build_leaderboard(files, tmp_path / "board", {"git_commit": "abc"})
    return tmp_path, files, out


def test_tables(board):
    tmp, files, out = board
    scores = pd.read_csv(out["scores.csv"])
    assert list(scores.columns) == COLUMNS and len(scores) == len(_rows())
    table = pd.read_csv(out["leaderboard.csv"])
    acdc = table[(table.method == "acdc") & (table.params == '{"threshold": 0.01}')].iloc[0]
    assert acdc.exact_rate == "3/3" and acdc.runs == 3 and acdc.runtime_s == 2.0
    eap = table[(table.method == "eap") & (table.task == "reverse")].iloc[0]
    assert eap["faith@0.9"] == pytest.approx(0.2) and eap.auroc == pytest.approx(0.99)
    expected = sweep_auc([(0.0, 1.0), (0.0, 0.5)])
    assert acdc.sweep_auc_trapezoid == pytest.approx(expected["trapezoid"])
    assert acdc.sweep_auc_pessimistic == pytest.approx(expected["pessimistic"])
    ep = table[table.method == "edge_pruning"].iloc[0]
    assert ep.failed == 3 and "boom" in ep.failure


def test_failures_are_visible(board):
    _, _, out = board
    md = out["leaderboard.md"].read_text()
    assert "## reverse (kl)" in md and "## xproportion (mse)" in md
    assert "**3/3 failed**" in md
    page = out["leaderboard.html"].read_text()
    assert "class='failed'" in page and "roc.png" in page and "abc" in page


def test_plots_and_determinism(board):
    tmp, files, out = board
    for name in ("faithfulness_vs_sparsity.png", "roc.png", "runtime_vs_examples.png"):
        data = out[name].read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 5000
    again = build_leaderboard(files, tmp / "again", {"git_commit": "abc"})
    for name in ("leaderboard.csv", "leaderboard.md", "scores.csv"):
        assert again[name].read_bytes() == out[name].read_bytes()
