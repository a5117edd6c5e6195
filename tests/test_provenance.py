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
    with edited(project / "tasks/reverse.py", "vocab=(1, 2, 3)", "vocab=(1, 2, 3, 4)"):
        plan = _planned(project)
    # reverse: compile, its dataset, its two discoveries, its scoring; xproportion: nothing
    assert plan == {"compile_task": 1, "make_dataset": 1, "discover": 2, "score": 1,
                    "leaderboard": 1}, plan
    assert _planned(project) == {}


def test_a_helper_imported_inside_a_function_is_part_of_the_key(tmp_path, monkeypatch):
    """A task program calling a project helper (imported lazily, as programs import tracr)."""
    from benchmark import fingerprint
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
    with edited(project / "benchmark/evaluate.py"):
        plan = _planned(project)
    assert plan == {"score": 2, "leaderboard": 1}, plan


def test_editing_the_leaderboard_rebuilds_only_it(project):
    with edited(project / "benchmark/leaderboard.py"):
        plan = _planned(project)
    assert plan in ({"leaderboard": 1}, {}), plan


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
