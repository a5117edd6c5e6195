"""The leaderboard is built from score rows alone, shows failures, and is deterministic.

Synthetic score CSVs (no model): task `reverse` (KL, zero ablation) with ACDC at two thresholds
x 3 seeds, EAP at 4 sparsities x 3 seeds, Edge Pruning with one failed and one ok seed, EAP-IG
timed out; task `xproportion` (MSE, resample and mean ablations) with single runs.
"""
import json

import numpy as np
import pandas as pd
import pytest

from benchmark.report.leaderboard import build_leaderboard
from benchmark.scoring.recovery import sweep_auc
from benchmark.scoring.schema import COLUMNS
from benchmark.scoring.score_files import read_scores

PNGS = ("faithfulness_vs_sparsity.png", "roc.png", "runtime_vs_examples.png",
        "scaling_vs_examples.png", "kl_vs_sparsity.png")
# ACDC (fpr_zero, tpr_zero, exact_zero) per threshold and seed
ACDC = {0.01: [(0.02, 1.0, False), (0.0, 1.0, True), (0.05, 1.0, False)],
        0.1: [(0.0, 0.5, False), (0.01, 0.6, False), (0.1, 0.4, False)]}
EAP_FAITH_09 = [0.3, 0.1, 0.2]  # per seed; median 0.2
EAP_AUROC = [0.9, 0.99, 0.95]  # per seed; median 0.95


def _row(**kw):
    row = {c: None for c in COLUMNS}
    row.update(task="reverse", ablation="zero", n_examples=1000, status="ok", error="",
               faithfulness_metric="kl", method_version="1", task_version="1",
               git_commit="c0ffee", config_hash="cfg1", n_edges=100, device="cpu",
               hardware="x86_64", eval_examples=500, eval_seen_in_discovery=0.97,
               input_space=81)
    row.update(kw)
    return row


def _rows():
    rows = []
    for seed in range(3):
        for thr, points in ACDC.items():
            fpr, tpr, exact = points[seed]
            rows.append(_row(method="acdc", params=json.dumps({"threshold": thr}), seed=seed,
                             circuit="discovered", faithfulness=0.01 * thr * (seed + 1),
                             agreement=1.0, sparsity=0.9 - seed * 0.01, edges_kept=10 + seed,
                             exact_zero=exact, f1_zero=1.0 if exact else 0.8, fpr_zero=fpr,
                             tpr_zero=tpr, exact_structural=False, f1_structural=0.5,
                             fpr_structural=0.2, tpr_structural=0.5, runtime_s=1.0 + seed,
                             forward_passes=50, backward_passes=0))
        for s in (0.5, 0.8, 0.9, 0.95):
            faith = EAP_FAITH_09[seed] if s == 0.9 else 0.5 * (1 - s)
            rows.append(_row(method="eap", params="{}", seed=seed, circuit=f"sparsity={s:g}",
                             faithfulness=faith, sparsity=s, edges_kept=round(100 * (1 - s)),
                             auroc_zero=EAP_AUROC[seed], auroc_structural=0.7,
                             fpr_zero=1 - s, tpr_zero=min(1.0, 5 * (1 - s)), runtime_s=0.5,
                             forward_passes=2, backward_passes=1))
    ep = json.dumps({"target_sparsity": 0.9})
    rows.append(_row(method="edge_pruning", params=ep, seed=0, status="failed",
                     error="Traceback (most recent call last):\n  ...\nRuntimeError: boom"))
    rows.append(_row(method="edge_pruning", params=ep, seed=1, circuit="discovered",
                     faithfulness=0.02, sparsity=0.9, edges_kept=10, exact_zero=True, f1_zero=1.0,
                     fpr_zero=0.0, tpr_zero=1.0, runtime_s=20.0, forward_passes=300,
                     backward_passes=300))
    rows.append(_row(method="eap_ig", params=json.dumps({"steps": 5}), seed=0, status="timeout",
                     error="timed out after 900 s", runtime_s=900.0))
    for ablation in ("resample", "mean"):
        conv = {"resample": "resample", "mean": "zero"}[ablation]
        rows.append(_row(task="xproportion", faithfulness_metric="mse", ablation=ablation,
                         method="acdc", params=json.dumps({"threshold": 0.01}), seed=0,
                         circuit="discovered", faithfulness=0.003, sparsity=0.95, edges_kept=5,
                         **{f"exact_{conv}": True, f"f1_{conv}": 1.0, f"fpr_{conv}": 0.0,
                            f"tpr_{conv}": 1.0}, runtime_s=0.2))
        rows.append(_row(task="xproportion", faithfulness_metric="mse", ablation=ablation,
                         method="eap", params="{}", seed=0, circuit="sparsity=0.9",
                         faithfulness=float("nan"), sparsity=0.9, edges_kept=10,
                         **{f"auroc_{conv}": 0.8, f"fpr_{conv}": 0.1, f"tpr_{conv}": 0.7},
                         runtime_s=0.1))
    return rows


