"""Run one method on one task: build its Problem, run the adapter, write the circuit file."""
from __future__ import annotations

import dataclasses
import platform
from importlib.metadata import version as package_version

import torch

from benchmark.artifact import atomic_write_json
from benchmark.data import Split
from benchmark.protocol import Discovery, Problem
from benchmark.provenance import git_commit
from benchmark.registry import METHODS
from benchmark.task import Task
from benchmark.task_names import is_lm_task


def list_methods() -> list[str]:
    return METHODS.names()


def resolve_device(device: str | None) -> torch.device:
    """The torch device `device` names ("auto": cuda when there is one), checked against this
    machine without initialising CUDA here (NVML, benchmark.lm_load.cuda_device_count): the
    discover stage's parent, the CLI and the workflow's config check call it before a child
    that may fork, or use CUDA itself."""
    from benchmark.lm_load import cuda_device_count
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


def make_problem(task: Task, n: int, seed: int, ablation: str, device: torch.device,
                 batch_size: int = 100_000, discovery: Split | None = None) -> Problem:
    """The method's view of a task: model, graph, the discovery split (`discovery`, or drawn
    from n and seed), the ablation and the task's losses."""
    task.to(device)
    if discovery is None:
        discovery = task.dataset(n=n, seed=seed).discovery
    batch_size = min(batch_size, getattr(task, "forward_batch", batch_size))
    return Problem(model=task.model, graph=task.graph, data=discovery.to(device),
                   ablation=ablation, output_kind=task.output_kind, partial=task.partial,
                   seed=seed, device=device, batch_size=batch_size)


def discover(task: Task, method: str, params: dict | None = None, *, n: int = 1000,
             seed: int = 0, ablation: str = "zero", device: str | None = "cpu") -> tuple:
    """(Discovery, the adapter, its Params) for `method` on `task`."""
    adapter_cls = METHODS.get(method)
    adapter = adapter_cls()
    p = adapter_cls.params(task.name, **(params or {}))
    problem = make_problem(task, n, seed, ablation, resolve_device(device))
    return adapter.run(problem, p), adapter, p


def circuit_record(task: Task, result: Discovery, adapter, params, *, n: int, seed: int,
                   ablation: str, device: str) -> dict:
    """The JSON a discover run leaves behind: output, cost and provenance."""
    return {
        "task": task.name, "task_version": task.version, "method": adapter.name,
        "method_version": adapter.version, "params": dataclasses.asdict(params),
        "seed": seed, "n_examples": n, "ablation": ablation, "kind": result.kind,
        "n_edges": task.graph.n_edges,
        "scores": result.scores,
        "circuit": None if result.circuit is None else
        sorted(result.circuit, key=task.graph.edge_to_index.get),
        "counters": result.counters.as_dict(), "info": result.info,
        "device": str(device), "hardware": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "versions": {p: package_version(p) for p in ("torch", "tracr-pypi", "circuitbench")},
    }


