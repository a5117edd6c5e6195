"""Shared core of HISP and NAP: every example's gradient of its loss w.r.t. every node mask.

The node mask m is one row per example ([B, n_nodes], all ones) and the loss is the sum of the
per-example losses L_x (`problem.objective`), so one forward and one backward give
dL_x/dm_n for every example x and node n: example x's output depends on row x alone. At m = 1
the node-masked forward is the plain model bit for bit, so its output is also the full model's
(no second forward). The mask interpolates between a writer's output and its ablated value
(`m * out + (1 - m) * ablated`: zero, the corrupted run's output, the mean), hence

    dL_x/dm_n = (out_n - ablated_n) . dL_x/d(residual at n's output), summed over positions,

the first-order change of L_x per unit of node n kept: NAP is minus its mean, HISP its mean
absolute value.
"""
from __future__ import annotations

import torch

from benchmark.protocol import Problem


def node_gradient_sums(problem: Problem, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over examples of dL_x/dm_n, sum of |dL_x/dm_n|), each [n_writers] float64 in
    graph.writers order, over the whole discovery split. Divide by len(problem.data) for means."""
    graph, dev = problem.graph, problem.device
    n_writers = len(graph.writers)
    signed = torch.zeros(n_writers, dtype=torch.float64, device=dev)
    absolute = torch.zeros(n_writers, dtype=torch.float64, device=dev)
    for batch in problem.data.batches(batch_size):
        ablated = problem.ablated(batch)
        mask = torch.ones(len(batch), graph.n_nodes, device=dev, requires_grad=True)
        out = problem.forward_nodes(batch.clean, mask, ablated)
        # m = 1 is the plain model: its output is the full model's; the sum's gradient w.r.t.
        # row x of the mask is example x's own gradient
        loss = problem.objective(out.detach(), out, batch).sum()
        (grad,) = problem.grad(loss, [mask])
        grad = grad[:, :n_writers].double()
        signed += grad.sum(0)
        absolute += grad.abs().sum(0)
    return signed, absolute


def with_output_node(writer_scores: torch.Tensor) -> torch.Tensor:
    """Scores over graph.nodes: the writers' scores, then 0 for `logits` (always kept; the
    benchmark ignores its score)."""
    return torch.cat([writer_scores, writer_scores.new_zeros(1)])
