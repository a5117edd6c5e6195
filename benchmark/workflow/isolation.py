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


def _vm_hwm_mb(pid="self") -> float:
    """A process's peak resident memory since exec (VmHWM), 0 where unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM); ru_maxrss would include the parent's
    memory, inherited at fork."""
    return _vm_hwm_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def _die_with(parent: int) -> None:
    """SIGKILL this process when `parent` dies (Linux), and exit now if it is gone already
    (it may have died before the request, and this process been re-parented)."""
    try:
        _libc().prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


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
    _die_with(parent)
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
        if status == "oom":
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


def _oom_kills() -> int | None:
    """OOM kills counted by this process's memory cgroup (v2 memory.events, v1
    memory.oom_control), None where not readable."""
    candidates = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                path = path.rstrip("/")
                if controllers == "":
                    candidates += [f"/sys/fs/cgroup{path}/memory.events",
                                   f"/sys/fs/cgroup/unified{path}/memory.events"]
                elif "memory" in controllers.split(","):
                    candidates.append(f"/sys/fs/cgroup/memory{path}/memory.oom_control")
    except (OSError, ValueError):
        return None
    for candidate in candidates:
        try:
            with open(candidate) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


# --- the process tree ---------------------------------------------------------------------

def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:  # ended meanwhile
            continue
        state, ppid = text[text.rindex(")") + 2:].split()[:2]
        table[int(entry)] = (int(ppid), state)
    return table


def set_subreaper(on: bool) -> bool:
    """Make this process a child subreaper (Linux), so that orphans below it are re-parented to
    it rather than to init; returns the previous setting."""
    try:
        import ctypes
        libc, previous = _libc(), ctypes.c_int(0)
        libc.prctl(37, ctypes.byref(previous))  # PR_GET_CHILD_SUBREAPER
        libc.prctl(36, int(on))  # PR_SET_CHILD_SUBREAPER
        return bool(previous.value)
    except (OSError, AttributeError):
        return False


def kill_trees(roots: Callable[[dict], set], keep: frozenset = frozenset(),
               patience_s: float = 5.0) -> None:
    """SIGKILL the processes `roots(table)` names (from `_processes()`) and all their
    descendants, scanning again until none is alive: a process may fork, or an orphan be
    re-parented, meanwhile. Then reap those that are this process's zombies, except `keep`."""
    me, deadline = os.getpid(), time.monotonic() + patience_s
    while True:
        table = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        tree, todo = set(), list(roots(table))
        while todo:
            pid = todo.pop()
            if pid in table and pid not in tree:
                tree.add(pid)
                todo += children.get(pid, [])
        alive = [pid for pid in tree if table[pid][1] not in "ZX"]
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    for pid in tree - keep:
        if table[pid][0] == me:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _end_child_tree(child: int, before: set) -> None:
    """Kill the child's process group (while the unreaped child still holds its id) and every
    process below this one that was not a child of it before the run."""
    try:
        os.killpg(child, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    me = os.getpid()
    kill_trees(lambda table: {pid for pid, (ppid, _) in table.items()
                              if ppid == me and pid not in before}, keep=frozenset({child}))


def _wait(pid: int, timeout_s: float | None) -> tuple[bool, float]:
    """Wait for the child to end, leaving it unreaped; (timed out, its sampled peak memory).
    Polls: multiprocessing's sentinel would also wait for a grandchild that inherited it."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    peak = 0.0
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        peak = max(peak, _vm_hwm_mb(pid))
        if deadline is not None and time.monotonic() >= deadline:
            return True, peak
        time.sleep(0.02)
    return False, peak


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
    before = {pid for pid, (ppid, _) in _processes().items() if ppid == me}
    oom_kills = _oom_kills()
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
                    timed_out, sampled = _wait(proc.pid, timeout_s)
                except _Stopped:
                    pass
        finally:  # every way out, KeyboardInterrupt too: the method's processes end here
            if proc.pid is not None:
                _end_child_tree(proc.pid, before)
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
            counted = _oom_kills()
            oom_killed = oom_kills is not None and counted is not None and counted > oom_kills
            # a CUDA run's mem_mb is on the GPU: its host peak says nothing about it
            status, error = _death_cause(proc.exitcode, peak_mb=peak, oom_killed=oom_killed,
                                         mem_mb=None if _is_cuda(device) else mem_mb)
            return Outcome(status, error, None, wall, peak)
        with open(result_path) as f:
            payload = json.load(f)
    return Outcome(payload["status"], payload["error"], payload["value"], wall,
                   round(payload["peak_mem_mb"], 1))
