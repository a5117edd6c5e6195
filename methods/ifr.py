"""Information Flow Routes (Ferrando & Voita 2024, "Information flow routes: automatically
interpreting language models at scale"; reference implementation facebookresearch/
llm-transparency-tool, `routes/contributions.py` and `routes/graph.py`).

Forward only: one plain run per batch, no gradient and no ablation. Each reader port's input is
the sum of its writers' outputs; a writer's share of it at one (example, position) is its
proximity max(0, ||x||_1 - ||x - out_w||_1), normalised over the port's writers to sum to 1 (0
where no writer is proximate). An edge's importance is that share averaged over the examples
and over the positions the task's outputs read (`problem.readout_positions`: every position but
BOS on Tracr models, the answer position on prompt LMs).

The paper builds the graph greedily from the output: keep every edge of importance above tau
into a node already in the graph, add its writer, repeat. An edge is then kept iff its
importance is > tau and its reader's node reaches the logits through edges above tau, i.e. iff
min(importance, widest-path bottleneck from its reader's node to the logits) > tau. That minimum
is the score here, so thresholding the scores at tau gives exactly the greedy graph at tau, and
the ranking is the order in which edges join as tau falls. Scores are non-negative and at most 1
(ranking "signed").

Ablation: none. IFR reads the clean run only, so `problem.ablation` is ignored and its scores
are the same under zero, resample and mean ablation.

Differences, as simplifications the edge graph forces: the paper's graph has a node per (block,
token) and attention edges between tokens (each head's per-source-token contributions); here a
port is judged at the readout positions only (a head's k/v ports where its queries read, not
at their source tokens), and the importance is averaged into one graph over the examples.
MIB's implementation (hannamw/EAP-IG `get_scores_information_flow_routes`) averages over every
non-padding position instead and ranks by the importance itself, without the greedy build.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Graph, Problem, Recording, param


class IFR(Adapter):
    name = "ifr"
    version = "1"
    output = "scores"

    @dataclass(frozen=True)
    class Params:
        # examples per plain forward; bounds memory, not the result
        batch_size: int = param(20_000, minimum=1)

    @torch.no_grad()
    def discover(self, problem: Problem, params) -> Discovery:
        importance = importances(problem, params.batch_size)
        return Discovery("scores", scores=route_scores(problem.graph, importance),
                         ranking="signed")  # non-negative: higher = joins the graph earlier


def proximity(whole: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """max(0, ||whole||_1 - ||whole - part||_1) per part: whole [..., D], parts [W, ..., D]
    -> [W, ...]."""
    return (whole.abs().sum(-1) - (whole - parts).abs().sum(-1)).clamp(min=0)


def importances(problem: Problem, batch_size: int) -> torch.Tensor:
    """Each edge's importance [n_edges] float64: its writer's normalised proximity to the
    port's input, averaged over the examples' readout positions."""
    graph = problem.graph
    total = torch.zeros(graph.n_edges, dtype=torch.float64)
    n_read = 0
    for batch in problem.data.batches(batch_size):
        rec = Recording()
        problem.forward(batch.clean, record=rec)
        read = problem.readout_positions(batch.clean)  # [B, S] bool
        n_read += int(read.sum())
        for group, x in zip(graph.groups, rec.group_inputs):
            parts = torch.stack(rec.writers[:group.n_writers_before])[:, read]  # [W, R, D]
            # the plain run feeds every port of a group the same residual sum (one view)
            inputs = x[:1] if x.stride(0) == 0 else x
            for p, whole in enumerate(inputs):
                prox = proximity(whole[read], parts).double()  # [W, R]
                share = prox / prox.sum(0).clamp(min=torch.finfo(torch.float64).tiny)
                cols = group.edge_index if len(inputs) == 1 else group.edge_index[:, p:p + 1]
                total[cols] += share.sum(1, keepdim=True).cpu()
    if n_read == 0:
        raise ValueError("ifr: the outputs read no position of the discovery examples "
                         "(problem.readout_positions is all False); nothing to attribute")
    return total / n_read


def route_scores(graph: Graph, importance: torch.Tensor) -> torch.Tensor:
    """min(importance, the widest path's bottleneck from the edge's reader node to the
    logits): thresholding it at tau keeps exactly the greedy graph at tau."""
    score = torch.zeros_like(importance)
    best: dict[str, torch.Tensor] = {"logits": torch.tensor(float("inf"),
                                                            dtype=importance.dtype)}
    for group in reversed(graph.groups):  # every node's outgoing edges are scored first
        for p, port in enumerate(group.ports):
            node = graph.node_of(port)
            if node not in best:
                best[node] = score[graph.outgoing(node)].max()
            edges = group.edge_index[:, p]
            score[edges] = torch.minimum(importance[edges], best[node])
    return score


ADAPTER = IFR
