"""Dataset files: written by the workflow's data stage, checked whenever a stage reads one.

A dataset is a deterministic function of (task, n, seed, evaluation size), so a file that is
unreadable or was made for something else is never used: it is named and rebuilt.
"""
from __future__ import annotations

import io
import sys

import torch

from benchmark.core.artifact import atomic_write_bytes
from benchmark.graph.data import Split, TaskData


def dataset_stage(task_name: str, cache: str, n: int, seed: int, eval_examples: int,
                  out: str) -> None:
    from benchmark.tasks import load_task
    from benchmark.tasks import task_key
    data = load_task(task_name, cache=cache).dataset(n=n, seed=seed, n_eval=eval_examples)
    buf = io.BytesIO()
    torch.save({"task": data.task, "task_key": task_key(task_name), "seed": data.seed,
                "n": n, "eval_examples": eval_examples,
                "discovery": data.discovery.tensors(),
                "evaluation": data.evaluation.tensors()}, buf)
    atomic_write_bytes(out, buf.getvalue())


class DatasetError(ValueError):
    """A dataset file that cannot be used: unreadable, or made for another task or size."""


def load_dataset(path: str, task_name: str | None = None, n: int | None = None,
                 seed: int | None = None) -> TaskData:
    """The dataset at `path`, checked against the task, size and seed it must belong to."""
    try:
        d = torch.load(path, weights_only=True)
        data = TaskData(d["task"], d["seed"], Split(*d["discovery"]), Split(*d["evaluation"]))
    except Exception as err:  # torch/zip/pickle errors name no file; this one does
        raise DatasetError(f"dataset {path} is unreadable ({type(err).__name__}: {err})") \
            from None
    from benchmark.tasks import task_key
    expected = {"task": task_name, "seed": seed, "n": n,
                "task_key": task_key(task_name) if task_name else None}
    for key, want in expected.items():
        if want is not None and d.get(key) != want:
            raise DatasetError(f"dataset {path} was made for {key} {d.get(key)!r}, not {want!r}")
    if n is not None and len(data.discovery) != n:
        raise DatasetError(f"dataset {path} holds {len(data.discovery)} discovery examples, "
                           f"not {n}")
    return data


def ensure_dataset(path: str, task_name: str, cache: str, n: int, seed: int,
                   eval_examples: int) -> TaskData:
    """The dataset at `path`; a damaged or stale one is rebuilt in place (it is a deterministic
    function of task, n and seed) with a warning, never used."""
    try:
        return load_dataset(path, task_name, n, seed)
    except DatasetError as err:
        print(f"warning: {err}; rebuilding it", file=sys.stderr)
    dataset_stage(task_name, cache, n, seed, eval_examples, path)
    return load_dataset(path, task_name, n, seed)
