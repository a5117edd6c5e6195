"""The pretrained-LM configs (config/gpt2.yaml, config/tinyllama.yaml) plan as they say.

Their real runs need downloaded weights and a GPU; a dry run needs neither, so this checks that
each config validates, names only known tasks and valid hyper-parameters, and plans one
discovery per point of its grid, offline and without touching the Hugging Face cache.
"""
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("gpt2", "tinyllama")


def _study_defaults() -> dict:
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    study = schema["properties"]["studies"]["additionalProperties"]["properties"]
    return {k: v["default"] for k, v in study.items() if "default" in v}


def expected_runs(config: dict) -> set:
    """Every (task, n, seed, ablation, method, setting) the config asks for, as the workflow
    expands it: the product of each study's lists and method grids, duplicates counted once."""
    defaults, runs = _study_defaults(), set()
    for block in config["studies"].values():
        block = {**defaults, **block}
        for task, n, seed, ablation in itertools.product(
                block["tasks"], block["examples"], block["seeds"], block["ablations"]):
            for method, grid in block["methods"].items():
                grid = grid or {}
                keys = sorted(grid)
                for combo in itertools.product(*(grid[k] for k in keys)):
                    runs.add((task, n, seed, ablation, method, tuple(zip(keys, combo))))
    return runs


def job_counts(output: str) -> dict:
    """rule -> count from the last 'Job stats' table of Snakemake's output."""
    table = output.rsplit("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE)}


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
    tmp, returncode, output = dry_runs[name]
    assert returncode == 0, output[-3000:]
    config = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    runs = expected_runs(config)
    counts = job_counts(output)
    assert counts["discover"] == len(runs), counts
    assert counts["make_dataset"] == len({(t, n, s) for t, n, s, *_ in runs}), counts
    assert counts["score"] == len({(t, n, s, a) for t, n, s, a, *_ in runs}), counts
    models = {t.split("@", 1)[1] for t, *_ in runs}
    assert counts["train_model"] == len(models), counts
    assert all("@" in t for t, *_ in runs)
    # planning loads no weights: nothing was written to the Hugging Face cache
    assert not (tmp / "hf_home").exists() or not any((tmp / "hf_home").rglob("*"))


def test_expected_runs_counts_a_grid():
    config = {"studies": {
        "a": {"tasks": ["x", "y"], "examples": [1, 2], "methods": {
            "m": {"p": [1, 2, 3], "q": [0.1, 0.2]}, "r": None}},
        "b": {"tasks": ["x"], "examples": [1], "methods": {"r": None}},  # a duplicate of a's
    }}
    assert len(expected_runs(config)) == 2 * 2 * (3 * 2 + 1)


def test_gpt2_small_declares_the_published_ioi_circuit():
    """Wang et al.'s 26 heads, every one a head of GPT-2 small's graph (12 layers x 12 heads),
    for IOI and IOI-t1 only; without loading any weights."""
    from benchmark.graph import Graph
    from benchmark.registry import LM_MODELS
    from tasks.ioi_circuit import IOI_HEAD_CLASSES
    gpt2 = LM_MODELS.get("gpt2")
    heads = gpt2.published_circuit("ioi")
    assert len(heads) == 26 == sum(len(v) for v in IOI_HEAD_CLASSES.values())
    assert heads <= set(Graph(12, 12, ("input",)).writers)
    assert {"a9.h9", "a9.h6", "a10.h0"} <= heads  # the name movers
    assert gpt2.published_circuit("ioi_t1") == heads
    assert gpt2.published_circuit("greater_than") is None
