"""A result reruns exactly when something it depends on changed, and nothing else reruns.

The workflow runs on a copy of the project (so the test can edit its code), with a tiny config.
Each case edits one thing, asks Snakemake's dry run which jobs it would run, and checks that
list; the corrupt-file cases then run the workflow and check that nothing good was lost.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import job_counts

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
results: results
cache: {cache}
eval_examples: 50
sparsities: [0.9]
timeout_s: 120
studies:
  main:
    tasks: [reverse, xproportion]
    seeds: [0]
    examples: [50]
    ablations: [zero]
    methods:
      random: null
      eap: null
"""


def _smk(project, *args):
    env = dict(os.environ, PYTHONPATH=str(project))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml", *args]
    return subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env)


def _planned(project) -> dict[str, int]:
    """{rule: job count} that a dry run would run now."""
    proc = _smk(project, "-n", "--quiet", "rules")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return job_counts(out)


@pytest.fixture(scope="module")
def project(tmp_path_factory, get_task):
    for name in ("reverse", "xproportion"):
        get_task(name)
    root = tmp_path_factory.mktemp("project")
    for item in ("benchmark", "methods", "tasks", "workflow", "config", "Snakefile"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(
            src, root / item, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                 if src.is_dir() else {}))
    (root / "tiny.yaml").write_text(CONFIG.format(cache=os.environ["CIRCUITBENCH_CACHE"]))
    proc = _smk(root)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    scores = pd.concat(pd.read_csv(p) for p in (root / "results/scores").rglob("*.csv"))
    assert (scores.status == "ok").all(), scores.error.unique()
    assert _planned(root) == {}
    return root


class edited:
    """Append to (or replace in) one file of the project copy; restored on exit."""

    def __init__(self, path: Path, old: str | None = None, new: str = "\n# edited\n"):
        self.path, self.old, self.new = path, old, new

    def __enter__(self):
        self.original = self.path.read_text()
        text = (self.original + self.new if self.old is None
                else self.original.replace(self.old, self.new))
        assert text != self.original
        self.path.write_text(text)

    def __exit__(self, *exc):
        self.path.write_text(self.original)


def test_editing_a_task_reruns_only_that_tasks_chain(project):
    with edited(project / "tasks/tracr/reverse.py", "vocab=(1, 2, 3)", "vocab=(1, 2, 3, 4)"):
        plan = _planned(project)
    # reverse: compile, its dataset, its two discoveries, its scoring; xproportion: nothing
    assert plan == {"compile_task": 1, "make_dataset": 1, "discover": 2, "score": 1,
                    "leaderboard": 1}, plan
    assert _planned(project) == {}


