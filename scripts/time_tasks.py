"""How long each task takes to build, and how long one pass over a full-size dataset takes.

For every task: compile, verify and ground-truth seconds of a real build (tracr compile into a
temporary cache unless --cache points at one that already holds the artifact; the seconds then
come from that artifact's build), the number of graph edges, and the wall time of
  forward   the plain model, torch.no_grad(), over n examples
  masked    run_circuit with every mask at 1 under resample ablation (ablated outputs computed
            beforehand, not timed), torch.no_grad()
  fwd+bwd   the same masked forward with a float mask requiring grad, then backward of the
            output sum
All times are seconds of one run (the machine is shared: repeat for stable numbers).

    python scripts/time_tasks.py --tasks reverse xproportion --n 100000 [--threads 1]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmark import list_tasks
from benchmark.backends.tracr.task import Task, artifact_path
from benchmark.core.artifact import Artifact
from benchmark.core.registry import TASKS
from benchmark.graph.circuit import ablated_outputs, run_circuit

COLUMNS = [("task", 14, "s"), ("shape", 6, "s"), ("edges", 6, "d"), ("compile", 8, ".2f"),
           ("verify", 8, ".2f"), ("gt", 8, ".2f"), ("forward", 8, ".3f"), ("masked", 8, ".3f"),
           ("fwd+bwd", 8, ".3f"), ("note", 0, "s")]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def build(name: str, cache: Path, device: str) -> tuple[Task, str]:
    """The task, compiled into `cache` unless already there (then the note says so)."""
    spec = TASKS.get(name)
    path = artifact_path(spec, cache / "tasks")
    note = "cached build" if path.exists() else ""
    if not path.exists():
        from benchmark.backends.tracr.build import build_task_artifact  # jax only here
        build_task_artifact(spec).save(path)
    return Task(spec, Artifact.load(path), device=device), note


def time_task(name: str, n: int, cache: Path, device: str) -> dict:
    task, note = build(name, cache, device)
    meta, model, dev = task.meta, task.model, torch.device(device)
    data = task.dataset(n=n, seed=0).discovery
    clean, corrupted = data.clean, data.corrupted
    n_edges = task.graph.n_edges

    def forward():
        with torch.no_grad():
            model(clean)

    with torch.no_grad():
        ablated = ablated_outputs(model, "resample", clean, corrupted)
    ones = torch.ones(n_edges, device=dev)

    def masked():
        with torch.no_grad():
            run_circuit(model, clean, ones, ablated)

    def forward_backward():
        mask = torch.ones(n_edges, device=dev, requires_grad=True)
        run_circuit(model, clean, mask, ablated).sum().backward()
        assert mask.grad is not None

    return {"task": name, "shape": f"{model.n_layers}x{model.n_heads}", "edges": n_edges,
            "compile": meta["compile_seconds"], "verify": meta["verify_seconds"],
            "gt": meta["ground_truth_seconds"], "forward": _timed(forward, dev),
            "masked": _timed(masked, dev), "fwd+bwd": _timed(forward_backward, dev),
            "note": note}


def _row(values: dict | None = None) -> str:
    cells = []
    for name, width, fmt in COLUMNS:
        if values is None:
            cells.append(f"{name:>{width}}" if width else name)
        else:
            text = format(values[name], fmt)
            cells.append(f"{text:>{width}}" if width else text)
    return " ".join(cells).rstrip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=None, help="default: every task")
    parser.add_argument("--n", type=int, default=100_000, help="examples per pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", type=Path, default=None,
                        help="artifact cache to (re)use; default a fresh temporary one")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.tasks or list_tasks()
    unknown = sorted(set(names) - set(list_tasks()))
    if unknown:
        parser.error(f"unknown tasks {unknown}; known: {', '.join(list_tasks())}")
    print(f"n = {args.n:,} examples, device {args.device}, {torch.get_num_threads()} torch "
          f"threads; seconds (compile/verify/gt from the build, passes timed once)")
    print(_row())
    with tempfile.TemporaryDirectory(prefix="circuitbench-time-") as tmp:
        cache = args.cache or Path(tmp)
        for name in names:
            print(_row(time_task(name, args.n, cache, args.device)), flush=True)


if __name__ == "__main__":
    main()
