"""The parts of Edge Pruning's training step (methods/edge_pruning.py): the hard-concrete masks
(sampled, their density, their deterministic value and the edges it keeps) and what removed
edges carry for any rows of the discovery split.
"""
from __future__ import annotations

import math

import torch

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
