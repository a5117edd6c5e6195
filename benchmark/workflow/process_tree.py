"""The processes below this one: the process table, killing a tree, a child subreaper, a death
signal, and what memory says about a child (its peak, the cgroup's OOM kills). Linux; where
/proc or prctl is missing, each degrades to doing nothing (benchmark.workflow.isolation).
"""
from __future__ import annotations

import os
import signal
import time
from typing import Callable


def vm_hwm_mb(pid="self") -> float:
    """A process's peak resident memory since exec (VmHWM), 0 where unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def die_with(parent: int) -> None:
    """SIGKILL this process when `parent` dies (Linux), and exit now if it is gone already
    (it may have died before the request, and this process been re-parented)."""
    try:
        _libc().prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def oom_kills() -> int | None:
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


def processes() -> dict[int, tuple[int, str]]:
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
    """SIGKILL the processes `roots(table)` names (from `processes()`) and all their
    descendants, scanning again until none is alive: a process may fork, or an orphan be
    re-parented, meanwhile. Then reap those that are this process's zombies, except `keep`."""
    me, deadline = os.getpid(), time.monotonic() + patience_s
    while True:
        table = processes()
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


def end_child_tree(child: int, before: set) -> None:
    """Kill the child's process group (while the unreaped child still holds its id) and every
    process below this one that was not a child of it before the run."""
    try:
        os.killpg(child, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    me = os.getpid()
    kill_trees(lambda table: {pid for pid, (ppid, _) in table.items()
                              if ppid == me and pid not in before}, keep=frozenset({child}))


def wait_unreaped(pid: int, timeout_s: float | None) -> tuple[bool, float]:
    """Wait for the child to end, leaving it unreaped; (timed out, its sampled peak memory).
    Polls: multiprocessing's sentinel would also wait for a grandchild that inherited it."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    peak = 0.0
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        peak = max(peak, vm_hwm_mb(pid))
        if deadline is not None and time.monotonic() >= deadline:
            return True, peak
        time.sleep(0.02)
    return False, peak
