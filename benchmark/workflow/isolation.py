"""Run untrusted code (a method adapter) in a child process under hard limits.

A method may hang, swallow exceptions, exit the interpreter, or allocate without bound. None of
that may reach the benchmark: the child is its own process, its memory is capped (its address
space with RLIMIT_AS on the CPU; on a CUDA device its share of the GPU's memory, see
`_cap_memory`), and it is killed (SIGKILL, not asked) at the wall-clock limit. Whatever happens
becomes an `Outcome` with a status (`ok`, `failed`, `timeout`, `oom`, `cancelled`) and a cause;
a death by SIGKILL reads `oom` only when memory says so (the child's peak near `mem_mb`, or an
OOM kill counted by the memory cgroup), else `failed` with the signal.

Nothing the method starts outlives the run. The child leads a session (and process group) of its
own, so a terminal's Ctrl-C reaches only the parent, which ends the child and re-raises; it dies
with the parent (PR_SET_PDEATHSIG). The parent is a child subreaper while the run lasts, so the
child's orphaned descendants (a `Popen`, a fork, in a session of their own or not) are re-parented
to it; on every way out (result, exception, timeout, SIGTERM, KeyboardInterrupt) it SIGKILLs the
child's group and every process below itself that was not its child before the run. If the
parent itself is killed, the job server (benchmark.workflow.job_server), also a subreaper, ends the tree.

The child is a fresh interpreter (`spawn`) unless the caller asks for `fork`: a copy of a parent
that has imported torch (and transformers) but computed nothing starts in milliseconds instead of
the seconds those imports take in every job. Only such a parent may fork: after torch has run an
OpenMP parallel region, a forked child hangs at its first one (measured: torch 2.13, libgomp).
A child that uses CUDA is spawned: a forked one cannot initialise CUDA once the parent has.
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

from benchmark.workflow.process_tree import (die_with, end_child_tree, oom_kills, processes,
                                             set_subreaper, vm_hwm_mb, wait_unreaped)

# "out of memory" also covers torch.cuda.OutOfMemoryError ("CUDA out of memory. Tried to ...")
OOM_MARKERS = ("can't allocate memory", "out of memory", "cannot allocate memory",
               "cublas_status_alloc_failed")


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
    """This process's peak resident memory (VmHWM); ru_maxrss would include the parent's
    memory, inherited at fork."""
    return vm_hwm_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _is_cuda(device: str | None) -> bool:
    return bool(device) and str(device).startswith("cuda")


def _cap_memory(mem_mb: int | None, device: str | None) -> None:
    """Cap this process at `mem_mb`. On the CPU its address space (RLIMIT_AS). On a CUDA device
    torch's share of that device's memory (mem_mb / its total, at most all of it) instead: the
    CUDA driver reserves more address space than such caps (tens of GB), so CUDA would fail to
    start under RLIMIT_AS; host memory is then the scheduler's to cap (the job's mem_mb)."""
    if not mem_mb:
        return
    if _is_cuda(device):
        import torch
        dev = torch.device(device)
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        total = torch.cuda.get_device_properties(index).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, mem_mb * 2**20 / total), index)
        return
    limit = int(mem_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(target: Callable[..., dict], kwargs: dict, result_path: str, mem_mb: int | None,
           parent: int, device: str | None = None):
    os.setsid()  # a group of its own: the parent ends it whole, a terminal's Ctrl-C misses it
    die_with(parent)
    try:
        _cap_memory(mem_mb, device)
        value, status, error = target(**kwargs), "ok", ""
    except (Exception, KeyboardInterrupt) as err:  # the method's result, reported with its cause
        traceback.print_exc()
        value = None
        status = "oom" if is_oom(err) else "failed"
        error = f"{type(err).__name__}: {err}"
        if isinstance(err, KeyboardInterrupt):  # not a user's Ctrl-C: that reaches the parent
            error = "KeyboardInterrupt raised inside the method"
        if status == "oom" and mem_mb:  # None: the target caps itself (benchmark.workflow.ranks)
            which = "GPU memory" if _is_cuda(device) else "memory"
            error += f" ({which} limit {mem_mb} MB; raise mem_mb or lower the batch size)"
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


def _death_cause(exitcode: int | None, *, peak_mb: float = 0.0, mem_mb: int | None = None,
                 oom_killed: bool = False) -> tuple[str, str]:
    """Status and cause of a child that left no result. SIGKILL is `oom` only with evidence:
    a method may kill itself, or be killed, for other reasons."""
    if exitcode is not None and exitcode < 0:
        sig = f"signal {-exitcode} ({signal.Signals(-exitcode).name})"
        near_cap = bool(mem_mb) and peak_mb >= 0.9 * mem_mb
        if -exitcode == signal.SIGKILL and (oom_killed or near_cap):
            why = ("the kernel's out-of-memory killer counted a kill" if oom_killed else
                   f"its peak memory {peak_mb:.0f} MB reached the limit of {mem_mb} MB")
            return "oom", (f"the method's process was killed by {sig} out of memory ({why}); "
                           "raise mem_mb or lower the batch size")
        return "failed", f"the method's process was killed by {sig}"
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
                 mem_mb: int | None = None, start: str = "spawn",
                 device: str | None = None) -> Outcome:
    """`target(**kwargs)` in a child process; killed after `timeout_s` seconds (None: no limit).

    `target` must be importable by name (a module-level function) and return a JSON-able dict.
    start: "spawn" (a fresh interpreter) or "fork" (only from a parent that has not computed
    with torch yet, and never for a CUDA `device`; see the module docstring).
    device: where the target computes; on a CUDA device `mem_mb` caps its GPU memory, not its
    address space (`_cap_memory`). The child and everything it started have ended when this
    returns or raises (KeyboardInterrupt is re-raised after). One run at a time per process:
    a run's end kills every process below this one that was not its child before.
    """
    if start not in ("spawn", "fork"):
        raise ValueError(f"run_isolated: start must be 'spawn' or 'fork', not {start!r}")
    if start == "fork" and _is_cuda(device):
        raise ValueError("run_isolated: a child that uses CUDA must be spawned, not forked")
    ctx = multiprocessing.get_context(start)
    if start == "spawn":  # spawn's helper is a child of ours that must outlive the run
        from multiprocessing import resource_tracker
        resource_tracker.ensure_running()
    me = os.getpid()
    before = {pid for pid, (ppid, _) in processes().items() if ppid == me}
    oom_kills_before = oom_kills()
    maxrss_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    was_subreaper = set_subreaper(True)
    with tempfile.TemporaryDirectory(prefix="circuitbench-") as tmp:
        result_path = str(Path(tmp) / "result.json")
        proc = ctx.Process(target=_child, daemon=True,
                           args=(target, kwargs, result_path, mem_mb, me, device))
        began = time.perf_counter()
        try:
            with _main_not_reimported():
                proc.start()
            timed_out, sampled = False, 0.0
            with _sigterm_raises() as stopped:
                try:
                    timed_out, sampled = wait_unreaped(proc.pid, timeout_s)
                except _Stopped:
                    pass
        finally:  # every way out, KeyboardInterrupt too: the method's processes end here
            if proc.pid is not None:
                end_child_tree(proc.pid, before)
                proc.join()
            set_subreaper(was_subreaper)
        wall = time.perf_counter() - began
        if stopped:
            return Outcome("cancelled", CANCELLED, None, wall, 0.0)
        maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # over all runs: this
        # run's peak where it rose, else the one sampled while the child ran
        peak = round(max(sampled, maxrss / 1024 if maxrss > maxrss_before else 0.0), 1)
        if timed_out:
            return Outcome("timeout", f"discovery exceeded its time limit of {timeout_s:g} s "
                           "and was killed", None, wall, peak)
        if not os.path.exists(result_path):
            counted = oom_kills()
            oom_killed = (oom_kills_before is not None and counted is not None
                          and counted > oom_kills_before)
            # a CUDA run's mem_mb is on the GPU: its host peak says nothing about it
            status, error = _death_cause(proc.exitcode, peak_mb=peak, oom_killed=oom_killed,
                                         mem_mb=None if _is_cuda(device) else mem_mb)
            return Outcome(status, error, None, wall, peak)
        with open(result_path) as f:
            payload = json.load(f)
    return Outcome(payload["status"], payload["error"], payload["value"], wall,
                   round(payload["peak_mem_mb"], 1))
