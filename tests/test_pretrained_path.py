"""The pretrained-model path end to end, offline: GPT-2 small's config, randomly initialised and
saved with save_pretrained, loaded by path through the same `gpt2` LMSpec route a user's
downloaded weights take (the config's `pretrained` field), through the workflow to a
leaderboard with Wang et al.'s published IOI heads scored. Nothing downloads."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gpt2_small_copy(tmp_path_factory):
    import torch
    import transformers

    from benchmark.backends.lm.prompts import local_tokenizer
    from benchmark.core.registry import LM_MODELS, PROMPT_TASKS
    tok = local_tokenizer(*(PROMPT_TASKS.get(t) for t in LM_MODELS.get("gpt2").tasks))
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gpt2_small") / "gpt2"
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_a_saved_gpt2_small_runs_through_the_workflow(gpt2_small_copy, tmp_path):
    results, cache = tmp_path / "results", tmp_path / "cache"
    config = {
        "results": str(results), "cache": str(cache), "pretrained": {"gpt2": str(gpt2_small_copy)},
        "eval_examples": 16, "sparsities": [0.9, 0.99], "timeout_s": 600,
        "studies": {"pretrained": {
            "tasks": ["ioi@gpt2"], "seeds": [0], "examples": [16], "ablations": ["resample"],
            "methods": {"eap": {"batch_size": [16]}, "random": None,
                        "edge_pruning": {"steps": [2], "batch_size": [4],
                                         "target_sparsity": [0.95]}}}}}
    (tmp_path / "pretrained.yaml").write_text(json.dumps(config))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    env.pop("CIRCUITBENCH_PRETRAINED", None)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
                           str(tmp_path / "pretrained.yaml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    task = json.loads((results / "tasks" / "ioi@gpt2.json").read_text())
    assert task["n_edges"] == 32_491
    assert task["model_report"]["local_copy"] == str(gpt2_small_copy)
    assert len(task["ground_truth"]["published"]) == 26  # Wang et al.'s heads
    scores = pd.read_csv(results / "leaderboard" / "scores.csv")
    assert set(scores.method) == {"eap", "random", "edge_pruning"}
    assert (scores.status == "ok").all(), scores.error.unique()
    assert scores.faithfulness.notna().all()
    # the published convention is scored at node level on every circuit
    assert scores.auroc_published.notna().any() and scores.f1_published.notna().all()
    board = (results / "leaderboard" / "leaderboard.md").read_text()
    assert "ioi@gpt2" in board and "edge_pruning" in board
