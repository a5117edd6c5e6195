"""Wall time of each method, in seconds and relative to one forward+backward pass at the same size.

The machine is shared and noisy, so ratios matter more than seconds. Reference passes are timed
as the median of several repeats:
  forward      plain model, no gradient
  fwd+bwd      masked forward (every mask 1, requires grad) plus backward of the metric
Targets (issue 3): EAP within 5x of fwd+bwd; ACDC below one full forward per edge per tau;
an Edge Pruning step within 2x of fwd+bwd on its own batch.

    python scripts/bench_methods.py --task reverse --n 1000 100000
"""
from __future__ import annotations

import argparse

import torch
from _timing import median_time  # the scripts folder is on sys.path when run as a script

from benchmark import load_task
from benchmark.discovery import discover, list_methods
from benchmark.graph.circuit import ablated_outputs, run_circuit
from benchmark.graph.metrics import faithfulness


def reference_passes(task, n: int, ablation: str, rows: int | None = None,
                     repeats: int = 3) -> tuple[float, float]:
    """Median forward and forward+backward seconds on the discovery split of size n, or on its
    first `rows` examples (an Edge Pruning batch)."""
    split = task.dataset(n=n, seed=0).discovery
    clean, corrupted = split.clean[:rows], split.corrupted[:rows]
    model = task.model
    with torch.no_grad():
        full = model(clean)
        ablated = ablated_outputs(model, ablation, clean, corrupted)

    def forward():
        with torch.no_grad():
            model(clean)

    def forward_backward():
        mask = torch.ones(task.graph.n_edges, requires_grad=True)
        out = run_circuit(model, clean, mask, ablated)
        faithfulness(full, out, task.output_kind).backward()

    forward()
    return (median_time(forward, repeats, warmup=False),
            median_time(forward_backward, repeats, warmup=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reverse")
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--ablation", default="zero")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = load_task(args.task)
    methods = args.methods or list_methods()
    print(f"task {args.task}: {task.graph.n_edges} edges, {args.ablation} ablation, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'n':>7} {'method':>13} {'seconds':>9} {'x fwd+bwd':>10} {'x forward':>10}  notes")
    for n in args.n:
        fwd, fwd_bwd = reference_passes(task, n, args.ablation)
        print(f"{n:>7} {'(forward)':>13} {fwd:9.3f} {fwd / fwd_bwd:10.2f} {1:10.2f}")
        print(f"{n:>7} {'(fwd+bwd)':>13} {fwd_bwd:9.3f} {1:10.2f} {fwd_bwd / fwd:10.2f}")
        for name in methods:
            result, _, params = discover(task, name, {}, n=n, seed=0, ablation=args.ablation)
            c = result.counters
            secs = c.wall_seconds
            notes = f"{c.forward_passes} fwd, {c.backward_passes} bwd"
            if name == "acdc":
                per_edge = secs / (task.graph.n_edges * fwd)
                notes += f"; {per_edge:.2f} full forwards per edge (target < 1)"
            if name == "edge_pruning" and getattr(params, "steps", None):
                # the training loop only: setup (full outputs, ablation cache) is not a step
                step = result.info.get("train_seconds", secs) / params.steps
                _, batch_fwd_bwd = reference_passes(task, n, args.ablation,
                                                    rows=params.batch_size, repeats=50)
                notes += (f"; step {step * 1e3:.1f} ms = {step / batch_fwd_bwd:.2f}x fwd+bwd "
                          f"at batch {params.batch_size} (target < 2)")
            print(f"{n:>7} {name:>13} {secs:9.3f} {secs / fwd_bwd:10.2f} {secs / fwd:10.2f}  "
                  f"{notes}")


if __name__ == "__main__":
    main()
