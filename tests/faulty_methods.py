"""Adapters that misbehave on purpose, for the isolation tests (importable by a child process).

Each does one thing an untrusted method can do: hang while swallowing every exception, exit the
interpreter, die from a signal, raise, or allocate without bound.
"""
import os
import signal
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


FAULTY = [SwallowsTimeouts, ExitsZero, HardExit, KillsItself, Segfaults, Raises, Hogs,
          NumpyScores]