def adapter_ref(method: str) -> str:
    """'module:Class' of a registered adapter, so that a fresh process can import it."""
    cls = METHODS.get(method)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_adapter(ref: str):
    import importlib
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _discover_child(task_name: str, cache: str, dataset: str, adapter: str, params: dict,
                    ablation: str, n: int, seed: int, device: str, threads: int) -> dict:
    """The part of a discovery that runs the method: in the isolated child process."""
    from benchmark import load_task
    from benchmark.datasets import load_dataset
    torch.set_num_threads(max(1, threads))
    dev = resolve_device(device)
    task = load_task(task_name, cache=cache, device=str(dev))  # straight onto the device
    adapter_cls = _import_adapter(adapter)
    p = adapter_cls.params(task_name, **params)
    discovery = load_dataset(dataset, task_name, n, seed).discovery
    problem = make_problem(task, n, seed, ablation, dev, discovery=discovery)
    result = adapter_cls().run(problem, p)
    record = circuit_record(task, result, adapter_cls(), p, n=n, seed=seed, ablation=ablation,
                            device=str(dev))
    if dev.type == "cuda":
        record["peak_mem_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    return record


def discover_stage(task_name: str, cache: str, dataset: str, method: str, params: dict,
                   ablation: str, n: int, seed: int, out: str, *, device: str = "cpu",
                   timeout_s: float | None = None, mem_mb: int | None = None,
                   threads: int = 1, eval_examples: int = 1000, fork: bool = False) -> dict:
    """Run one discovery in an isolated child process and write its circuit file.

    Shared by the workflow and the CLI. Whatever the method does (return, raise, hang past
    `timeout_s`, exceed `mem_mb`, exit, get killed) ends as a circuit file with a status:
    `ok`, `failed`, `timeout` or `oom`, and the cause in `error`.
    fork: start the child as a copy of this process (benchmark.isolation), which must not have
    computed with torch before; the workflow's job processes haven't. Only on the CPU: a child
    that uses CUDA is always spawned (a forked one cannot initialise CUDA if this process has),
    and `device` is resolved here without initialising CUDA. mem_mb caps the child's address
    space on the CPU, its share of the GPU's memory on a CUDA device (run_isolated). The task
    is loaded by the child only, and here just when a failure record needs it."""
    from benchmark import load_task
    from benchmark.isolation import run_isolated
    from benchmark.datasets import DatasetError, ensure_dataset, load_dataset
    from benchmark.fingerprint import method_source_hash
    from benchmark.protocol import Counters, Discovery
    adapter_cls = METHODS.get(method)
    p = adapter_cls.params(task_name, **params)     # bad parameters fail the job, loudly
    dev = resolve_device(device)
    fork = fork and dev.type == "cpu"
    try:
        load_dataset(dataset, task_name, n, seed)
    except DatasetError:  # rebuilt, which computes: the child can no longer be a fork
        ensure_dataset(dataset, task_name, cache, n, seed, eval_examples)
        fork = False
    if fork and is_lm_task(task_name):
        from benchmark.lm_load import import_architectures
        import_architectures()  # once here, not in every child
    print(f"discovery: {method} on {task_name} (n={n}, seed={seed}, {ablation}) starts",
          flush=True)
    outcome = run_isolated(_discover_child, dict(
        task_name=task_name, cache=cache, dataset=dataset, adapter=adapter_ref(method),
        params=params, ablation=ablation, n=n, seed=seed, device=str(dev), threads=threads),
        timeout_s=timeout_s, mem_mb=mem_mb, start="fork" if fork else "spawn", device=str(dev))
    if outcome.value is not None:
        record = outcome.value
    else:
        empty = Discovery(adapter_cls.output, counters=Counters(wall_seconds=outcome.wall_seconds))
        record = circuit_record(load_task(task_name, cache=cache), empty, adapter_cls(), p, n=n,
                                seed=seed, ablation=ablation, device=str(dev))
    record.setdefault("peak_mem_mb", outcome.peak_mem_mb)
    error = outcome.error
    if outcome.status == "oom" and getattr(p, "batch_size", None):
        error += (f"; this run's batch_size is {p.batch_size}: try {max(1, p.batch_size // 4)} "
                  f"(a method parameter: studies.<study>.methods.{method}.batch_size, or "
                  f"--batch_size)")
        if getattr(p, "checkpoint_layers", True) is False:
            error += (f", or checkpoint_layers: true (each block recomputed in the backward "
                      f"pass: studies.<study>.methods.{method}.checkpoint_layers)")
    record.update(status=outcome.status, error=error, threads=threads,
                  source_hash=method_source_hash(method), timeout_s=timeout_s, mem_mb=mem_mb)
    atomic_write_json(out, record)
    print(f"discovery: status {record['status']} {record['error']}".rstrip(), flush=True)
    return record
