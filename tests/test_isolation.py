"""Every way a method can misbehave becomes a named circuit file; nothing else is lost.

Each adapter of faulty_methods.py runs through the workflow's discover stage (the one the CLI
uses too), in its isolated child process under a time and memory limit.
"""
import json
import os
import time

import faulty_methods
import numpy as np
import pytest
from conftest import process_alive, registered

from benchmark.core.registry import METHODS
from benchmark.workflow.discover_stage import discover_stage


@pytest.fixture(scope="module")
def faulty(get_task):
    get_task("xproportion")
    with registered(faulty_methods.FAULTY, "tests/faulty_methods.py"):
        yield


def _run(method, dataset, task_cache, tmp_path, **limits):
    out = tmp_path / f"{method}.json"
    record = discover_stage("xproportion", task_cache, dataset, method, {}, "zero", 50, 0,
                            str(out), eval_examples=50, **limits)
    assert json.loads(out.read_text()) == record  # the file is written, whatever happened
    return record


def test_timeout_swallowing_adapter_is_killed(faulty, dataset, task_cache, tmp_path):
    start = time.perf_counter()
    record = _run("faulty_swallow", dataset, task_cache, tmp_path, timeout_s=3)
    elapsed = time.perf_counter() - start
    assert record["status"] == "timeout"
    assert "time limit of 3 s" in record["error"] and "killed" in record["error"]
    assert elapsed < 20, f"the limit is hard: killed after {elapsed:.1f} s, not 3 s + startup"
    assert record["scores"] is None


@pytest.mark.parametrize("method, status, cause", [
    ("faulty_exit0", "failed", "exit code 0"),
    ("faulty_os_exit", "failed", "exit code 3"),
    ("faulty_sigkill", "failed", "killed by signal 9 (SIGKILL)"),
    ("faulty_sigsegv", "failed", "SIGSEGV"),
    ("faulty_raise", "failed", "RuntimeError: the method broke"),
    ("faulty_ctrl_c", "failed", "KeyboardInterrupt raised inside the method"),
])
def test_a_dying_adapter_is_a_named_cell(faulty, dataset, task_cache, tmp_path, method, status,
                                         cause):
    record = _run(method, dataset, task_cache, tmp_path, timeout_s=60)
    assert record["status"] == status and cause in record["error"]
    assert record["method"] == method and record["n_edges"] == 32


def test_memory_limit_gives_oom(faulty, dataset, task_cache, tmp_path):
    record = _run("faulty_hog", dataset, task_cache, tmp_path, timeout_s=60, mem_mb=4000)
    assert record["status"] == "oom", record["error"]
    assert "memory limit 4000 MB" in record["error"]
    assert "batch_size is 64: try 16" in record["error"]
    assert "or checkpoint_layers: true" in record["error"]


def test_a_sigkill_reads_oom_only_when_memory_says_so():
    """A method may SIGKILL itself (or be killed) for other reasons than memory."""
    from benchmark.workflow.isolation import _death_cause
    status, error = _death_cause(-9, peak_mb=900, mem_mb=4000)
    assert status == "failed" and "killed by signal 9 (SIGKILL)" in error
    assert "memory" not in error and "batch size" not in error
    status, error = _death_cause(-9, peak_mb=3800, mem_mb=4000)
    assert status == "oom" and "3800 MB" in error and "batch size" in error
    status, error = _death_cause(-9, oom_killed=True)
    assert status == "oom" and "out-of-memory killer" in error




def _leaked(pids) -> list[int]:
    """The processes a `leak()` started (and the method's own) still alive."""
    return [pid for line in pids.read_text().splitlines() for pid in map(int, line.split()[1:])
            if process_alive(pid)]


@pytest.mark.parametrize("method, status, timeout_s", [
    ("faulty_leak_ok", "ok", 60), ("faulty_leak_raise", "failed", 60),
    ("faulty_leak_hang", "timeout", 15)])
def test_a_methods_processes_end_with_its_run(faulty, dataset, task_cache, tmp_path, monkeypatch,
                                              method, status, timeout_s):
    """What the method started (a Popen, one in a new session, a fork in a new session) is
    gone when the discovery returns, whether the method returned, raised or timed out."""
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAULTY_PIDS", str(pids))
    record = _run(method, dataset, task_cache, tmp_path, timeout_s=timeout_s)
    assert record["status"] == status, record["error"]
    assert _leaked(pids) == []


def test_numpy_float_scores_are_finite(faulty, dataset, task_cache, tmp_path):
    record = _run("numpy_scores", dataset, task_cache, tmp_path, timeout_s=60)
    assert record["status"] == "ok", record["error"]
    # the scores are beside the record, read back as the float64 vector in canonical order
    from benchmark.scoring.stage import read_circuit
    assert record["scores"]["file"] == "numpy_scores.scores.npy"
    scores = read_circuit(str(tmp_path / "numpy_scores.json"), "xproportion")["scores"]
    assert scores.dtype == np.float64 and scores[0] == 0.0  # tok_embeds->a0.h0<q>


