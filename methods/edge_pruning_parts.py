"""The parts of Edge Pruning's training step (methods/edge_pruning.py): the hard-concrete masks
(sampled, their density, their deterministic value and the edges it keeps), the module that
holds them with the Lagrange multipliers, and what removed edges carry for any rows of the
discovery split.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.protocol import Problem, Split

CACHE_BYTES = 1 << 30      # precompute resample-ablated outputs for the whole split up to 1 GiB


def sample(log_alpha, u, p):
    """Hard-concrete samples, one row per row of u."""
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / p.beta)
    return (s * (p.stretch_right - p.stretch_left) + p.stretch_left).clamp(0.0, 1.0)


def density(log_alpha, p):
    """P(mask != 0) for each mask: the expected L0 norm."""
    return torch.sigmoid(log_alpha - p.beta * math.log(-p.stretch_left / p.stretch_right))


def kept(log_alpha, node_alpha, node_of_edge, p):
    """Which edges the thresholded deterministic masks keep now."""
    final = deterministic(log_alpha, p)
    if node_alpha is not None:
        final = final * deterministic(node_alpha, p)[node_of_edge]
    return final > p.threshold


def deterministic(log_alpha, p):
    s = torch.sigmoid(log_alpha) * (p.stretch_right - p.stretch_left) + p.stretch_left
    return s.clamp(0.0, 1.0)


class PruningMasks(nn.Module):
    """Edge Pruning's trainable state as parameters of one module: a hard-concrete mask per
    edge (`log_alpha`), optionally one per writer node (`node_alpha`, multiplying all of its
    outgoing edges), and the two Lagrange multipliers (`lambdas`). A module, so that every rank
    holds the same copy, and a distributed run sums its gradients (benchmark.graph.ranks).

    Initialised as the paper does, log_alpha ~ N(init_log_alpha, init_std), drawn from `gen`
    (edges first, then nodes); the lambdas start at 0.
    """

    def __init__(self, n_edges: int, p, gen: torch.Generator, device,
                 node_of_edge: torch.Tensor | None = None, n_nodes: int = 0):
        super().__init__()
        self.p = p
        draw = lambda n: p.init_log_alpha + p.init_std * torch.randn(n, generator=gen)  # noqa: E731
        self.log_alpha = nn.Parameter(draw(n_edges).to(device))
        self.node_alpha = None
        if node_of_edge is not None:
            self.node_alpha = nn.Parameter(draw(n_nodes).to(device))
            self.register_buffer("node_of_edge", node_of_edge.to(device))
        self.lambdas = nn.Parameter(torch.zeros(2, device=device))

    def mask_parameters(self) -> list:
        return [self.log_alpha] + ([self.node_alpha] if self.node_alpha is not None else [])

    def sample(self, u: torch.Tensor, u_nodes: torch.Tensor | None = None) -> torch.Tensor:
        """Masks [rows, n_edges] from uniform noise (edge noise, and node noise with nodes)."""
        mask = sample(self.log_alpha, u, self.p)
        if self.node_alpha is not None:
            mask = mask * sample(self.node_alpha, u_nodes, self.p)[:, self.node_of_edge]
        return mask

    def density(self) -> torch.Tensor:
        """P(an edge's effective mask != 0), per edge."""
        d = density(self.log_alpha, self.p)
        if self.node_alpha is not None:
            d = d * density(self.node_alpha, self.p)[self.node_of_edge]
        return d

    def deterministic(self) -> torch.Tensor:
        """The edge masks' deterministic values (no noise), in [0, 1]."""
        return deterministic(self.log_alpha, self.p)

    def kept(self) -> torch.Tensor:
        """Which edges the thresholded deterministic masks keep now."""
        node_of_edge = self.node_of_edge if self.node_alpha is not None else None
        return kept(self.log_alpha, self.node_alpha, node_of_edge, self.p)


def full_rows(problem, full, idx) -> torch.Tensor:
    """The full model's outputs on rows `idx` of the split: precomputed, or computed now."""
    if full is not None:
        return full[idx]
    with torch.no_grad():
        return problem.forward(problem.data.clean[idx])


class Ablation:
    """What removed edges carry, for any rows of the discovery split.

    zero: None. mean: the problem's mean over the split ([W, 1, S, D], shared by every row).
    resample: the writers' outputs on the paired corrupted inputs, precomputed once for the
    whole split when `cache` and that takes at most CACHE_BYTES (always so for Tracr models),
    else computed for each batch as it is drawn.
    """

    def __init__(self, problem: Problem, cache: bool = True):
        self.problem, self.cache, self.shared = problem, None, False
        data = problem.data
        if problem.ablation == "zero":
            self.shared = True
            return
        if problem.ablation == "mean":
            self.cache, self.shared = problem.ablated(data), True
            return
        # resample: per example; one example tells how much the whole split would take
        probe = problem.ablated(Split(data.clean[:1], data.corrupted[:1]))
        if probe is None:
            self.shared = True
            return
        if cache and probe.numel() * probe.element_size() * len(data) <= CACHE_BYTES:
            self.cache = torch.cat([problem.ablated(b) for b in problem.batches()], dim=1)

    def rows(self, idx: torch.Tensor):
        if self.shared:
            return self.cache
        if self.cache is not None:
            return self.cache[:, idx]
        data = self.problem.data
        return self.problem.ablated(Split(data.clean[idx], data.corrupted[idx]))


AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(p, device):
    """torch.autocast for the masked forward, or nothing (p.autocast "none")."""
    dtype = AUTOCAST[p.autocast]
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def check_autocast(p, device: str) -> None:
    """Fail before any run where the device cannot compute in p.autocast's dtype natively."""
    if p.autocast == "bf16" and torch.device(device).type == "cpu" and not (
            torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        raise ValueError("edge_pruning: autocast bf16 on a CPU without bf16 instructions "
                         "(AVX512-BF16 or AMX) runs emulated and slow; use autocast: none here, "
                         "or a GPU")
