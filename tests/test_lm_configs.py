"""The pretrained-LM configs (config/gpt2.yaml, config/tinyllama_1b.yaml) plan as they say.

Their real runs need downloaded weights and a GPU; a dry run needs neither, so this checks that
each config validates, names only known tasks and valid hyper-parameters, and plans one
discovery per point of its grid, offline and without touching the Hugging Face cache. A local
copy of a pretrained model (the config's `pretrained` field) is loaded and is part of the
provenance; without one, offline, the error is one line saying how to give one.
"""
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, job_counts, validated_config

from benchmark.workflow.plan import Plan

CONFIGS = ("gpt2", "tinyllama_1b")


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    """Both dry runs, started together (planning hashes every method's source: tens of seconds
    each on a busy machine)."""
    procs = {}
    for name in CONFIGS:
        tmp = tmp_path_factory.mktemp(f"{name}_dry")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HOME": str(tmp / "hf_home")}
        cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "host",
               "--configfile", f"config/{name}.yaml",
               "--config", f"results={tmp / 'results'}", f"cache={tmp / 'cache'}"]
        procs[name] = (tmp, subprocess.Popen(cmd, cwd=ROOT, env=env, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    out = {}
    for name, (tmp, proc) in procs.items():
        stdout, _ = proc.communicate(timeout=600)
        out[name] = (tmp, proc.returncode, stdout)
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_plans_the_grid(dry_runs, name):
    """Snakemake runs what the plan (benchmark/workflow/plan.py) says: one discovery per run,
    a dataset per (task, n, seed), a score job per group, a trained model per LM model."""
    tmp, returncode, output = dry_runs[name]
    assert returncode == 0, output[-3000:]
    plan = Plan(validated_config(ROOT / "config" / f"{name}.yaml"))
    counts = job_counts(output)
    assert counts["discover"] == len(plan.runs), counts
    assert counts["make_dataset"] == len(plan.datasets), counts
    assert counts["score"] == len(plan.groups), counts
    assert counts["train_model"] == len(plan.models), counts
    assert counts["compile_task"] == len(plan.tasks), counts
    assert all("@" in t for t in plan.tasks)
    # planning loads no weights: nothing was written to the Hugging Face cache
    assert not (tmp / "hf_home").exists() or not any((tmp / "hf_home").rglob("*"))


def test_gpt2_small_declares_the_published_ioi_circuit():
    """Wang et al.'s 26 heads, every one a head of GPT-2 small's graph (12 layers x 12 heads),
    for IOI and IOI-t1 only; without loading any weights."""
    from benchmark.core.registry import LM_MODELS
    from benchmark.graph.graph import Graph
    from tasks.prompts.ioi_circuit import IOI_HEAD_CLASSES
    gpt2 = LM_MODELS.get("gpt2")
    heads = gpt2.published_circuit("ioi")
    assert len(heads) == 26 == sum(len(v) for v in IOI_HEAD_CLASSES.values())
    assert heads <= set(Graph(12, 12, ("input",)).writers)
    assert {"a9.h9", "a9.h6", "a10.h0"} <= heads  # the name movers
    assert gpt2.published_circuit("ioi_t1") == heads
    assert gpt2.published_circuit("greater_than") is None


@pytest.fixture
def gpt2_copy(tmp_path, monkeypatch):
    """A local copy of `gpt2` as the config's `pretrained` field hands it to jobs: GPT-2 small's
    12 layers x 12 heads (its published IOI heads exist) at a tiny width, randomly initialised,
    with a word-level tokenizer of its prompt tasks, saved by save_pretrained."""
    import torch
    import transformers

    from benchmark.backends.lm.models import PRETRAINED_ENV
    from benchmark.backends.lm.prompts import local_tokenizer
    from benchmark.core.registry import LM_MODELS, PROMPT_TASKS
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = local_tokenizer(*(PROMPT_TASKS.get(t) for t in LM_MODELS.get("gpt2").tasks))
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=24, n_layer=12,
                                  n_head=12)
    path = tmp_path / "gpt2_copy"
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    monkeypatch.setenv(PRETRAINED_ENV, json.dumps({"gpt2": str(path)}))
    return str(path)


def test_a_local_copy_of_a_pretrained_model_is_loaded(gpt2_copy, monkeypatch, tmp_path):
    import torch

    from benchmark.backends.lm.models import PRETRAINED_ENV, lm_model_key
    from benchmark.backends.lm.task import lm_task_key, load_lm_task
    task = load_lm_task("ioi@gpt2", cache=tmp_path / "cache")
    assert task.source == gpt2_copy and task.report["local_copy"] == gpt2_copy
    assert task.graph.n_edges == 32_491 and task.conventions == ("published",)
    data = task.dataset(8, seed=0, n_eval=1).discovery
    with torch.no_grad():
        assert task.model(data.clean).shape == (8, 2, task.model.hf.config.vocab_size)
    # the copy is part of the provenance: another copy (or none) reruns the task's chain
    keys = {(lm_task_key("ioi@gpt2"), lm_model_key("gpt2"))}
    monkeypatch.setenv(PRETRAINED_ENV, json.dumps({"gpt2": str(tmp_path / "other")}))
    keys.add((lm_task_key("ioi@gpt2"), lm_model_key("gpt2")))
    monkeypatch.delenv(PRETRAINED_ENV)
    keys.add((lm_task_key("ioi@gpt2"), lm_model_key("gpt2")))
    assert len({k for pair in keys for k in pair}) == 6


def test_a_wrong_pretrained_entry_is_one_clear_line(gpt2_copy, monkeypatch, tmp_path):
    from benchmark.backends.lm.models import PRETRAINED_ENV
    from benchmark.backends.lm.task import lm_task_key, load_lm_task
    for name in ("no_such_model", "tiny_gpt2"):  # unknown, or trained here
        monkeypatch.setenv(PRETRAINED_ENV, json.dumps({name: gpt2_copy}))
        with pytest.raises(ValueError, match=f"`pretrained`: '{name}' .*known: codellama_13b, gpt2, tinyllama_1b"):
            lm_task_key("ioi@gpt2")
    missing = str(tmp_path / "missing")
    monkeypatch.setenv(PRETRAINED_ENV, json.dumps({"gpt2": missing}))
    with pytest.raises(ValueError, match="config field `pretrained` points at") as err:
        load_lm_task("ioi@gpt2", cache=tmp_path / "cache")
    assert missing in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("how", ["cli", "job"])
def test_gpt2_offline_without_a_copy_is_one_line(tmp_path, how):
    """`compile` exits 2 with one line; a workflow job (nothing catches the error) exits 1 with
    the same line: no traceback either way."""
    env = {k: v for k, v in os.environ.items() if k != "CIRCUITBENCH_PRETRAINED"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    job = f"from benchmark.backends.lm.models import load_model; load_model('gpt2', {str(tmp_path)!r})"
    cmd = (["-m", "benchmark", "compile", "--task", "ioi@gpt2", "--cache", str(tmp_path)]
           if how == "cli" else ["-c", job])
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == (2 if how == "cli" else 1)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model 'gpt2': "), proc.stderr
    assert "HF_HUB_OFFLINE" in lines[0] and "config field `pretrained: {gpt2: <dir>}`" in lines[0]
