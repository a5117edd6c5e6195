"""EAP-IG on activations (Hanna et al. 2024; MIB, Mueller et al. 2025): integrated gradients
along the straight path in mask space from the empty circuit to the full one.

Every edge mask is set to the same alpha, so every reader's input interpolates each of its
writers between the ablated and the clean output at once, and the gradient of the task loss
(`problem.task_loss`, EAP's) with respect to each edge's mask is taken at `steps` points
alpha = (k - 1/2) / steps, k = 1..steps (the midpoint rule). Its average is edge e's integrated
gradient IG_e = integral over alpha of dL/dm_e(alpha * 1); the score is -IG_e, so that positive =
ablating the edge raises the loss, like EAP's (at alpha = 1 alone, -dL/dm_e is exactly EAP's
(ablated - clean) . dL/d(reader input)). Ranking "abs". By IG's completeness the scores sum
to L(empty circuit) - L(full circuit) as steps grows (the midpoint rule's error falls as
1/steps^2). Cost: steps masked forward and backward passes per batch, plus the clean run (and
the corrupted run under resample ablation).

How this differs from MIB's "EAP-IG-activations" (hannamw/EAP-IG `get_scores_ig_activations`,
the commit MIB-circuit-track pins, 7af394a): MIB interpolates one sublayer at a time (the
input, each attention layer's output, each MLP's output: alpha * clean + (1 - alpha) *
corrupted, alpha = k / steps, k = 1..steps, the rest of the model run on the clean input),
collects the gradient at every reader's input on each of those runs, and scores an edge by
(corrupted - clean) of its writer times the gradient averaged over all (sublayer, step) runs:
(2 L + 1) * steps forward and backward passes. Here all edges move together along one path, so
the scores add up to the total effect (completeness), which MIB's average over runs of other
sublayers does not guarantee; a writer's output is interpolated per edge (each reader's copy),
not once per node.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Problem, param


class EAPIGActivations(Adapter):
    name = "eap_ig_activations"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        steps: int = param(5, minimum=1)
        # examples per gradient; bounds memory, not the result
        batch_size: int = param(20_000, minimum=1)

    def discover(self, problem: Problem, params) -> Discovery:
        alphas = [(k - 0.5) / params.steps for k in range(1, params.steps + 1)]
        scores = -mask_gradients(problem, alphas, params.batch_size)
        return Discovery("scores", scores=scores, ranking="abs")  # canonical order


def mask_gradients(problem: Problem, alphas: list[float], batch_size: int) -> torch.Tensor:
    """dL/d(edge masks) at masks = alpha (every edge), averaged over `alphas` and over the
    examples: [n_edges] float64 in canonical order."""
    graph = problem.graph
    total = torch.zeros(graph.n_edges, dtype=torch.float64, device=problem.device)
    n_seen = 0
    for batch in problem.data.batches(batch_size):
        ablated = problem.ablated(batch)
        with torch.no_grad():
            full = problem.forward(batch.clean)
        for alpha in alphas:
            mask = torch.full((graph.n_edges,), alpha, device=problem.device,
                              requires_grad=True)
            out = problem.forward(batch.clean, mask, ablated)
            (grad,) = problem.grad(problem.task_loss(full, out), [mask])
            # the loss is a batch mean: weighting by batch size averages over examples
            total += grad.double() * len(batch) / len(alphas)
        n_seen += len(batch)
    return total / n_seen


ADAPTER = EAPIGActivations
