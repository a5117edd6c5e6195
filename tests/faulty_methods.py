"""Adapters that misbehave on purpose, for the isolation tests (importable by a child process).

Each does one thing an untrusted method can do: hang while swallowing every exception, exit the
interpreter, die from a signal, raise, allocate without bound, or start processes of its own that
would outlive it (their pids go to the file $FAULTY_PIDS).
"""
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery


class _Faulty(Adapter):
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        pass


class SwallowsTimeouts(_Faulty):
    """Catches Exception in a retry loop: a SIGALRM exception could never stop it."""
    name = "faulty_swallow"

    def discover(self, problem, params):
        while True:
            try:
                time.sleep(0.05)
                sum(range(10_000))
            except Exception:
                continue


class ExitsZero(_Faulty):
    name = "faulty_exit0"

    def discover(self, problem, params):
        sys.exit(0)


class HardExit(_Faulty):
    name = "faulty_os_exit"

    def discover(self, problem, params):
        os._exit(3)


class KillsItself(_Faulty):
    name = "faulty_sigkill"

    def discover(self, problem, params):
        os.kill(os.getpid(), signal.SIGKILL)


class Segfaults(_Faulty):
    name = "faulty_sigsegv"

    def discover(self, problem, params):
        os.kill(os.getpid(), signal.SIGSEGV)


class Raises(_Faulty):
    name = "faulty_raise"

    def discover(self, problem, params):
        raise RuntimeError("the method broke")


class Hogs(_Faulty):
    """Asks for 64 GB: beyond the address-space limit, so torch's allocator fails."""
    name = "faulty_hog"

    @dataclass(frozen=True)
    class Params:
        batch_size: int = 64  # the error then says which batch size to try
        checkpoint_layers: bool = False  # ... and that checkpointing is there to try

    def discover(self, problem, params):
        torch.ones(8 * 2**30, dtype=torch.float64)
        return Discovery("scores", scores={})


class NumpyScores(_Faulty):
    """Returns numpy floats: finite, and to be accepted as such."""
    name = "numpy_scores"

    def discover(self, problem, params):
        import numpy as np
        return Discovery("scores", scores={e: np.float32(i) for i, e in
                                           enumerate(problem.graph.edges)})


class RaisesKeyboardInterrupt(_Faulty):
    name = "faulty_ctrl_c"

    def discover(self, problem, params):
        raise KeyboardInterrupt


def leak() -> None:
    """Start what a method may leave behind: a `sleep` in its process group, one in a session
    of its own, and a fork of itself in a new session. Appends a line to $FAULTY_PIDS: the
    method's parent, itself, then the three."""
    sleeps = [subprocess.Popen(["sleep", "1000"]),
              subprocess.Popen(["sleep", "1000"], start_new_session=True)]
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            time.sleep(1000)
        finally:
            os._exit(0)
    pids = [os.getppid(), os.getpid(), *(s.pid for s in sleeps), pid]
    with open(os.environ["FAULTY_PIDS"], "a") as f:
        f.write(" ".join(map(str, pids)) + "\n")


def leak_and_hang() -> dict:
    leak()
    while True:
        time.sleep(0.05)


def leak_and_hang_stage() -> None:
    """A job stage (tests/test_job_server.py): a method's child that leaks processes, hanging."""
    from benchmark.workflow.isolation import run_isolated
    run_isolated(leak_and_hang, {}, timeout_s=300, start="fork")


class LeaksAndReturns(_Faulty):
    name = "faulty_leak_ok"

    def discover(self, problem, params):
        leak()
        return Discovery("scores", scores={e: 0.0 for e in problem.graph.edges})


class LeaksAndRaises(_Faulty):
    name = "faulty_leak_raise"

    def discover(self, problem, params):
        leak()
        raise RuntimeError("the method broke after starting processes")


class LeaksAndHangs(_Faulty):
    name = "faulty_leak_hang"

    def discover(self, problem, params):
        leak_and_hang()


FAULTY = [SwallowsTimeouts, ExitsZero, HardExit, KillsItself, Segfaults, Raises, Hogs,
          NumpyScores, RaisesKeyboardInterrupt, LeaksAndReturns, LeaksAndRaises, LeaksAndHangs]
