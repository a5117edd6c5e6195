"""Head importance score for pruning, HISP (Michel, Levy & Neubig 2019, "Are Sixteen Heads
Really Better than One?"): the expected absolute gradient of the loss w.r.t. a node's mask.

Node n scores I_n = mean over examples x of |dL_x / dm_n| at m = 1, L_x the example's task loss
(`problem.objective`: the task's own measure on prompt tasks, the NLL of the full model's answer
on categorical Tracr tasks, the mean output on numerical ones; `problem.metric`'s KL has no
gradient at m = 1). The mask is per example, so one forward and one backward give every
example's gradient (methods/node_gradients.py). The absolute value is taken per example, before
the mean: a node that helps some examples and hurts others still scores high.

Differences from the paper, stated:
- The paper masks heads only. Every writer is scored here (the input embeddings, heads, MLPs):
  a node-level circuit keeps or removes each of them, and the benchmark ranks them all; ACDC's
  reference run (experiments/launch_sixteen_heads.py) also scores the MLPs.
- Under zero ablation m_n scales the node's output (the paper's mask); under resample or mean
  ablation m_n interpolates between the node's output and its ablated value, so the gradient is
  (output - ablated) . dL/d(residual) instead of output . dL/d(residual).
- The paper (and ACDC's run) divide each layer's scores by their L2 norm before pruning across
  layers; `normalize_layers=True` does that here (a layer: its heads and its MLP; the input
  writers form their own group). Off by default: the raw scores are the brief's I_n.

Cost class: one forward and one backward per batch (plus the corrupted run for resample
ablation), like EAP.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Problem, param
from methods.node_gradients import node_gradient_sums, with_output_node


class HISP(Adapter):
    name = "hisp"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        # examples per gradient; bounds memory, not the result
        batch_size: int = param(20_000, minimum=1)
        # divide each layer's scores by their L2 norm (the paper's and ACDC's choice)
        normalize_layers: bool = False

    def discover(self, problem: Problem, params) -> Discovery:
        _, absolute = node_gradient_sums(problem, params.batch_size)
        scores = absolute / len(problem.data)
        if params.normalize_layers:
            scores = layer_normalized(problem.graph.writers, scores)
        return Discovery("scores", scores=with_output_node(scores), level="node")


def layer_normalized(writers: list[str], scores: torch.Tensor) -> torch.Tensor:
    """Each layer's scores (heads a{l}.*, MLP m{l}; the input writers one group) over their L2
    norm (floored at 1e-12, so an all-zero layer stays zero)."""
    layer = [w[1:].split(".")[0] if w[0] in "am" and w[1].isdigit() else "input"
             for w in writers]
    out = scores.clone()
    for name in set(layer):
        idx = torch.tensor([i for i, x in enumerate(layer) if x == name])
        out[idx] = scores[idx] / scores[idx].norm().clamp(min=1e-12)
    return out


ADAPTER = HISP
