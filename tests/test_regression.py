"""CI regression: the tiny CI workflow reproduces the committed reference numbers.

The workflow runs once per session (config/ci.yaml, about two minutes on two cores; the `ci_run`
fixture of conftest.py, shared with tests/test_slurm.py). A refactor that moves a faithfulness
or recovery number beyond its tolerance fails here. To accept new
numbers on purpose: `python -m benchmark update-reference` after a CI run, and review the diff.
"""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import snakemake_ci

from benchmark.scoring import regression


def _scores(results):
    return regression.read_scores(sorted(Path(results, "scores").rglob("*.csv")))


def test_ci_numbers_match_reference(ci_run):
    reference = pd.read_csv(regression.REFERENCE, dtype={"params": str, "circuit": str})
    problems = regression.compare(_scores(ci_run), reference)
    assert not problems, "\n".join(problems[:20])


def test_ci_run_covers_reference_exactly(ci_run):
    """Every row of the run is in the reference; node rows (circuit `node:...`) too, once the
    reference holds them (`update-reference`): one written before they existed has none."""
    reference = pd.read_csv(regression.REFERENCE, dtype={"params": str, "circuit": str})
    scores = _scores(ci_run)
    if not reference.circuit.str.startswith("node:").any():
        scores = scores[~scores.circuit.astype(str).str.startswith("node:")]
    assert len(scores) == len(reference)


def test_leaderboard_files_built(ci_run):
    board = Path(ci_run, "leaderboard")
    for name in ("scores.csv", "summary.csv", "pairwise.csv", "scaling_table.csv",
                 "leaderboard.csv", "leaderboard.md", "leaderboard.html",
                 "faithfulness_vs_sparsity.png", "roc.png", "runtime_vs_examples.png",
                 "scaling_vs_examples.png", "kl_vs_sparsity.png"):
        assert (board / name).stat().st_size > 0, name
    md = (board / "leaderboard.md").read_text()
    assert "reverse" in md and "xproportion" in md


def test_language_model_rows(ci_run):
    """The workflow trains its GPT-2 until it solves its tasks, and every method's rows on it
    have finite faithfulness, a task-metric ratio, a runtime, and no ground-truth columns."""
    import json
    import math
    report = json.loads(Path(ci_run, "models", "tiny_gpt2.json").read_text())
    assert min(report["accuracy"].values()) >= 0.95, report
    lm = _scores(ci_run).query("task == 'ioi@tiny_gpt2'")
    assert set(lm.method) == {"acdc", "eap", "eap_ig", "edge_pruning", "random",
                              "exact_patching", "eap_ig_activations", "ifr", "hisp", "nap",
                              "subnetwork_probing"}
    assert (lm.status == "ok").all() and (lm.eval_seen_in_discovery == 0).all()
    for col in ("faithfulness", "task_metric_ratio", "runtime_s"):
        assert all(math.isfinite(float(v)) for v in lm[col]), col
    assert lm[[c for c in lm.columns
                if c.startswith(("f1_", "auroc_", "node_f1_", "node_auroc_"))]].isna().all().all()
    # MIB's CPR / CMD with the task's own metric (logit difference) on every ranking's rows
    # at the ranking's own level: an edge ranking's edge rows, a node ranking's (HISP, NAP) node
    # rows; an edge ranking's node projection has none
    ranked = lm[lm.circuit.str.startswith("top=") | lm.method.isin(["hisp", "nap"])]
    assert ranked.mib_cpr.notna().all() and ranked.mib_cmd.notna().all()
    assert lm[lm.circuit.str.startswith("node:top=") & ~lm.method.isin(["hisp", "nap"])
              ].mib_cpr.isna().all()
    md = Path(ci_run, "leaderboard", "leaderboard.md").read_text()
    assert "## ioi@tiny_gpt2 (kl)" in md and "task metric ratio" in md