def test_a_real_method_matches_its_in_process_run(get_task, dataset, task_cache, tmp_path):
    """Isolation changes nothing about the result: ACDC's circuit is the same as when it runs
    in this process, and the peak memory is the child's own (well under the parent's)."""
    from benchmark.datasets import load_dataset
    from benchmark.protocol import Problem
    record = _run("acdc", dataset, task_cache, tmp_path, timeout_s=120)
    task = get_task("xproportion")
    data = load_dataset(dataset, "xproportion", 50, 0)
    problem = Problem(model=task.model, graph=task.graph, data=data.discovery, ablation="zero",
                      output_kind=task.output_kind, seed=0)
    adapter = METHODS.get("acdc")
    direct = adapter().run(problem, adapter.params("xproportion"))
    assert record["status"] == "ok"
    assert set(record["circuit"]) == set(direct.circuit)
    assert 0 < record["peak_mem_mb"] < 2000


FORKED = """
import json, sys
sys.path.insert(0, {tests!r})
import faulty_methods
from benchmark.workflow.discover_stage import discover_stage
from benchmark.core.registry import METHODS
METHODS.names()
for cls in faulty_methods.FAULTY:
    METHODS.register(cls, "tests/faulty_methods.py")
for method, timeout_s in [("eap", 60), ("faulty_swallow", 3)]:
    discover_stage("xproportion", {cache!r}, {dataset!r}, method, {{}}, "zero", 50, 0,
                   {out!r} + method + ".json", eval_examples=50, timeout_s=timeout_s, fork=True)
"""


def test_forked_child_matches_spawned_and_keeps_the_limits(faulty, dataset, task_cache,
                                                            tmp_path):
    """The workflow's jobs fork their method's child from a parent that only imported: same
    circuit file as a fresh interpreter's, same hard time limit."""
    import subprocess
    import sys
    from pathlib import Path
    script = FORKED.format(tests=str(Path(__file__).parent), cache=task_cache, dataset=dataset,
                           out=str(tmp_path / "forked_"))
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    forked = json.loads((tmp_path / "forked_eap.json").read_text())
    spawned = _run("eap", dataset, task_cache, tmp_path, timeout_s=60)
    assert forked["status"] == spawned["status"] == "ok"
    # the same scores file, byte for byte (its sha256); only its name differs
    assert forked["scores"]["sha256"] == spawned["scores"]["sha256"]
    hung = json.loads((tmp_path / "forked_faulty_swallow.json").read_text())
    assert hung["status"] == "timeout" and "time limit of 3 s" in hung["error"]


STOPPED = """
import sys
sys.path.insert(0, {tests!r})
import faulty_methods
from benchmark.workflow.discover_stage import discover_stage
from benchmark.core.registry import METHODS
METHODS.names()
for cls in faulty_methods.FAULTY:
    METHODS.register(cls, "tests/faulty_methods.py")
discover_stage("xproportion", {cache!r}, {dataset!r}, {method!r}, {{}}, "zero", 50, 0,
               {out!r}, eval_examples=50, timeout_s=120, fork=True)
"""


def test_a_job_stopped_from_outside_records_a_cancelled_cell(faulty, dataset, task_cache,
                                                             tmp_path):
    """SIGTERM (scancel, Slurm's time limit, a kill) while the method runs: the child is killed,
    a `cancelled` circuit file is written and the job ends normally; the next workflow run
    moves that file aside (.cancelled) so that it reruns."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from benchmark.workflow.damaged import check_not_cancelled, quarantine
    out = tmp_path / "stopped.json"
    log = tmp_path / "stopped.log"
    script = STOPPED.format(tests=str(Path(__file__).parent), cache=task_cache,
                            dataset=dataset, out=str(out), method="faulty_swallow")
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=f,
                                stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while "starts" not in log.read_text() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    record = json.loads(out.read_text())
    assert record["status"] == "cancelled" and "scancel" in record["error"]
    assert quarantine([(str(out), lambda: check_not_cancelled(record, str(out)))]) == [str(out)]
    assert not out.exists() and Path(str(out) + ".cancelled").exists()


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_stopped_run_ends_its_methods_processes(faulty, dataset, task_cache, tmp_path, signum):
    """A job stopped (SIGTERM: a `cancelled` cell) or interrupted (SIGINT, the user's Ctrl-C,
    which reaches the job only: the method's child leads a session of its own) while the method
    runs: the method's child and all it started are gone; a Ctrl-C still stops the run, with no
    cell written, so that the next run does it again."""
    import signal
    import subprocess
    import sys
    from pathlib import Path
    out, pids, log = tmp_path / "stopped.json", tmp_path / "pids", tmp_path / "stopped.log"
    script = STOPPED.format(tests=str(Path(__file__).parent), cache=task_cache,
                            dataset=dataset, out=str(out), method="faulty_leak_hang")
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=f,
                                stderr=subprocess.STDOUT, env=dict(os.environ,
                                                                   FAULTY_PIDS=str(pids)))
        deadline = time.time() + 120
        while not (pids.exists() and pids.read_text().endswith("\n")) and time.time() < deadline:
            time.sleep(0.1)
        proc.send_signal(getattr(signal, signum))
        code = proc.wait(timeout=60)
    if signum == "SIGTERM":
        assert code == 0 and json.loads(out.read_text())["status"] == "cancelled"
    else:
        assert code != 0 and "KeyboardInterrupt" in log.read_text() and not out.exists()
    assert _leaked(pids) == []
