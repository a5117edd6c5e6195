"""Edge Pruning's exact-recovery rate over seeds, with one fixed setting per task (its preset).

    python scripts/edge_pruning_rates.py --tasks reverse xproportion --seeds 10 --ablation zero

Prints per seed: circuit size, sparsity reached, final metric, wall seconds and the step cost,
and per task the rate of exact recovery of the ground truth that matches the ablation, plus the
ratio of one training step to one forward+backward pass on a batch of the same size.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmark import load_task
from benchmark.circuit import ablated_outputs, run_circuit
from benchmark.discover import discover
from benchmark.metrics import faithfulness

MATCHING = {"zero": "zero", "resample": "resample", "mean": "zero"}


def step_reference(task, batch_size: int, ablation: str, per_example: bool) -> float:
    """Median seconds of one masked forward+backward on a batch of the same size."""
    data = task.dataset(n=batch_size, seed=0).discovery
    with torch.no_grad():
        full = task.model(data.clean)
        ablated = ablated_outputs(task.model, ablation, data.clean, data.corrupted)
    times = []
    for _ in range(50):
        shape = (batch_size, task.graph.n_edges) if per_example else (task.graph.n_edges,)
        mask = torch.ones(shape, requires_grad=True)
        start = time.perf_counter()
        faithfulness(full, run_circuit(task.model, data.clean, mask, ablated),
                     task.output_kind).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["reverse", "xproportion"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--ablation", default="zero", choices=list(MATCHING))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--variant", default="per_example", choices=["per_example", "per_batch"])
    args = parser.parse_args()
    for name in args.tasks:
        task = load_task(name)
        truth = task.ground_truth(MATCHING[args.ablation])
        hits, steps = 0, []
        for seed in range(args.seeds):
            result, _, p = discover(task, "edge_pruning",
                                    {"sample_per_example": args.variant == "per_example"},
                                    n=args.n, seed=seed, ablation=args.ablation)
            hits += result.circuit == truth
            secs = result.counters.wall_seconds
            steps.append(secs / p.steps)
            print(f"{name} seed {seed}: exact={result.circuit == truth} "
                  f"edges={len(result.circuit)}/{task.graph.n_edges} "
                  f"sparsity={result.info['sparsity_reached']:.3f} "
                  f"metric={result.info['final_metric']:.2e} {secs:.1f} s "
                  f"({secs / p.steps * 1e3:.1f} ms/step)", flush=True)
        ref = step_reference(task, p.batch_size, args.ablation, args.variant == "per_example")
        step = statistics.median(steps)
        print(f"== {name} {args.ablation} ({args.variant}, preset {p}):\n   exact recovery of "
              f"`{MATCHING[args.ablation]}` ground truth: {hits}/{args.seeds}; step "
              f"{step * 1e3:.2f} ms = {step / ref:.2f}x one forward+backward at batch "
              f"{p.batch_size} ({ref * 1e3:.2f} ms)", flush=True)


if __name__ == "__main__":
    main()
