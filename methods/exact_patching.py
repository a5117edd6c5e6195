"""Exact activation patching: the effect of ablating each edge alone, what EAP approximates.

For every edge e: score_e = L(full circuit with e ablated) - L(full circuit), averaged over the
discovery examples, where L is `problem.task_loss`, the loss EAP and EAP-IG differentiate
(methods/attribution.py). EAP's score (ablated - clean) . dL/d(reader input) is the first-order
term of exactly this difference, so the two are directly comparable, sign included: positive =
ablating the edge raises the loss (the edge helps). Ranking "abs", like EAP's. Per batch the
loss is the batch mean EAP's gradient is of: the mean over examples of the per-example loss
(`problem.objective` on a task without its own objective) wherever every position counts; on a
`partial` task the batch pools its defined positions, as EAP's loss does.

Reference: the patching baseline of attribution patching (Nanda 2023; Syed et al. 2023) and
hannamw/EAP-IG `get_scores_exact` (MIB's "exact"), which re-runs the whole model per edge.
Cost: one patched forward per edge per batch, but only from the edge's reader group onward
(the clean run's writer outputs before it are reused, `start=`/`start_group=`), and several
edges share one forward through per-example masks: the batch is repeated once per edge, each
copy with its own edge ablated. No backward pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Problem, Recording, param


class ExactPatching(Adapter):
    name = "exact_patching"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        # examples per batch of the data, as EAP's batch_size (the loss is a batch mean)
        batch_size: int = param(20_000, minimum=1)
        # rows of one patched forward: a batch of b examples is repeated for max(1, this // b)
        # edges at once, or split into slices of this many rows; bounds memory, not the
        # result (on CPU, a few hundred rows run fastest)
        examples_per_pass: int = param(512, minimum=1)

    @torch.no_grad()
    def discover(self, problem: Problem, params) -> Discovery:
        graph = problem.graph
        total = torch.zeros(graph.n_edges, dtype=torch.float64)
        n_seen = 0
        for batch in problem.data.batches(params.batch_size):
            ablated = problem.ablated(batch)
            clean = Recording(keep_inputs=False)
            full = problem.forward(batch.clean, record=clean)
            base = float(problem.task_loss(full, full))
            b = len(batch)
            per_pass = max(1, params.examples_per_pass // b)
            rows = [slice(i, min(b, i + params.examples_per_pass))
                    for i in range(0, b, params.examples_per_pass)]
            for g, group in enumerate(graph.groups):
                for edges in group.edge_index.flatten().split(per_pass):
                    # [edges, b, S, O]: each example's output depends on its row alone
                    out = torch.cat([_patched(problem, batch.clean[r], clean.rows(r),
                                              _rows(ablated, r), g, edges) for r in rows], 1)
                    losses = [float(problem.task_loss(full, o)) for o in out]
                    total[edges] += (torch.tensor(losses, dtype=torch.float64) - base) * b
            n_seen += b
        return Discovery("scores", scores=total / n_seen, ranking="abs")


def _patched(problem: Problem, tokens, clean: Recording, ablated, g: int,
             edges: torch.Tensor) -> torch.Tensor:
    """Outputs [len(edges), B, S, O] of the full circuit with each of `edges` (all read by
    group g) ablated alone: one forward from group g over the rows repeated once per edge."""
    k, b = len(edges), len(tokens)
    n_w = problem.graph.groups[g].n_writers_before
    start = Recording([w.repeat(k, 1, 1) for w in clean.writers[:n_w]], keep_inputs=False)
    mask = torch.ones(k, problem.graph.n_edges, device=tokens.device)
    mask[torch.arange(k, device=tokens.device), edges.to(tokens.device)] = 0.0
    if ablated is not None and ablated.shape[1] != 1:  # per-example ablation (resample)
        ablated = ablated.repeat(1, k, 1, 1)
    out = problem.forward(tokens.repeat(k, 1), mask.repeat_interleave(b, dim=0), ablated,
                          start=start, start_group=g)
    return out.unflatten(0, (k, b))


def _rows(ablated, rows: slice):
    """The rows of a [W, B or 1, S, D] ablation (one row serves every example)."""
    return ablated if ablated is None or ablated.shape[1] == 1 else ablated[:, rows]


ADAPTER = ExactPatching
