"""Shared core of EAP and EAP-IG: gradients of the task loss at every reader's input.

An edge w -> p scores (ablated_w - clean_w) . dL/d(input_p), summed over positions and averaged
over examples: the first-order change of the loss when the edge is ablated. EAP takes the
gradient at the clean run; EAP-IG averages it over runs whose embeddings are interpolated from
the ablated to the clean ones. The loss is the task's loss with a non-zero gradient at the clean
run (KL to the clean model has none there).
"""
from __future__ import annotations

import torch

from benchmark.protocol import Problem, Recording


def attribution_scores(problem: Problem, alphas: list[float], batch_size: int) -> torch.Tensor:
    """Signed scores [n_edges] in canonical order, float64."""
    graph = problem.graph
    total = torch.zeros(graph.n_edges, dtype=torch.float64, device=problem.device)
    n_seen = 0
    for batch in problem.data.batches(batch_size):
        ablated = problem.ablated(batch)
        clean_rec = Recording(keep_inputs=False)
        with torch.no_grad():
            full = problem.forward(batch.clean, record=clean_rec)
        clean = clean_rec.writers
        grads = [torch.zeros(0)] * len(graph.groups)
        for alpha in alphas:
            # the plain forward from embeddings that require grad: every reader input is then a
            # (per-port) view of the residual stream, and its gradient is that port's alone
            embeddings = [e.detach().requires_grad_() for e in
                          _interpolated_embeddings(clean[:len(graph.input_writers)], ablated,
                                                   alpha)]
            rec = Recording()
            out = problem.forward(batch.clean, None, None, record=rec, embeddings=embeddings)
            loss = problem.task_loss(full, out)
            step = problem.grad(loss, rec.group_inputs)
            grads = [s if a.numel() == 0 else a + s for a, s in zip(grads, step)]
        delta = _ablated_minus_clean(clean, ablated).flatten(1)  # [W, B*S*D]
        for group, grad in zip(graph.groups, grads):
            n_w = group.n_writers_before
            # the loss is a batch mean, so this sum is the batch mean of the per-example
            # scores; weighting by batch size averages over batches
            s = (delta[:n_w] @ grad.reshape(grad.shape[0], -1).t()).double() / len(alphas)
            total[group.edge_index.to(total.device).flatten()] += s.flatten() * len(batch)
        n_seen += len(batch)
    return total / n_seen


def _ablated_minus_clean(clean, ablated) -> torch.Tensor:
    c = torch.stack(clean)
    return -c if ablated is None else ablated[:len(clean)] - c


def _interpolated_embeddings(clean_emb, ablated, alpha: float):
    if alpha == 1.0:
        return tuple(clean_emb)
    out = []
    for w, c in enumerate(clean_emb):
        a = torch.zeros_like(c) if ablated is None else ablated[w].expand_as(c)
        out.append(a + alpha * (c - a))
    return tuple(out)
