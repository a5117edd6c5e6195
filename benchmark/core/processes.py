"""Whether a discovery can run as `processes` ranks of torch.distributed on a device.

One check for the workflow's plan (before any job) and for `prepare_job` (the CLI): the method
must declare `distributed = True`, a CUDA run needs one device per rank, and torch must have the
backend the ranks use (gloo on the CPU, NCCL on CUDA). CUDA devices are counted through NVML
(benchmark.core.devices): this process must not initialise CUDA (DESIGN.md §11).
"""
from __future__ import annotations


def backend_of(device: str) -> str:
    """The torch.distributed backend of ranks on `device` (a resolved device: cpu, cuda:N)."""
    return "nccl" if str(device).startswith("cuda") else "gloo"


def check_processes(processes, device: str | None, *, method: str, distributed: bool,
                    key: str) -> None:
    """Raise ValueError, naming `key` (the config key or option that set `processes`) and the
    fix, when `method` cannot run as `processes` ranks on `device` (cpu, cuda, cuda:N, auto)."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {processes!r}")
    if processes == 1:
        return
    if not distributed:
        raise ValueError(f"{key} = {processes}: method {method} runs on one process (its adapter "
                         f"does not set distributed = True); remove {key}")
    from benchmark.core import devices  # the module: tests replace its cuda_device_count
    dev = devices.resolve_device(device)
    if dev.type == "cuda":
        count = devices.cuda_device_count()
        if processes > count:
            raise ValueError(f"{key} = {processes} needs {processes} CUDA devices (one per "
                             f"rank), but torch sees {count}; set {key} to at most {count}, "
                             "or run on the CPU (device cpu)")
    import torch.distributed as dist
    backend = backend_of(str(dev))
    available = dist.is_available() and (dist.is_nccl_available() if backend == "nccl"
                                         else dist.is_gloo_available())
    if not available:
        raise ValueError(f"{key} = {processes}: this torch build lacks torch.distributed's "
                         f"{backend} backend, which ranks on {dev.type} need; install a torch "
                         f"with it, or remove {key}")