def _write(tmp_path, rows, name="scores", parts=3):
    files = []
    for i, chunk in enumerate(np.array_split(np.arange(len(rows)), parts)):
        path = tmp_path / f"{name}{i}.csv"
        pd.DataFrame([rows[j] for j in chunk], columns=COLUMNS).to_csv(path, index=False)
        files.append(path)
    return files


PROVENANCE = {"git_commit": "deadbeef", "config_hash": "cfgX",
              "versions": {"torch": "9.9", "circuitbench": "0.1"}}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lb")
    files = _write(tmp, _rows())
    out = build_leaderboard(files, tmp / "board", PROVENANCE)
    table = pd.read_csv(out["leaderboard.csv"], dtype={"params": str})
    return tmp, files, out, table


def _line(table, task="reverse", method="acdc", level="setting", params=None, ablation=None):
    t = table[(table.task == task) & (table.method == method) & (table.level == level)]
    if params is not None:
        t = t[t.params == params]
    if ablation is not None:
        t = t[t.ablation == ablation]
    assert len(t) == 1, t
    return t.iloc[0]


def test_scores_csv_has_every_row_in_column_order(board):
    tmp, files, out, _ = board
    scores = pd.read_csv(out["scores.csv"])
    assert list(scores.columns) == COLUMNS
    assert len(scores) == len(_rows()) == 25
    assert list(scores.task.unique()) == ["reverse", "xproportion"]
    first = scores.iloc[0]
    assert (first.method, first.seed, first.params) == ("acdc", 0, '{"threshold": 0.01}')
    # file order does not matter
    again = read_scores(list(reversed(files)))
    assert again.to_csv(index=False) == out["scores.csv"].read_text()


def test_setting_lines(board):
    *_, table = board
    assert set(table.columns) >= {"runs", "failed", "status", "faithfulness", "faith@0.9",
                                  "sparsity", "edges_kept", "f1", "exact_rate", "auroc",
                                  "sweep_auc_trapezoid", "sweep_auc_pessimistic", "runtime_s",
                                  "forward_passes", "backward_passes"}
    acdc = _line(table, params='{"threshold": 0.01}')
    assert acdc.exact_rate == "1/3" and acdc.exact_fraction == pytest.approx(1 / 3)
    assert acdc.exact_rate_zero == "1/3" and acdc.exact_rate_structural == "0/3"
    assert acdc.convention == "zero" and acdc.setting == "threshold=0.01"
    assert acdc.runs == 3 and acdc.failed == 0 and acdc.status == "ok"
    assert acdc.faithfulness == pytest.approx(0.0002) and acdc.edges_kept == 11
    assert acdc.f1 == pytest.approx(0.8) and acdc.runtime_s == pytest.approx(2.0)
    eap = _line(table, method="eap")
    assert eap["faith@0.9"] == pytest.approx(float(np.median(EAP_FAITH_09)))
    assert eap["faith@0.9_iqr"] == pytest.approx(0.1)
    assert eap["faith@0.5"] == pytest.approx(0.25)
    assert eap.auroc == pytest.approx(0.95) and eap.auroc_structural == pytest.approx(0.7)
    assert eap.runs == 3 and eap.forward_passes == 2 and eap.backward_passes == 1
    assert pd.isna(eap.exact_rate) and pd.isna(eap.sweep_auc_trapezoid)


def test_ablation_picks_the_matching_convention(board):
    *_, table = board
    resample = _line(table, task="xproportion", ablation="resample")
    mean = _line(table, task="xproportion", ablation="mean")
    assert resample.convention == "resample" and resample.exact_rate == "1/1"
    assert mean.convention == "zero" and mean.exact_rate == "1/1"
    eap = _line(table, task="xproportion", method="eap", ablation="resample")
    assert eap.auroc == pytest.approx(0.8) and pd.isna(eap["faith@0.9"])  # NaN stays empty
    assert not (table.level == "sweep")[table.task == "xproportion"].any()  # one setting


