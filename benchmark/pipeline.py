"""The workflow's stages as plain functions; workflow/scripts/ only unpack Snakemake's objects.

Every stage writes its outputs atomically, so an interrupted job never leaves a half-written
result. A discovery that raises or runs out of time still writes its circuit file, with status
`failed` or `timeout` and the error, so that scoring and the leaderboard show it as a result.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import json
import resource
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch

from benchmark.artifact import atomic_write_bytes, atomic_write_json, atomic_write_text
from benchmark.data import Split, TaskData
from benchmark.registry import METHODS


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def method_source_hash(method: str) -> str:
    """Hash of the adapter's module source: editing a method reruns its jobs."""
    module = sys.modules[METHODS.get(method).__module__]
    return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:12]


def compile_stage(task_name: str, cache: str, out: str) -> None:
    from benchmark import load_task
    from benchmark.cli import task_summary
    task = load_task(task_name, cache=cache)
    atomic_write_json(out, task_summary(task))


def dataset_stage(task_name: str, cache: str, n: int, seed: int, eval_examples: int,
                  out: str) -> None:
    from benchmark import load_task
    data = load_task(task_name, cache=cache).dataset(n=n, seed=seed, n_eval=eval_examples)
    buf = io.BytesIO()
    torch.save({"task": data.task, "seed": data.seed,
                "discovery": (data.discovery.clean, data.discovery.corrupted),
                "evaluation": (data.evaluation.clean, data.evaluation.corrupted)}, buf)
    atomic_write_bytes(out, buf.getvalue())


def load_dataset(path: str) -> TaskData:
    d = torch.load(path)
    return TaskData(d["task"], d["seed"], Split(*d["discovery"]), Split(*d["evaluation"]))


class DiscoveryTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float | None):
    """Raise DiscoveryTimeout after `seconds` (main thread, Unix); no limit when None."""
    if not seconds:
        yield
        return

    def handler(signum, frame):
        raise DiscoveryTimeout(f"discovery exceeded its time limit of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def discover_stage(task_name: str, cache: str, dataset: str, method: str, params: dict,
                   ablation: str, n: int, seed: int, out: str, *, device: str = "cpu",
                   timeout_s: float | None = None, threads: int = 1) -> dict:
    from benchmark import load_task
    from benchmark.discover import circuit_record, resolve_device
    from benchmark.protocol import Counters, Discovery, Problem
    torch.set_num_threads(max(1, threads))
    task = load_task(task_name, cache=cache)
    adapter_cls = METHODS.get(method)
    p = adapter_cls.params(task_name, **params)
    dev = resolve_device(device)
    task.to(dev)
    data = load_dataset(dataset)
    problem = Problem(model=task.model, graph=task.graph, data=data.discovery.to(dev),
                      ablation=ablation, output_kind=task.output_kind, seed=seed, device=dev)
    status, error = "ok", ""
    start = time.perf_counter()
    try:
        with time_limit(timeout_s):
            result = adapter_cls().run(problem, p)
    except DiscoveryTimeout as err:
        status, error = "timeout", str(err)
    except Exception as err:  # a crashing method is a result, not the end of the benchmark
        status = "failed"
        error = f"{type(err).__name__}: {err}"
        print(traceback.format_exc(), file=sys.stderr)
    if status != "ok":
        problem.counters.wall_seconds = time.perf_counter() - start
        result = Discovery(adapter_cls.output, counters=problem.counters or Counters())
    record = circuit_record(task, result, adapter_cls(), p, n=n, seed=seed, ablation=ablation,
                            device=str(dev))
    record.update(status=status, error=error, peak_mem_mb=round(peak_memory_mb(dev), 1),
                  source_hash=method_source_hash(method), threads=torch.get_num_threads())
    atomic_write_json(out, record)
    return record


def score_stage(task_name: str, cache: str, circuits: list[str], out: str, *,
                sparsities, eval_examples: int, config_hash_: str = "") -> None:
    from benchmark import load_task
    from benchmark.evaluate import COLUMNS, score_record
    task = load_task(task_name, cache=cache)
    rows = []
    for path in circuits:
        with open(path) as f:
            record = json.load(f)
        rows.extend(score_record(task, record, sparsities=sparsities,
                                 eval_examples=eval_examples, config_hash=config_hash_))
    atomic_write_text(out, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))


def leaderboard_stage(score_files: list[str], out_dir: str, provenance: dict) -> None:
    from benchmark.leaderboard import build_leaderboard
    build_leaderboard(score_files, out_dir, provenance)


def provenance(config: dict) -> dict:
    from importlib.metadata import version
    from benchmark.discover import git_commit
    return {"git_commit": git_commit(), "config_hash": config_hash(config),
            "versions": {p: version(p) for p in ("torch", "tracr-pypi", "jax", "circuitbench",
                                                 "snakemake")}}


