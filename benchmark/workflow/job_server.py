"""A warm process that runs a local Snakemake run's job stages by forking.

Every job of a local run is a fresh Python that imports torch, scipy and transformers before it
computes anything: 2-3 s of CPU per job on this machine, in jobs that often compute for less
than a second (a third of the default run's CPU went there). The main Snakemake process starts
one server (`start`, from the workflow's `onstart`); a job's script hands it the stage to call
with its stdout/stderr (`run_stage`); the server forks a worker that runs the stage in the job's
directory and environment, and returns its exit status to the job, which exits with it. This
module is the job's side and the start; the server's is benchmark.workflow.job_host.

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

import os
import pickle
import pkgutil
import signal
import socket
import sys

from benchmark.workflow.job_host import HEADER, read_int, set_threads

ENV = "CIRCUITBENCH_JOB_SERVER"


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
    socket.send_fds(sock, [HEADER.pack(len(request))], [1, 2])
    sock.sendall(request)
    pid = read_int(sock)
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
    status = read_int(sock)
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
    set_threads(threads)
    pkgutil.resolve_name(target)(*args, **kwargs)


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


if __name__ == "__main__":  # the server (`start`): benchmark.workflow.job_host
    from benchmark.workflow.job_host import serve
    serve(sys.argv[1], int(sys.argv[2]))
