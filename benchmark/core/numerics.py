"""Which CPU kernels compute the numbers: the machine's fastest, or portable ones.

torch picks its vectorised kernels (AVX2, AVX-512) and MKL its BLAS code path by the CPU it runs
on, so a model trained for 2,000 steps ends with different bits on two x86 machines (measured:
the trained tiny GPT-2 reached 0.996 IOI accuracy on one machine and 0.98 on another, and every
discovery on it moved). With `portable_kernels: true` in the config the workflow's jobs run
ATen's generic kernels and MKL's conditional-numerical-reproducibility mode (`COMPATIBLE`):
the same bits on any x86 CPU, at about 1.5x the CPU time (300 training steps: 10.2 s -> 15.1 s;
the same weights with oneDNN capped at SSE4.1 and glibc's AVX/FMA variants masked). The CI
config sets it, so that the language-model numbers CI guards are those of any machine.
The variables must be set before torch starts: the workflow sets them for its jobs.
"""
from __future__ import annotations

import os

PORTABLE = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


def kernel_mode() -> str:
    """'portable' when this process runs the portable kernels, else 'native'."""
    return "portable" if all(os.environ.get(k) == v for k, v in PORTABLE.items()) else "native"


def use_portable_kernels() -> None:
    """Make processes started from here on run the portable kernels."""
    os.environ.update(PORTABLE)
