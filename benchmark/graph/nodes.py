"""Node-level circuits: whole components kept or ablated, and how they map to and from edges.

A node is a writer (`tok_embeds`/`pos_embeds` or `input`, `a{l}.h{h}`, `m{l}`) or `logits`.
Ablating a node replaces its output in every reader: the ordinary residual stream with the
node's output swapped for its ablated value (zero, the corrupted run's, the mean). That costs
one plain forward, where an edge circuit feeds each reader its own input: the cheap path on
big models. `logits` is the output and is always kept; recovery and sparsity count writers.

The projections (stated in the README):
- an edge circuit's nodes are the writers of its kept edges (`nodes_of_edges`); a score vector's
  node scores are each writer's largest outgoing edge score (`node_scores_of_edges`);
- a node circuit's edges are the edges between its nodes, `logits` included (`edges_of_nodes`).
  Its masked forward equals the node-masked forward: an edge into a removed node feeds nothing
  that is read, and a removed writer's edges carry its ablated output either way.
"""
from __future__ import annotations

import numpy as np
import torch

from benchmark.graph.circuit import _block, graph_of, run_context
from benchmark.graph.graph import Graph

OUTPUT_NODE = "logits"


def nodes_of_edges(graph: Graph, edges) -> frozenset[str]:
    """The writers of an edge circuit's kept edges: its node-level view."""
    return frozenset(e.split("->")[0] for e in edges)


def edges_of_nodes(graph: Graph, nodes) -> frozenset[str]:
    """The edges between a node circuit's nodes (`logits` always kept): its edge-level view."""
    kept = set(nodes) | {OUTPUT_NODE}
    unknown = kept - set(graph.nodes)
    if unknown:
        raise KeyError(f"nodes not in this graph: {sorted(unknown)[:5]} (ids look like "
                       f"{graph.nodes[0]!r}, 'a0.h0', 'm0')")
    return frozenset(e for e in graph.edges
                     if e.split("->")[0] in kept and graph.node_of(e.split("->")[1]) in kept)


def node_scores_of_edges(graph: Graph, scores) -> np.ndarray:
    """Per writer (graph.writers order), its largest outgoing edge score: a component matters
    as much as its most important output."""
    values = np.asarray(scores, dtype=np.float64)
    return np.array([values[graph.outgoing(w)].max() for w in graph.writers])


def edge_mask_of_nodes(graph: Graph, node_mask: torch.Tensor) -> torch.Tensor:
    """The edge mask [..., n_edges] whose masked forward is the node-masked forward of
    `node_mask` [..., n_nodes]: each edge carries its writer's mask."""
    index = torch.tensor([graph.writer_to_index[e.split("->")[0]] for e in graph.edges],
                         device=node_mask.device)
    return node_mask[..., index]


def node_mask_from_nodes(graph: Graph, nodes, dtype=torch.float32) -> torch.Tensor:
    """A 0/1 vector over graph.nodes from a collection of node ids (`logits` always 1)."""
    unknown = set(nodes) - set(graph.nodes)
    if unknown:
        raise KeyError(f"nodes not in this graph: {sorted(unknown)[:5]}")
    mask = torch.zeros(graph.n_nodes, dtype=dtype)
    for n in set(nodes) | {OUTPUT_NODE}:
        mask[graph.node_to_index[n]] = 1.0
    return mask


def run_nodes(model, tokens: torch.Tensor, node_mask: torch.Tensor | None = None,
              ablated: torch.Tensor | None = None, *,
              attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Outputs [B, S, n_outputs] of `model` with each writer's output weighted by its node mask:
    `mask * output + (1 - mask) * ablated` enters the one residual stream that every block reads.

    node_mask: None (every node kept), [n_nodes] or [B, n_nodes] in graph.nodes order (the
        `logits` entry is ignored); may be continuous and carry gradients (subnetwork probing,
        head importance).
    ablated: what a removed node carries, [W, B or 1, S, D] per writer (`ablated_outputs`);
        None means zero. With every mask at 1 this is the plain model, bit for bit.
    """
    graph = graph_of(model)
    ctx = run_context(model, tokens, attention_mask)
    rows = None if node_mask is None else (node_mask if node_mask.dim() == 2
                                           else node_mask.unsqueeze(0))

    def replaced(w: int, out: torch.Tensor) -> torch.Tensor:
        if rows is None:
            return out
        m = rows[:, w].to(out.dtype).view(-1, 1, 1)
        kept = m * out
        return kept if ablated is None else kept + (1 - m) * ablated[w]

    writers = [replaced(w, out) for w, out in enumerate(model.embed(tokens))]
    resid, n_summed = None, 0
    for group in graph.groups:
        for w in range(n_summed, group.n_writers_before):
            resid = writers[w] if resid is None else resid + writers[w]
        n_summed = group.n_writers_before
        x = resid.unsqueeze(0).expand(len(group.ports), -1, -1, -1)
        if group.kind == "logits":
            return model.unembed(x[0], **ctx)
        new = _block(model, group, x, ctx)
        first = len(writers)
        writers.extend([replaced(first + i, out) for i, out in enumerate(new)])
    raise AssertionError("graph has no logits group")
