"""A warm process that runs a local Snakemake run's job stages by forking.

Every job of a local run is a fresh Python that imports torch, scipy and transformers before it
computes anything: 2-3 s of CPU per job on this machine, in jobs that often compute for less
than a second (a third of the default run's CPU went there). The main Snakemake process starts
one server (`start`, from the workflow's `onstart`); a job's script hands it the stage to call
with its stdout/stderr (`run_stage`); the server forks a worker that runs the stage in the job's
directory and environment, and returns its exit status to the job, which exits with it.

The worker is a fresh fork of a process that has only imported, so a discovery may still fork
its method's isolated child from it (benchmark.workflow.isolation). Without a server (a cluster job, a
dry run, `CIRCUITBENCH_JOB_SERVER=off`, or a server that is gone) a job runs its stage itself.
Stopping a job (SIGTERM, SIGINT) stops its worker; the server dies with the Snakemake process
that started it, and its workers with it. A worker ends its method's processes itself, unless it
is killed outright: the server is a child subreaper, so what the worker leaves is re-parented to
it, and whenever it reaps a process it kills every child of its that is not a live worker, with
all below it.
"""
from __future__ import annotations

import importlib
import os
import pickle
import selectors
import signal
import socket
import struct
import sys
import traceback

from benchmark.workflow.isolation import kill_trees, set_subreaper

ENV = "CIRCUITBENCH_JOB_SERVER"
_HEADER = struct.Struct("!q")
# what every job would otherwise import itself (the server's start-up, once per run)
PRELOAD = ("torch", "scipy.stats", "benchmark.discovery", "benchmark.datasets",
           "benchmark.scoring.stage", "benchmark.workflow.stages", "benchmark.backends.lm.task")


# --- the job's side ---------------------------------------------------------------------

def run_stage(target: str, *args, threads: int = 1, **kwargs) -> None:
    """Call `target` ("module:function") with the arguments, in a worker of the run's server
    when there is one, else here. Exits the process with the stage's status when a worker ran
    it; returns (or raises) as the stage does when it ran here."""
    address = os.environ.get(ENV, "")
    sock = _connect(address) if address not in ("", "off") else None
    if sock is None:
        return _run_here(target, threads, args, kwargs)
    sys.stdout.flush()
    sys.stderr.flush()
    request = pickle.dumps(dict(target=target, args=args, kwargs=kwargs, threads=threads,
                                cwd=os.getcwd(), env=dict(os.environ)))
    # a stopped job stops its worker, which records the stop. Caught from before the request:
    # the worker may start (and print) before its pid reaches us; a stop that comes first is
    # held and forwarded as soon as the pid is known
    worker, held = [], []

    def forward(signum, frame):
        if not worker:
            held.append(signum)
            return
        try:
            os.kill(worker[0], signum)
        except ProcessLookupError:
            pass

    before = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    socket.send_fds(sock, [_HEADER.pack(len(request))], [1, 2])
    sock.sendall(request)
    pid = _read_int(sock)
    if pid is None:  # the server never started it: this job is still ours to run
        for s, handler in before.items():
            signal.signal(s, handler)
        for s in held:  # a stop that came meanwhile is this process's again
            os.kill(os.getpid(), s)
        print("job server: closed before starting this job; running it here", file=sys.stderr)
        return _run_here(target, threads, args, kwargs)
    worker.append(pid)
    for s in held:
        forward(s, None)
    status = _read_int(sock)
    if status is None:
        raise SystemExit("job server: the server stopped while this job ran; rerun it")
    if status < 0:
        raise SystemExit(f"job server: the job's worker died from signal "
                         f"{signal.Signals(-status).name}")
    raise SystemExit(status)


def _connect(address: str):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError as err:
        print(f"job server at {address} unreachable ({err}); running this job here",
              file=sys.stderr)
        sock.close()
        return None
    return sock


def _run_here(target: str, threads: int, args, kwargs) -> None:
    _set_threads(threads)
    _resolve(target)(*args, **kwargs)


def _read_int(sock) -> int | None:
    try:
        return _HEADER.unpack(_recv_exact(sock, _HEADER.size))[0]
    except EOFError:
        return None


def _resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _set_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(max(1, int(threads)))


# --- the server's side ------------------------------------------------------------------

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
                conn.sendall(_HEADER.pack(pid))
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
        msg, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 2)
        request = pickle.loads(_recv_exact(conn, _HEADER.unpack(msg)[0]))
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
        _set_threads(request["threads"])
        _resolve(request["target"])(*request["args"], **request["kwargs"])
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


def _recv_exact(conn, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the other end closed the connection")
        data += chunk
    return data


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
            conn.sendall(_HEADER.pack(os.waitstatus_to_exitcode(wait_status)))
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


# --- the main Snakemake process's side --------------------------------------------------

def start(log_path: str):
    """Start a server for this process's jobs and point them at it (the environment); it is
    stopped when this process exits. Returns the server's Popen."""
    import atexit
    import shutil
    import subprocess
    import tempfile
    directory = tempfile.mkdtemp(prefix="circuitbench-jobs-")
    address = os.path.join(directory, "server.sock")
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "benchmark.workflow.job_server", address,
                                 str(os.getpid())], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)
    os.environ[ENV] = address
    return proc


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
