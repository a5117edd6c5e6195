"""Run one method on one task: build its Problem, run the adapter, write the circuit file."""
from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from importlib.metadata import version as package_version
from pathlib import Path

import torch

from benchmark.artifact import atomic_write_json
from benchmark.protocol import Discovery, Problem
from benchmark.registry import METHODS
from benchmark.task import Task


def list_methods() -> list[str]:
    return METHODS.names()


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device; "
                         "use --device cpu")
    return torch.device(device)


def make_problem(task: Task, n: int, seed: int, ablation: str, device: torch.device,
                 batch_size: int = 100_000) -> Problem:
    task.to(device)
    data = task.dataset(n=n, seed=seed)
    return Problem(model=task.model, graph=task.graph, data=data.discovery.to(device),
                   ablation=ablation, output_kind=task.output_kind, seed=seed, device=device,
                   batch_size=batch_size)


def discover(task: Task, method: str, params: dict | None = None, *, n: int = 1000,
             seed: int = 0, ablation: str = "zero", device: str | None = "cpu") -> tuple:
    """(Discovery, the adapter, its Params) for `method` on `task`."""
    adapter_cls = METHODS.get(method)
    adapter = adapter_cls()
    p = adapter_cls.params(task.name, **(params or {}))
    problem = make_problem(task, n, seed, ablation, resolve_device(device))
    return adapter.run(problem, p), adapter, p


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


def write_circuit(path, record: dict) -> None:
    atomic_write_json(path, record)


def read_circuit(path) -> dict:
    with open(path) as f:
        return json.load(f)