def test_rerun_is_noop_and_deleted_run_reruns_identically(ci_run, compiled_cache):
    dry = snakemake_ci("-n", results=ci_run, cache=compiled_cache)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr
    victim = sorted(Path(ci_run, "circuits").rglob("*.json"))[0]
    before = _scores(ci_run)
    victim.unlink()
    dry = snakemake_ci("-n", "--quiet", "rules", results=ci_run, cache=compiled_cache)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0
    counts = dict(line.split()[:2] for line in out.splitlines()
                  if len(line.split()) == 2 and line.split()[1].isdigit())
    assert counts.get("discover") == "1" and counts.get("score") == "1", out
    assert "compile_task" not in counts and "make_dataset" not in counts, out
    rerun = snakemake_ci(results=ci_run, cache=compiled_cache)
    assert rerun.returncode == 0 and victim.exists()
    # the rerun reproduces every score exactly, timing aside (determinism)
    timing = ["runtime_s", "peak_mem_mb"]
    pd.testing.assert_frame_equal(_scores(ci_run).drop(columns=timing),
                                  before.drop(columns=timing))


def test_moving_a_number_beyond_tolerance_fails():
    reference = pd.read_csv(regression.REFERENCE, dtype={"params": str, "circuit": str})
    current = reference.copy()
    assert regression.compare(current, reference) == []
    i = current.index[current["faithfulness"].notna()][0]
    abs_tol, rel_tol = regression.TOLERANCES["faithfulness"]
    allowed = abs_tol + rel_tol * abs(reference.loc[i, "faithfulness"])
    current.loc[i, "faithfulness"] = reference.loc[i, "faithfulness"] + 0.5 * allowed
    assert regression.compare(current, reference) == []
    current.loc[i, "faithfulness"] = reference.loc[i, "faithfulness"] + 2 * allowed + 1e-3
    problems = regression.compare(current, reference)
    assert len(problems) == 1 and "faithfulness" in problems[0]


def test_changed_recovery_or_missing_row_fails():
    reference = pd.read_csv(regression.REFERENCE, dtype={"params": str, "circuit": str})
    current = reference.copy()
    current.loc[0, "edges_kept"] = current.loc[0, "edges_kept"] + 1
    assert any("edges_kept" in p for p in regression.compare(current, reference))
    assert any("missing row" in p for p in regression.compare(current.iloc[1:], reference))


def test_update_reference_command_writes_sorted_rows(tmp_path):
    from benchmark.scoring.schema import COLUMNS
    reference = pd.read_csv(regression.REFERENCE, dtype={"params": str, "circuit": str})
    src = tmp_path / "scores.csv"  # a score file: the score columns, the reference's rows
    reference.sample(frac=1.0, random_state=0).reindex(columns=COLUMNS).to_csv(src, index=False)
    out = tmp_path / "ref.csv"
    proc = subprocess.run([sys.executable, "-m", "benchmark", "update-reference", "--scores",
                           str(src), "--out", str(out)], capture_output=True, text=True,
                          env=os.environ)
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(out, dtype={"params": str, "circuit": str})
    assert regression.compare(written, reference) == []
    # every compared column of the score files (the committed reference predates some)
    assert list(written.columns) == regression.KEY + list(regression.TOLERANCES)
    assert [c for c in written.columns if c in reference.columns] == list(reference.columns)


def test_a_score_row_twice_is_refused_naming_it_and_its_files(tmp_path):
    """A folder holding a copy of a score file (a leaderboard's scores.csv, a backup) would give
    the reference one row twice, and compare() would check against either."""
    from benchmark.scoring.schema import COLUMNS
    reference = pd.read_csv(regression.REFERENCE, dtype={"params": str, "circuit": str})
    rows = reference.head(3).reindex(columns=COLUMNS)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    rows.to_csv(a, index=False)
    rows.iloc[2:].to_csv(b, index=False)
    assert len(regression.read_scores([a])) == 3
    with pytest.raises(ValueError, match="is there twice") as err:
        regression.read_scores([a, b])
    assert f"{a}, {b}" in str(err.value) and f"'task': '{rows.task.iloc[2]}'" in str(err.value)
