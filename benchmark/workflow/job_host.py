"""The server's side of the job server (benchmark.workflow.job_server): accept a job's stage,
fork a worker that becomes the job and runs it, tell the job its exit status, and end what a
killed worker leaves behind. Also the wire format both sides share.
"""
from __future__ import annotations

import importlib
import os
import pickle
import pkgutil
import selectors
import signal
import socket
import struct
import sys
import traceback

from benchmark.workflow.process_tree import kill_trees, set_subreaper

HEADER = struct.Struct("!q")
# what every job would otherwise import itself (the server's start-up, once per run)
PRELOAD = ("torch", "scipy.stats", "benchmark.discovery", "benchmark.datasets",
           "benchmark.scoring.stage", "benchmark.workflow.stages", "benchmark.backends.lm.task")


# --- the wire and the stage, both sides -------------------------------------------------

def read_int(sock) -> int | None:
    try:
        return HEADER.unpack(recv_exact(sock, HEADER.size))[0]
    except EOFError:
        return None


def recv_exact(conn, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the other end closed the connection")
        data += chunk
    return data


def set_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(max(1, int(threads)))


# --- the server ------------------------------------------------------------------------

def serve(address: str, parent_pid: int) -> None:
    """Accept jobs on the unix socket `address` until `parent_pid` is gone or SIGTERM."""
    _die_with_parent()
    set_subreaper(True)  # a killed worker's method processes come to us (_reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: Snakemake stops us (atexit)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(256)  # jobs that come while we import wait in the backlog
    for name in PRELOAD:
        importlib.import_module(name)
    from benchmark.backends.lm.load import import_architectures
    import_architectures()
    _warm_keys()
    stop: list = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    workers: dict[int, socket.socket] = {}  # pid -> the job's connection
    print(f"job server {os.getpid()} ready at {address}", flush=True)
    while not stop and os.getppid() == parent_pid:
        for key, _ in selector.select(timeout=0.05):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                pid = _start_worker(conn, listener, selector)
                if pid is None:
                    conn.close()
                    continue
                workers[pid] = conn
                selector.register(conn, selectors.EVENT_READ, pid)
                conn.sendall(HEADER.pack(pid))
            else:  # the job's end closed: the job was killed, so is its worker
                selector.unregister(key.fileobj)
                _kill(key.data)
        _reap(workers, selector)
    for pid in workers:
        _kill(pid)


def _warm_keys() -> None:
    """Compute the code keys jobs check their inputs against (every task's, every method's,
    the scoring and data code's) once here, for every worker to inherit: each is a hash over
    the parsed sources of dozens of modules, half a second of every job otherwise. A key is a
    function of the source files, which do not change under a run (its plan used them too)."""
    try:
        from benchmark.backends.lm.task import list_lm_tasks
        from benchmark.core.registry import METHODS
        from benchmark.tasks import list_tasks, task_key
        from benchmark.workflow.plan_keys import data_code_key, method_source_hash, scoring_code_key
        for method in METHODS.names():
            method_source_hash(method)
        for task in list_tasks() + list_lm_tasks():
            task_key(task)
        scoring_code_key()
        data_code_key()
    except Exception as err:  # a job that needs the key computes it and reports the problem
        print(f"job server: keys not precomputed ({type(err).__name__}: {err})", flush=True)


def _start_worker(conn, listener, selector) -> int | None:
    try:
        msg, fds, _, _ = socket.recv_fds(conn, HEADER.size, 2)
        request = pickle.loads(recv_exact(conn, HEADER.unpack(msg)[0]))
    except (OSError, EOFError, struct.error, pickle.UnpicklingError) as err:
        print(f"job server: a malformed request ({err}); ignored", flush=True)
        return None
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    selector.close()
    listener.close()
    conn.close()
    _worker(request, fds)


def _worker(request: dict, fds: list[int]) -> None:
    """The forked worker: become the job (directory, environment, output), run, exit."""
    status = 1
    try:
        _die_with_parent()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target_fd, fd in zip((1, 2), fds):
            os.dup2(fd, target_fd)
            os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        set_threads(request["threads"])
        pkgutil.resolve_name(request["target"])(*request["args"], **request["kwargs"])
        status = 0
    except SystemExit as err:
        status = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
        if err.code is not None and not isinstance(err.code, int):
            print(err.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _reap(workers: dict, selector) -> None:
    """Reap ended workers, telling their jobs, and the orphans re-parented to us; after any,
    kill what is below us but not a live worker: what a killed worker's method started."""
    reaped = False
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        reaped = True
        conn = workers.pop(pid, None)
        if conn is None:
            continue
        try:
            selector.unregister(conn)
        except KeyError:  # its job is gone already
            pass
        try:
            conn.sendall(HEADER.pack(os.waitstatus_to_exitcode(wait_status)))
        except OSError:
            pass
        conn.close()
    if reaped:
        me = os.getpid()
        kill_trees(lambda table: {pid for pid, (ppid, _) in table.items()
                                  if ppid == me and pid not in workers})


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the one that started it dies (even by SIGKILL)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