def test_a_helper_imported_inside_a_function_is_part_of_the_key(tmp_path, monkeypatch):
    """A task program calling a project helper (imported lazily, as programs import tracr)."""
    from benchmark.core import fingerprint
    pkg = tmp_path / "mytasks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("def vocab():\n    return (1, 2, 3)\n")
    (pkg / "task.py").write_text("def program():\n    from mytasks.helper import vocab\n"
                                 "    return vocab()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert set(fingerprint.module_closure("mytasks.task")) == {"mytasks.task", "mytasks.helper"}
    before = fingerprint.code_key("mytasks.task")
    (pkg / "helper.py").write_text("def vocab():\n    return (1, 2, 3, 4)\n")
    fingerprint.code_key.cache_clear()  # one process sees one version of the code
    assert fingerprint.code_key("mytasks.task") != before


def test_editing_shared_method_code_reruns_that_methods_runs(project):
    with edited(project / "methods/attribution.py"):
        plan = _planned(project)
    # EAP imports methods/attribution.py (random does not): its two runs and their scoring
    assert plan == {"discover": 2, "score": 2, "leaderboard": 1}, plan


def test_editing_the_discover_stage_reruns_every_run(project):
    with edited(project / "benchmark/protocol.py"):
        plan = _planned(project)
    assert plan == {"discover": 4, "score": 2, "leaderboard": 1}, plan


def test_editing_scoring_code_rescores_only(project):
    with edited(project / "benchmark/scoring/evaluate.py"):
        plan = _planned(project)
    assert plan == {"score": 2, "leaderboard": 1}, plan


@pytest.mark.parametrize("module", ["leaderboard", "summary", "render", "headline",
                                    "render_headline", "plots", "scaling_table",
                                    "render_scaling"])
def test_editing_report_code_rebuilds_only_the_leaderboard(project, module):
    with edited(project / f"benchmark/report/{module}.py"):
        plan = _planned(project)
    assert plan == {"leaderboard": 1}, plan


def test_adding_a_seed_rescores_no_old_cell(project):
    """Score jobs depend on the config fields scoring reads, not on the whole config."""
    with edited(project / "tiny.yaml", "seeds: [0]", "seeds: [0, 1]"):
        plan = _planned(project)
    # the new seed's chain on both tasks; the seed-0 score files stay as they are
    assert plan == {"make_dataset": 2, "discover": 4, "score": 2, "leaderboard": 1}, plan
    assert _planned(project) == {}


def test_ok_circuits_with_missing_or_non_finite_scores_are_set_aside(project):
    """The protocol's check on every ok record before planning: its scores file there and the
    one it names (sha256), exactly the graph's edges, finite scores. A bad pair is moved aside
    (record and scores file) and its discovery reruns, once."""
    import hashlib

    import numpy as np
    from benchmark.core.score_file import scores_path
    circuits = project / "results/circuits"
    cut = circuits / "reverse/zero/n50/s0/eap/default.json"
    nan = circuits / "xproportion/zero/n50/s0/eap/default.json"
    swapped = circuits / "reverse/zero/n50/s0/random/default.json"
    missing = circuits / "xproportion/zero/n50/s0/random/default.json"
    paths = (cut, nan, swapped, missing)
    originals = {p: p.read_text() for p in paths}
    side = {p: Path(scores_path(p)) for p in paths}
    side_bytes = {p: side[p].read_bytes() for p in paths}
    side[swapped].write_bytes(side_bytes[cut])              # another record's scores file
    side[cut].write_bytes(side_bytes[cut][:300])            # truncated
    side[missing].unlink()
    values = np.load(side[nan])
    values[0] = np.nan                                      # non-finite, the hash made to match
    np.save(side[nan], values)
    record = json.loads(originals[nan])
    record["scores"]["sha256"] = hashlib.sha256(side[nan].read_bytes()).hexdigest()
    nan.write_text(json.dumps(record))
    proc = _smk(project)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "does not match the record's sha256" in log, log[-3000:]
    assert "is missing or unreadable" in log, log[-3000:]
    assert "non-finite scores for 1 edges" in log and "tok_embeds->a0.h0<q>" in log
    for path in paths:
        assert Path(str(path) + ".damaged").exists()  # kept for inspection, with its scores
        assert Path(str(side[path]) + ".damaged").exists() == (path is not missing)
        rerun, original = json.loads(path.read_text()), json.loads(originals[path])
        assert rerun["status"] == "ok" and rerun["scores"] == original["scores"]
        assert side[path].read_bytes() == side_bytes[path]
        Path(str(path) + ".damaged").unlink()
    assert _planned(project) == {}


def test_a_second_config_into_the_same_results_is_refused(project):
    other = project / "other.yaml"
    other.write_text((project / "tiny.yaml").read_text().replace("eap: null", "acdc: null"))
    env = dict(os.environ, PYTHONPATH=str(project))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "-n", "--configfile", "other.yaml"]
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "results folder 'results' holds the results of tiny.yaml, not of other.yaml" in out
    proc = subprocess.run(cmd + ["--config", "share_results=True"], cwd=project,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    other.unlink()


@pytest.mark.parametrize("setting, says", [
    ('results: ""', "config results is empty"),
    ("results: /", "config results is '/', the filesystem root"),
    ("cache: tiny.yaml/cache", "config cache 'tiny.yaml/cache' is not writable"),
])
def test_bad_output_folders_are_refused_before_any_job(project, setting, says):
    key = setting.split(":")[0]
    lines = [ln for ln in (project / "tiny.yaml").read_text().splitlines()
             if not ln.startswith(f"{key}:") and not ln.startswith("results:")]
    (project / "bad.yaml").write_text("\n".join([setting, "results: results_bad"
                                                 if key != "results" else "", *lines]) + "\n")
    env = dict(os.environ, PYTHONPATH=str(project))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "-n", "--configfile", "bad.yaml"]
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env)
    (project / "bad.yaml").unlink()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and says in out, out[-3000:]
    assert "Traceback" not in out


def test_truncated_dataset_is_rebuilt_and_no_circuit_lost(project):
    scores = sorted((project / "results/scores").rglob("*.csv"))
    before = pd.concat(pd.read_csv(p) for p in scores)
    data = project / "results/data/reverse/n50_s0.pt"
    data.write_bytes(data.read_bytes()[:100])
    proc = _smk(project)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    circuits = sorted((project / "results/circuits").rglob("*.json"))
    assert len(circuits) == 4
    after = pd.concat(pd.read_csv(p) for p in scores)
    timing = ["runtime_s", "peak_mem_mb"]
    pd.testing.assert_frame_equal(after.drop(columns=timing).reset_index(drop=True),
                                  before.drop(columns=timing).reset_index(drop=True))
    logs = "".join(p.read_text() for p in (project / "results/logs").rglob("*.log"))
    assert "n50_s0.pt is unreadable" in logs and "rebuilding it" in logs


