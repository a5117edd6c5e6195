"""Run untrusted code (a method adapter) in a child process under hard limits.

A method may hang, swallow exceptions, exit the interpreter, or allocate without bound. None of
that may reach the benchmark: the child is its own process, its address space is capped with
RLIMIT_AS, and it is killed (SIGKILL, not asked) at the wall-clock limit. Whatever happens
becomes an `Outcome` with a status (`ok`, `failed`, `timeout`, `oom`) and a cause.

The child is a fresh interpreter (`spawn`) unless the caller asks for `fork`: a copy of a parent
that has imported torch (and transformers) but computed nothing starts in milliseconds instead of
the seconds those imports take in every job. Only such a parent may fork: after torch has run an
OpenMP parallel region, a forked child hangs at its first one (measured: torch 2.13, libgomp).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

OOM_MARKERS = ("can't allocate memory", "out of memory", "cannot allocate memory")


@dataclass
class Outcome:
    status: str                 # ok, failed, timeout, oom, cancelled
    error: str                  # the cause, empty when ok
    value: dict | None          # what the target returned (a JSON-able dict), None on a death
    wall_seconds: float
    peak_mem_mb: float          # peak resident memory of the child


def is_oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or any(m in str(err).lower() for m in OOM_MARKERS)


def _peak_rss_mb() -> float:
    """This process's peak resident memory since exec (VmHWM); ru_maxrss would include the
    parent's memory, inherited at fork."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(target: Callable[..., dict], kwargs: dict, result_path: str, mem_mb: int | None):
    if mem_mb:
        limit = int(mem_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        value, status, error = target(**kwargs), "ok", ""
    except Exception as err:  # an exception is the method's result, reported with its cause
        traceback.print_exc()
        value = None
        status = "oom" if is_oom(err) else "failed"
        error = f"{type(err).__name__}: {err}"
        if status == "oom":
            error += f" (memory limit {mem_mb} MB; raise mem_mb or lower the batch size)"
    peak = _peak_rss_mb()
    payload = {"status": status, "error": error, "value": value, "peak_mem_mb": peak}
    try:
        text = json.dumps(payload)
    except (TypeError, ValueError) as err:
        text = json.dumps({"status": "failed", "error": f"the result is not JSON: {err}",
                           "value": None, "peak_mem_mb": peak})
    with open(result_path + ".tmp", "w") as f:
        f.write(text)
    os.replace(result_path + ".tmp", result_path)
    sys.stdout.flush()
    sys.stderr.flush()


def _death_cause(exitcode: int | None) -> tuple[str, str]:
    if exitcode is not None and exitcode < 0:
        sig = signal.Signals(-exitcode).name
        if -exitcode == signal.SIGKILL:
            return "oom", (f"the method's process was killed by {sig}, most likely by the "
                           "kernel's out-of-memory killer; raise mem_mb or lower the batch size")
        return "failed", f"the method's process died from signal {sig}"
    return "failed", (f"the method's process exited (exit code {exitcode}) without returning a "
                      "result: an adapter must return its Discovery, not exit")


CANCELLED = ("the job was stopped from outside (SIGTERM: scancel, the scheduler's time limit, "
             "preemption or a kill) while the method ran; not the method's fault: the next "
             "snakemake run sets this file aside and reruns it")


class _Stopped(Exception):
    pass


@contextmanager
def _sigterm_raises():
    """While waiting for the child, SIGTERM (what Slurm and `kill` send first) stops the wait
    instead of this process, so that the child is killed and the stop is recorded. Yields a
    list that is non-empty once it happened. Only in the main thread (signal's rule)."""
    import threading
    stopped: list = []
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return

    def handler(signum, frame):
        stopped.append(signum)
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _main_not_reimported():
    """`spawn` re-runs the parent's main script in the child when it was started as a file; a
    Snakemake script job is such a file, and must not run twice (it needs `snakemake`)."""
    main = sys.modules["__main__"]
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is not None or path is None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def run_isolated(target: Callable[..., dict], kwargs: dict, *, timeout_s: float | None,
                 mem_mb: int | None = None, start: str = "spawn") -> Outcome:
    """`target(**kwargs)` in a child process; killed after `timeout_s` seconds (None: no limit).

    `target` must be importable by name (a module-level function) and return a JSON-able dict.
    start: "spawn" (a fresh interpreter) or "fork" (only from a parent that has not computed
    with torch yet; see the module docstring).
    """
    if start not in ("spawn", "fork"):
        raise ValueError(f"run_isolated: start must be 'spawn' or 'fork', not {start!r}")
    ctx = multiprocessing.get_context(start)
    with tempfile.TemporaryDirectory(prefix="circuitbench-") as tmp:
        result_path = str(Path(tmp) / "result.json")
        proc = ctx.Process(target=_child, args=(target, kwargs, result_path, mem_mb),
                           daemon=True)
        start = time.perf_counter()
        with _main_not_reimported():
            proc.start()
        with _sigterm_raises() as stopped:
            try:
                proc.join(timeout_s)
            except _Stopped:
                pass
        timed_out = proc.is_alive() and not stopped
        if proc.is_alive():
            proc.kill()
            proc.join()
        wall = time.perf_counter() - start
        if stopped:
            return Outcome("cancelled", CANCELLED, None, wall, 0.0)
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if timed_out:
            return Outcome("timeout", f"discovery exceeded its time limit of {timeout_s:g} s "
                           "and was killed", None, wall, children_peak)
        if not os.path.exists(result_path):
            status, error = _death_cause(proc.exitcode)
            return Outcome(status, error, None, wall, children_peak)
        with open(result_path) as f:
            payload = json.load(f)
    return Outcome(payload["status"], payload["error"], payload["value"], wall,
                   round(payload["peak_mem_mb"], 1))