def test_sweep_auc_is_scoring_sweep_auc_median_over_seeds(board):
    *_, table = board
    per_seed = [sweep_auc([ACDC[t][s][:2] for t in ACDC]) for s in range(3)]
    assert [a["trapezoid"] for a in per_seed] == pytest.approx([0.995, 1.0, 0.975])
    sweep = _line(table, level="sweep")
    assert sweep.sweep_auc_trapezoid == pytest.approx(
        np.median([a["trapezoid"] for a in per_seed]))
    assert sweep.sweep_auc_pessimistic == pytest.approx(
        np.median([a["pessimistic"] for a in per_seed]))
    assert sweep.sweeps == 3 and sweep.runs == 6
    assert json.loads(sweep.params) == {"threshold": [0.01, 0.1]}
    assert sweep.setting == "sweep over threshold (2 settings)"
    assert sweep.runtime_s == pytest.approx(4.0)  # median over seeds of the sweep's total


def test_failures_are_counted_and_visible(board):
    _, _, out, table = board
    ep = _line(table, method="edge_pruning")
    assert ep.runs == 2 and ep.failed == 1 and ep.status == "failed (1/2)"
    assert ep.exact_rate == "1/2" and "RuntimeError: boom" in ep.failure
    ig = _line(table, method="eap_ig")
    assert ig.status == "timeout (1/1)" and pd.isna(ig.runtime_s)
    md = out["leaderboard.md"].read_text()
    assert "## reverse (kl)" in md and "## xproportion (mse)" in md
    assert "**failed (1/2)**" in md and "**timeout (1/1)**" in md
    assert "seed 0: failed: RuntimeError: boom" in md
    page = out["leaderboard.html"].read_text()
    assert "<tr class='failed'>" in page
    assert "<td class='l bad'>failed (1/2)</td>" in page
    assert "<td class='l bad'>timeout (1/1)</td>" in page


def test_each_task_says_how_held_out_its_evaluation_split_is(board):
    _, _, out, _ = board
    note = "Evaluation inputs also seen in discovery: 97% (81 distinct inputs)."
    assert note in out["leaderboard.md"].read_text()
    assert f"<p class='split'>{note}</p>" in out["leaderboard.html"].read_text()


def test_html_is_self_contained_and_has_provenance(board):
    _, _, out, _ = board
    page = out["leaderboard.html"].read_text()
    assert "<script src" not in page and "http" not in page  # its one script is inline
    for name in PNGS:
        assert f"<img src='{name}'" in page
    for text in ("deadbeef", "cfgX", "torch 9.9", "c0ffee", "cfg1", "acdc v1"):
        assert text in page
    # 100-edge graphs: no scaling table at matched sparsity (tests/test_paper_study_report.py)
    assert "Scaling at matched sparsity" not in page


def test_plots_and_determinism(board):
    tmp, files, out, _ = board
    for name in PNGS:
        data = out[name].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    again = build_leaderboard(files, tmp / "again", PROVENANCE)
    for name in ("scores.csv", "summary.csv", "pairwise.csv", "scaling_table.csv",
                 "leaderboard.csv", "leaderboard.md", "leaderboard.html", *PNGS):
        assert again[name].read_bytes() == out[name].read_bytes(), name
    assert not list((tmp / "board").glob(".*.tmp"))


def test_degenerate_inputs_do_not_crash(tmp_path):
    failed = [r for r in _rows() if r["status"] != "ok"]
    one_task_nan = [dict(r, faithfulness=None, runtime_s=None) for r in _rows()
                    if r["task"] == "xproportion"]
    (tmp_path / "empty.csv").write_text("")
    for name, rows in (("failed", failed), ("nan", one_task_nan)):
        files = _write(tmp_path, rows, name, parts=1) + [tmp_path / "empty.csv"]
        out = build_leaderboard(files, tmp_path / name)
        assert all(out[n].stat().st_size > 0 for n in PNGS)
        assert len(pd.read_csv(out["scores.csv"])) == len(rows)
    assert "failed (1/1)" in (tmp_path / "failed" / "leaderboard.md").read_text()
    out = build_leaderboard([tmp_path / "empty.csv"], tmp_path / "none")
    assert "No score rows." in out["leaderboard.md"].read_text()