def test_damaged_circuit_and_score_files_are_set_aside_and_recomputed(project):
    circuits = {p: p.read_bytes() for p in (project / "results/circuits").rglob("*.json")}
    scores = sorted((project / "results/scores").rglob("*.csv"))
    before = pd.concat(pd.read_csv(p) for p in scores)
    circuit = project / "results/circuits/reverse/zero/n50/s0/eap/default.json"
    circuit.write_text(circuit.read_text()[:200])              # truncated
    other = project / "results/circuits/xproportion/zero/n50/s0/eap/default.json"
    record = json.loads(other.read_text())
    other.write_text(json.dumps({**record, "scores": None}))   # edited: an ok run, no scores
    score = project / "results/scores/xproportion/zero/n50/s0.csv"
    score.write_text(score.read_text()[:-40])                  # last row cut short
    planned = _planned(project)  # the dry run already sets them aside
    assert planned == {"discover": 2, "score": 2, "leaderboard": 1}, planned
    for path in (circuit, other, score):
        assert Path(str(path) + ".damaged").exists()
    proc = _smk(project)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for path, content in circuits.items():
        if path not in (circuit, other):
            assert path.read_bytes() == content, f"{path} was touched"
    assert json.loads(circuit.read_text())["status"] == "ok"
    after = pd.concat(pd.read_csv(p) for p in scores)
    timing = ["runtime_s", "peak_mem_mb"]
    pd.testing.assert_frame_equal(after.drop(columns=timing).reset_index(drop=True),
                                  before.drop(columns=timing).reset_index(drop=True))
    for path in (circuit, other, score):
        Path(str(path) + ".damaged").unlink()


FAULTY_METHOD = '''
import json
import os
import sys
from dataclasses import dataclass

from benchmark.protocol import Adapter


class {cls}(Adapter):
    name = "{name}"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        pass

    def discover(self, problem, params):
        {body}


ADAPTER = {cls}
'''


def test_self_killing_methods_leave_cells_and_a_complete_leaderboard(project):
    """Methods that exit the interpreter or kill their own process, run by the workflow: the
    jobs succeed, the cells say what happened, the other methods and the leaderboard are there."""
    added = {"selfkill": "os.kill(os.getpid(), 9)", "exits": "sys.exit(0)"}
    for name, body in added.items():
        (project / f"methods/{name}.py").write_text(
            FAULTY_METHOD.format(cls=name.title(), name=name, body=body))
    config = (CONFIG.format(cache=os.environ["CIRCUITBENCH_CACHE"])
              .replace("results: results", "results: results_faulty")
              .replace("tasks: [reverse, xproportion]", "tasks: [xproportion]")
              .replace("      eap: null\n", "      selfkill: null\n      exits: null\n"))
    (project / "tiny.yaml").rename(project / "tiny.yaml.orig")
    (project / "tiny.yaml").write_text(config)
    try:
        proc = _smk(project)
    finally:
        (project / "tiny.yaml.orig").replace(project / "tiny.yaml")
        for name in added:
            (project / f"methods/{name}.py").unlink()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    board = project / "results_faulty/leaderboard"
    scores = pd.read_csv(board / "scores.csv")
    status = dict(zip(scores.method, scores.status))
    assert status == {"random": "ok", "selfkill": "failed", "exits": "failed"}, status
    errors = dict(zip(scores.method, scores.error))
    assert "killed by signal 9 (SIGKILL)" in errors["selfkill"]
    assert "exit code 0" in errors["exits"]
    md = (board / "leaderboard.md").read_text()
    assert "selfkill" in md and "exits" in md and "random" in md


STR_PARAM_METHOD = '''
from dataclasses import dataclass

from benchmark.protocol import Adapter, Discovery


class Named(Adapter):
    name = "named"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        label: str = "x"

    def discover(self, problem, params):
        return Discovery("scores", scores={e: float(i) for i, e in
                                           enumerate(problem.graph.edges)})


ADAPTER = Named
'''


def test_a_broken_method_module_and_a_path_like_parameter(project):
    """A module of methods/ that fails to import is named and the run goes on; a parameter
    value with `/` is one path component of its circuit file."""
    (project / "methods/named.py").write_text(STR_PARAM_METHOD)
    (project / "methods/broken.py").write_text("def discover(:\n")
    config = (CONFIG.format(cache=os.environ["CIRCUITBENCH_CACHE"])
              .replace("results: results", "results: results_named")
              .replace("tasks: [reverse, xproportion]", "tasks: [xproportion]")
              .replace("      eap: null\n", "      named: {label: [a/b, c%d]}\n"))
    (project / "named.yaml").write_text(config)
    env = dict(os.environ, PYTHONPATH=str(project))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "named.yaml"]
    try:
        proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env)
        listed = subprocess.run([sys.executable, "-m", "benchmark", "list"], cwd=project,
                                capture_output=True, text=True, env=env)
    finally:
        for name in ("methods/named.py", "methods/broken.py", "named.yaml"):
            (project / name).unlink()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "methods.broken failed to import (SyntaxError" in out
    runs = project / "results_named/circuits/xproportion/zero/n50/s0/named"
    assert sorted(p.name for p in runs.iterdir()) == [
        "label=a%2Fb.json", "label=a%2Fb.scores.npy", "label=c%25d.json", "label=c%25d.scores.npy"]
    assert json.loads((runs / "label=a%2Fb.json").read_text())["params"] == {"label": "a/b"}
    scores = pd.read_csv(project / "results_named/leaderboard/scores.csv")
    assert set(scores.status) == {"ok"}
    assert listed.returncode == 0 and "named" in listed.stdout and "random" in listed.stdout
    assert "methods.broken failed to import" in listed.stderr
