"""Which device a run uses, decided without initialising CUDA in the deciding process.

A process that has initialised CUDA cannot fork a child that uses it (DESIGN.md §11), so the
discover stage's parent, the CLI, the score stage and the workflow's config check all resolve
devices here, through NVML.
"""
from __future__ import annotations

import os

import torch


def cuda_device_count() -> int:
    """CUDA devices torch can use, counted through NVML: asking the CUDA runtime would
    initialise CUDA in this process, which then cannot fork a child that uses it (DESIGN.md
    §11). PYTORCH_NVML_BASED_CUDA_CHECK=1 stays set, so that later availability checks here
    (transformers' too) do not initialise it either."""
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(device: str | None) -> torch.device:
    """The torch device `device` names ("auto": cuda when there is one), checked against this
    machine without initialising CUDA here (NVML, cuda_device_count): the
    discover stage's parent, the CLI and the workflow's config check call it before a child
    that may fork, or use CUDA itself."""
    if device in (None, "auto"):
        return torch.device("cuda" if cuda_device_count() else "cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r}: {err}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda":
        count = cuda_device_count()
        if not count:
            raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; "
                             "use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r} asked for, but torch sees {count} CUDA "
                             f"device(s): cuda:0 to cuda:{count - 1}")
    return dev
