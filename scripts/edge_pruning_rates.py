"""Edge Pruning's exact-recovery rate over seeds, with one fixed setting per task (its preset).

    python scripts/edge_pruning_rates.py --tasks reverse xproportion --seeds 10 --ablation zero

Each seed runs `discover(task, "edge_pruning", ...)` with the task's preset
(`methods.edge_pruning.params_for_task`) and a fresh discovery split of --n examples drawn from
that seed. Printed per seed: exact recovery of the ground truth that matches the ablation
(`zero` for zero ablation, `resample` for resample ablation, `zero` for mean ablation, which has
no convention of its own), edges missing/extra against it, circuit size, sparsity reached, final
metric (KL or MSE of the binary circuit on the discovery split), binary fraction of the final
masks, the step after which the thresholded circuit stopped changing, wall seconds of the run,
CPU seconds of its training loop, the cost of one training step (training CPU seconds / steps)
and that cost relative to one forward+backward of `problem.forward` on a batch of the same size
with a float mask requiring grad (shape [batch, n_edges] for per-example sampling, [n_edges] per
batch), measured right after the run. The ratio uses CPU time (one thread), which a busy
machine disturbs far less than wall time. Per task: the recovery rate and medians.

--set key=value overrides a parameter for exploration; rates to report use the presets as is.
Runs on one thread by default (--threads), like the workflow's discover jobs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmark import load_task
from benchmark.core.conventions import MATCHING
from benchmark.discovery import discover, make_problem
from benchmark.graph.data import Split


def forward_backward_seconds(task, n: int, seed: int, ablation: str, batch_size: int,
                             per_example: bool, repeats: int = 30) -> float:
    """Median CPU seconds of one problem.forward + metric + problem.backward on a batch of
    `batch_size` discovery examples with a float mask that requires grad."""
    problem = make_problem(task, n=n, seed=seed, ablation=ablation, device=torch.device("cpu"))
    idx = torch.arange(min(batch_size, len(problem.data)))
    batch = Split(problem.data.clean[idx], problem.data.corrupted[idx])
    with torch.no_grad():
        full = problem.forward(batch.clean)
        ablated = problem.ablated(batch)
    shape = (len(idx), task.graph.n_edges) if per_example else (task.graph.n_edges,)
    times = []
    for _ in range(repeats):
        mask = torch.ones(shape, requires_grad=True)
        start = time.process_time()
        out = problem.forward(batch.clean, mask, ablated)
        problem.backward(problem.metric(full, out))
        times.append(time.process_time() - start)
    return statistics.median(times)


def parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["reverse", "xproportion"])
    parser.add_argument("--seeds", type=int, default=10,
                        help="how many seeds, from --first-seed on")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--ablation", default="zero", choices=list(MATCHING))
    parser.add_argument("--n", type=int, default=1000, help="discovery examples")
    parser.add_argument("--variant", default="per_example", choices=["per_example", "per_batch"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override preset parameters (exploration only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    per_example = args.variant == "per_example"
    overrides = {**parse_sets(args.set), "sample_per_example": per_example}

    for name in args.tasks:
        task = load_task(name)
        convention = MATCHING[args.ablation]
        truth = task.ground_truth(convention)
        hits, walls, step_ms, ratios = 0, [], [], []
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        for seed in seeds:
            result, _, p = discover(task, "edge_pruning", dict(overrides), n=args.n, seed=seed,
                                    ablation=args.ablation, device="cpu")
            cpu = result.info["train_cpu_seconds"]  # the training loop only
            fb = forward_backward_seconds(task, args.n, seed, args.ablation, p.batch_size,
                                          per_example)
            exact = result.circuit == truth
            hits += exact
            wall = result.counters.wall_seconds
            step = cpu / p.steps
            walls.append(wall)
            step_ms.append(step * 1e3)
            ratios.append(step / fb)
            info = result.info
            print(f"{name} {args.ablation} seed {seed}: exact={exact} "
                  f"missing={len(truth - result.circuit)} extra={len(result.circuit - truth)} "
                  f"edges={len(result.circuit)}/{task.graph.n_edges} "
                  f"sparsity={info['sparsity_reached']:.4f} "
                  f"metric={info['final_metric']:.2e} binary={info['binary_fraction']:.3f} "
                  f"settled@{info.get('settled_step', '?')} "
                  f"wall={wall:.1f}s train_cpu={cpu:.1f}s step={step * 1e3:.2f}ms "
                  f"fwd+bwd={fb * 1e3:.2f}ms "
                  f"ratio={step / fb:.2f}", flush=True)
        print(f"== {name} {args.ablation} {args.variant}: exact recovery of `{convention}` "
              f"ground truth ({len(truth)} edges): {hits}/{len(seeds)}; median wall "
              f"{statistics.median(walls):.1f} s (max {max(walls):.1f}), CPU step "
              f"{statistics.median(step_ms):.2f} ms = {statistics.median(ratios):.2f}x one "
              f"forward+backward at batch {p.batch_size}\n   params: {p}", flush=True)


if __name__ == "__main__":
    main()
