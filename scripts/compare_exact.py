"""How far each approximation is from exact activation patching, and what each costs.

For each task setting, runs exact_patching (the effect of ablating each edge alone) and the
approximations, and prints a table: wall seconds, forward and backward passes, and the
Spearman correlation of each method's |score| with exact patching's |score| (EAP, EAP-IG and
EAP-IG on activations estimate exactly that quantity; IFR, which uses no ablation, ranks by
something else). With --worst K it lists, per method, the K edges whose rank differs most from
their exact rank: where the approximations differ most from exact patching.

    python scripts/compare_exact.py                       # the three default settings
    python scripts/compare_exact.py --setting reverse:zero --n 200 --worst 5
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import rankdata, spearmanr

from benchmark import load_task
from benchmark.discovery import discover

SETTINGS = ["xproportion:zero", "reverse:zero", "ioi@tiny_gpt2:resample"]
METHODS = ["exact_patching", "eap", "eap_ig", "eap_ig_activations", "ifr"]


def compare(task_name: str, ablation: str, n: int, seed: int, device: str) -> list[dict]:
    """One row per method: cost, Spearman of |score| with exact patching's, and the scores."""
    task = load_task(task_name)
    rows, exact = [], None
    for method in METHODS:
        result, _, _ = discover(task, method, {}, n=n, seed=seed, ablation=ablation,
                                device=device)
        size = np.abs(result.scores)
        if exact is None:
            exact = size
        rho = spearmanr(size, exact).statistic if np.ptp(size) and np.ptp(exact) else np.nan
        c = result.counters
        rows.append({"task": task_name, "ablation": ablation, "method": method,
                     "edges": task.graph.n_edges, "seconds": c.wall_seconds,
                     "forward": c.forward_passes, "backward": c.backward_passes,
                     "spearman": rho, "size": size, "edge_ids": task.graph.edges})
    return rows


def worst_edges(row: dict, exact: np.ndarray, k: int) -> list[str]:
    """The k edges whose rank by |score| (1 = largest) differs most from their exact rank."""
    mine, theirs = rankdata(-row["size"]), rankdata(-exact)
    order = np.argsort(-np.abs(mine - theirs), kind="stable")[:k]
    return [f"{row['edge_ids'][i]} (exact #{theirs[i]:g}, here #{mine[i]:g})" for i in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", nargs="+", default=SETTINGS, help="task:ablation")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worst", type=int, default=0, help="list the K most misranked edges")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"n={args.n} seed={args.seed} device={args.device} threads={args.threads}; "
          "spearman: of |score| with exact_patching's |score|")
    print(f"{'task':<24}{'ablation':<10}{'method':<20}{'edges':>6}{'seconds':>9}"
          f"{'fwd':>6}{'bwd':>5}{'spearman':>10}")
    for setting in args.setting:
        task_name, _, ablation = setting.rpartition(":")
        rows = compare(task_name, ablation, args.n, args.seed, args.device)
        for r in rows:
            print(f"{r['task']:<24}{r['ablation']:<10}{r['method']:<20}{r['edges']:>6}"
                  f"{r['seconds']:>9.2f}{r['forward']:>6}{r['backward']:>5}"
                  f"{r['spearman']:>10.3f}")
        for r in rows[1:] if args.worst else []:
            print(f"  {r['method']} most misranked: " +
                  "; ".join(worst_edges(r, rows[0]["size"], args.worst)))


if __name__ == "__main__":
    main()
