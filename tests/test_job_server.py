"""The job server: a job's stage runs in a forked worker with the job's directory, environment,
output and exit status; a stopped job stops its worker; the server dies with its parent; a job
without a server runs its stage itself."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, process_alive

from benchmark.workflow.job_server import ENV

CLIENT = "from benchmark.workflow.job_server import run_stage; import sys; run_stage(*sys.argv[1:])"


def _wait_for(predicate, seconds=60.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server owned by this test process, its address and its log."""
    tmp = tmp_path_factory.mktemp("server")
    address, log = str(tmp / "s.sock"), tmp / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.workflow.job_server", address,
                             str(os.getpid())], cwd=ROOT, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    _wait_for(lambda: "ready" in log.read_text(), what="the server's start-up")
    yield address, proc, log
    proc.terminate()
    proc.wait(10)


def _job(address, *args, cwd, env=None, **popen):
    environment = dict(os.environ, **(env or {}))
    if address is None:
        environment.pop(ENV, None)
    else:
        environment[ENV] = address
    environment["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen([sys.executable, "-c", CLIENT, *args], cwd=cwd, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_job_runs_in_a_worker_as_the_job(server, tmp_path):
    address, proc, _ = server
    out = tmp_path / "out.txt"
    job = _job(address, "tests.job_targets:report", str(out), "hello", cwd=tmp_path,
               env={"JOB_MARK": "mark-1"})
    stdout, stderr = job.communicate(timeout=60)
    assert job.returncode == 0, stderr
    text, pid, cwd, mark = out.read_text().splitlines()
    assert text == "hello" and mark == "mark-1" and Path(cwd) == tmp_path
    assert int(pid) not in (job.pid, proc.pid)  # neither the job nor the server: a worker
    assert "stdout of hello" in stdout and "stderr of hello" in stderr


def test_a_failing_stage_fails_its_job_with_its_traceback(server, tmp_path):
    address = server[0]
    job = _job(address, "tests.job_targets:fail", "the stage broke", cwd=tmp_path)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 1
    assert "RuntimeError: the stage broke" in stderr
    job = _job(address, "tests.job_targets:exit_with", "3", cwd=tmp_path)
    job.communicate(timeout=60)
    assert job.returncode == 3
    job = _job(address, "tests.job_targets:exit_with", cwd=tmp_path)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 1 and "TypeError" in stderr  # a missing argument is a failure


def test_stopping_a_job_stops_its_worker(server, tmp_path):
    address = server[0]
    out = tmp_path / "never.txt"
    job = _job(address, "tests.job_targets:sleep_then_write", str(out), "30", cwd=tmp_path)
    line = job.stdout.readline()
    worker = int(line.split()[-1])
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=30)
    assert job.returncode == 1 and "SIGTERM" in stderr
    _wait_for(lambda: not process_alive(worker), 10, "the worker to end")
    assert not out.exists()


def test_a_killed_job_takes_its_worker_along(server, tmp_path):
    address = server[0]
    job = _job(address, "tests.job_targets:sleep_then_write", str(tmp_path / "x"), "30",
               cwd=tmp_path)
    worker = int(job.stdout.readline().split()[-1])
    job.kill()  # SIGKILL: nothing forwarded; the server sees the connection close
    job.wait()
    _wait_for(lambda: not process_alive(worker), 10, "the worker to end")


def test_a_killed_worker_takes_its_methods_processes_along(server, tmp_path):
    """A worker SIGKILLed while its method's child runs: the child dies with it, and what the
    child started (a sleep in a session of its own among them) comes to the server, which
    kills it."""
    address, pids = server[0], tmp_path / "pids"
    job = _job(address, "tests.faulty_methods:leak_and_hang_stage", cwd=tmp_path,
               env={"FAULTY_PIDS": str(pids)})
    _wait_for(lambda: pids.exists() and pids.read_text().endswith("\n"), 60,
              "the method's processes")
    worker, *started = map(int, pids.read_text().split())
    assert all(map(process_alive, started))
    os.kill(worker, signal.SIGKILL)
    _, stderr = job.communicate(timeout=30)
    assert job.returncode == 1 and "SIGKILL" in stderr
    _wait_for(lambda: not any(map(process_alive, started)), 5, "the method's processes to end")


def test_without_a_server_the_job_runs_its_stage_itself(tmp_path):
    out = tmp_path / "out.txt"
    job = _job(None, "tests.job_targets:report", str(out), "alone", cwd=tmp_path)
    stdout, stderr = job.communicate(timeout=120)
    assert job.returncode == 0, stderr
    assert int(out.read_text().splitlines()[1]) == job.pid
    job = _job(str(tmp_path / "gone.sock"), "tests.job_targets:report", str(out), "orphan",
               cwd=tmp_path)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 0 and "unreachable" in stderr
    assert int(out.read_text().splitlines()[1]) == job.pid


def test_the_server_dies_with_its_parent(tmp_path):
    """A Snakemake process killed outright must not leave a server behind."""
    address, log = str(tmp_path / "s.sock"), tmp_path / "server.log"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'benchmark.workflow.job_server', {address!r}, "
        "str(__import__('os').getpid())], stdout=open(sys.argv[1], 'w'))\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"), str(log)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    server_pid = int(parent.stdout.readline())
    _wait_for(lambda: "ready" in log.read_text(), what="the server's start-up")
    parent.kill()
    parent.wait()
    _wait_for(lambda: not process_alive(server_pid), 10, "the server to end")


