"""Run one method on one task: build its Problem, run the adapter, make the circuit record.

The isolated run that writes the record as a file is benchmark.workflow.discover_stage."""
from __future__ import annotations

import dataclasses
import platform
from importlib.metadata import version as package_version

import torch

from benchmark.core.devices import resolve_device
from benchmark.core.provenance import git_commit
from benchmark.core.registry import METHODS
from benchmark.graph.data import Split
from benchmark.protocol import Discovery, Problem


def list_methods() -> list[str]:
    return METHODS.names()


def make_problem(task, n: int, seed: int, ablation: str, device: torch.device,
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


def discover(task, method: str, params: dict | None = None, *, n: int = 1000,
             seed: int = 0, ablation: str = "zero", device: str | None = "cpu") -> tuple:
    """(Discovery, the adapter, its Params) for `method` on `task`."""
    adapter_cls = METHODS.get(method)
    adapter = adapter_cls()
    p = adapter_cls.params(task.name, **(params or {}))
    problem = make_problem(task, n, seed, ablation, resolve_device(device))
    return adapter.run(problem, p), adapter, p


def circuit_record(task, result: Discovery, adapter, params, *, n: int, seed: int,
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
    from benchmark.tasks import load_task
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
