"""Subnetwork probing (Cao, Sanh & Rush 2021, "Low-Complexity Probing via Finding Subnetworks"),
as ACDC (Conmy et al. 2023) runs it for circuit discovery: a hard-concrete mask per node,
trained to keep the model's behaviour with few nodes.

Each writer n (input embeddings, heads, MLPs; `logits` is always kept) has a parameter
log_alpha_n. A training step draws hard-concrete masks z (methods/edge_pruning_parts.py: beta
2/3, stretch l = -0.1, r = 1.1), one per example and writer, runs the node-masked forward
(`problem.forward_nodes`: a removed node carries what the ablation says) on a random batch and
minimises

    metric(full, circuit) + lambda_ * mean_n P(z_n != 0)

by Adam on log_alpha: the faithfulness metric (KL to the full model; MSE on numerical tasks)
plus lambda_ times the expected fraction of writers kept (the expected L0 norm over the number
of writers, ACDC's regulariser). lambda_ is the sweep axis: larger keeps fewer nodes. The
output is the deterministic circuit: the writers whose deterministic mask
clamp(sigmoid(log_alpha) (r - l) + l, 0, 1) exceeds 0.5 (the circuit lists writers; `logits`
is implied).

Settings, against ACDC's subnetwork_probing/train.py (read for facts): log_alpha starts at
logit((0.9 - l) / (r - l)) = log 5 (deterministic mask 0.9, Cao et al.'s init), here plus
N(0, init_std) noise drawn from the seed; ACDC trains 3,000 full-batch steps at lr 1e-3 with one
mask sample per step, lambda swept over 10^[-3, 0] on Tracr. Defaults here: 300 steps at lr 0.1
(the same distance in log_alpha in a tenth of the steps; seconds on a Tracr task), batches of
32 drawn from the discovery split with one mask sample per example (less noise per step, as
Edge Pruning's per-example sampling). ACDC masks a head's q, k and v inputs separately and its
MLP outputs; a node here is a whole writer (its output in every reader), as node circuits are.

Cost class: `steps` forward and backward passes of `batch_size` examples (plus one forward over
the split for the full outputs, the corrupted run for resample ablation, and one for the final
circuit's metric).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Problem, param
from methods import edge_pruning_parts as parts

EPS = 1e-6       # keeps the uniform noise away from 0 and 1
KEEP_AT = 0.5    # the final circuit keeps a writer whose deterministic mask exceeds this


class SubnetworkProbing(Adapter):
    name = "subnetwork_probing"
    version = "1"
    output = "circuit"

    @dataclass(frozen=True)
    class Params:
        steps: int = param(300, minimum=1)
        lr: float = param(0.1, exclusive_minimum=0)          # Adam on log_alpha
        lambda_: float = param(0.01, minimum=0)              # weight of the expected kept fraction
        batch_size: int = param(32, minimum=1)
        init_log_alpha: float = math.log(5.0)                # deterministic mask 0.9
        init_std: float = param(0.01, minimum=0)
        beta: float = param(2 / 3, exclusive_minimum=0)      # hard-concrete temperature
        stretch_left: float = -0.1                           # l, < 0
        stretch_right: float = 1.1                           # r, > 1

    def discover(self, problem: Problem, p) -> Discovery:
        if not p.stretch_left < 0 < 1 < p.stretch_right:
            raise ValueError("subnetwork_probing: needs stretch_left < 0 and stretch_right > 1 "
                             f"(got {p.stretch_left}, {p.stretch_right}); the defaults are "
                             "-0.1 and 1.1")
        graph, data, dev = problem.graph, problem.data, problem.device
        n, n_writers = len(data), len(graph.writers)
        gen = torch.Generator(device="cpu").manual_seed(int(problem.seed))
        full = _full_outputs(problem)
        ablation = parts.Ablation(problem)
        log_alpha = p.init_log_alpha + p.init_std * torch.randn(n_writers, generator=gen)
        log_alpha = log_alpha.to(dev).requires_grad_()
        opt = torch.optim.Adam([log_alpha], lr=p.lr)
        metric = kept_fraction = torch.zeros(())
        for _ in range(p.steps):
            idx = torch.randint(0, n, (p.batch_size,), generator=gen)
            u = torch.rand(p.batch_size, n_writers, generator=gen).clamp_(EPS, 1 - EPS)
            z = parts.sample(log_alpha, u.to(dev), p)
            idx = idx.to(dev)
            out = problem.forward_nodes(data.clean[idx], _with_logits(z), ablation.rows(idx))
            metric = problem.metric(full[idx], out)
            kept_fraction = parts.density(log_alpha, p).mean()
            loss = metric + p.lambda_ * kept_fraction
            opt.zero_grad(set_to_none=True)
            problem.backward(loss)
            opt.step()

        with torch.no_grad():
            final = parts.deterministic(log_alpha, p)
            keep = final > KEEP_AT
            circuit = frozenset(w for w, k in zip(graph.writers, keep.tolist()) if k)
            final_metric = _circuit_metric(problem, full, ablation, keep.float())
        info = {
            "nodes_kept": len(circuit),
            "n_writers": n_writers,
            "final_metric": final_metric,  # the binary circuit's metric over the split
            "binary_fraction": float(((final == 0) | (final == 1)).double().mean()),
            "train_metric_last": float(metric.detach()),
            "expected_kept_fraction_last": float(kept_fraction.detach()),
        }
        return Discovery("circuit", circuit=circuit, level="node", info=info)


def _with_logits(writer_mask: torch.Tensor) -> torch.Tensor:
    """A mask over graph.nodes from one over the writers: `logits` (last) kept."""
    return torch.cat([writer_mask, writer_mask.new_ones(*writer_mask.shape[:-1], 1)], -1)


def _full_outputs(problem: Problem) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([problem.forward_nodes(b.clean) for b in problem.batches()])


def _circuit_metric(problem, full, ablation, writer_mask) -> float:
    """The metric of the binary node circuit over the whole discovery split."""
    total, n, size = 0.0, len(problem.data), problem.batch_size
    node_mask = _with_logits(writer_mask)
    for start in range(0, n, size):
        idx = torch.arange(start, min(start + size, n), device=problem.device)
        out = problem.forward_nodes(problem.data.clean[idx], node_mask, ablation.rows(idx))
        total += float(problem.metric(full[idx], out)) * len(idx)
    return total / n


ADAPTER = SubnetworkProbing
