"""ACDC (Conmy et al. 2023): greedy edge pruning against a KL (or MSE) threshold.

Readers are visited in reverse topological order from the logits; each incoming edge is ablated
and stays removed if the metric (distance to the full model on the discovery split) rises by less
than `threshold` over the current circuit's. Only the edge's reader and what follows it are
recomputed: the current circuit's earlier writer outputs are reused. A node whose outputs were all
removed cannot matter, so its incoming edges go without a test.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.circuit import Recording
from benchmark.protocol import Adapter, Discovery, Problem


class ACDC(Adapter):
    name = "acdc"
    version = "1"
    output = "circuit"

    @dataclass(frozen=True)
    class Params:
        threshold: float = 0.01

    @torch.no_grad()
    def discover(self, problem: Problem, params) -> Discovery:
        graph, data = problem.graph, problem.data
        ablated = problem.ablated(data)
        full = problem.forward(data.clean)
        mask = torch.ones(graph.n_edges, device=problem.device)
        cache = Recording(keep_inputs=False)
        current = float(problem.metric(full, problem.forward(data.clean, mask, ablated,
                                                             record=cache)))
        tested = 0
        for g in reversed(range(len(graph.groups))):
            group = graph.groups[g]
            for p in reversed(range(len(group.ports))):
                port_edges = group.edge_index[:, p].tolist()
                if not _has_outputs(graph, mask, group.ports[p]):
                    mask[port_edges] = 0.0
                    continue
                for e in reversed(port_edges):
                    mask[e] = 0.0
                    rec = Recording(keep_inputs=False)
                    out = problem.forward(data.clean, mask, ablated, record=rec, start=cache,
                                          start_group=g)
                    new = float(problem.metric(full, out))
                    tested += 1
                    if new - current < params.threshold:
                        current, cache = new, rec
                    else:
                        mask[e] = 1.0
        circuit = graph.edges_from_mask(mask)
        return Discovery("circuit", circuit=circuit,
                         info={"final_metric": current, "edges_tested": tested,
                               "sparsity_reached": 1 - len(circuit) / graph.n_edges})


def _has_outputs(graph, mask, port: str) -> bool:
    """Is the node owning `port` still read by a kept edge? (logits always is.)"""
    if port == "logits":
        return True
    node = port.split("<")[0]
    return bool(mask[graph.outgoing(node)].any())


ADAPTER = ACDC
