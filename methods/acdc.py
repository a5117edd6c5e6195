"""ACDC (Conmy et al. 2023): greedy edge pruning against a KL (or MSE) threshold.

Readers are visited in reverse topological order from the logits; each incoming edge is ablated
and stays removed if the metric (distance to the full model on the discovery split) rises by less
than `threshold` over the current circuit's. A node whose outputs were all removed cannot matter,
so its incoming edges go without a test.

Speed: testing an edge changes one reader's input by (ablated - clean) of one writer. Only that
reader's node and the nodes that read a changed node through a kept edge are recomputed, each
from the current circuit's cached inputs plus the change. Late in the search, when most edges
are gone, a test touches a handful of nodes instead of the whole model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.protocol import Adapter, Discovery, Problem, Recording, param


class ACDC(Adapter):
    name = "acdc"
    version = "2"
    output = "circuit"

    @dataclass(frozen=True)
    class Params:
        threshold: float = param(0.01, minimum=0)

    @torch.no_grad()
    def discover(self, problem: Problem, params) -> Discovery:
        graph, data = problem.graph, problem.data
        ablated = problem.ablated(data)
        full = problem.forward(data.clean)
        mask = torch.ones(graph.n_edges, device=problem.device)
        rec = Recording()
        out = problem.forward(data.clean, mask, ablated, record=rec)
        state = _CircuitRun(problem.model, graph, rec.writers, rec.group_inputs, out, ablated,
                            rec.context)
        current = float(problem.metric(full, out))
        tested = 0
        for g in reversed(range(len(graph.groups))):
            group = graph.groups[g]
            for p in reversed(range(len(group.ports))):
                port_edges = group.edge_index[:, p].tolist()
                if not _has_outputs(graph, mask, group.ports[p]):
                    mask[port_edges] = 0.0
                    continue
                for w in reversed(range(group.n_writers_before)):
                    e = port_edges[w]
                    mask[e] = 0.0
                    trial = state.without_edge(mask, g, p, w)
                    problem.count_forward(len(data))
                    new = float(problem.metric(full, trial.out))
                    tested += 1
                    if new - current < params.threshold:
                        current = new
                        state.accept(trial)
                    else:
                        mask[e] = 1.0
        circuit = graph.edges_from_mask(mask)
        return Discovery("circuit", circuit=circuit,
                         info={"final_metric": current, "edges_tested": tested,
                               "sparsity_reached": 1 - len(circuit) / graph.n_edges})


@dataclass
class _Trial:
    writers: dict  # writer index -> new output [B, S, D]
    inputs: dict   # group index -> new input [P, B, S, D]
    out: torch.Tensor


class _CircuitRun:
    """The current circuit's writer outputs and reader inputs, updated edge by edge."""

    def __init__(self, model, graph, writers, inputs, out, ablated, context):
        self.model, self.graph, self.context = model, graph, context  # the batch's padding etc.
        self.writers, self.inputs, self.out = list(writers), list(inputs), out
        self.ablated = ablated

    def without_edge(self, mask, g: int, port: int, writer: int) -> _Trial:
        """The run with edge (writer -> port of group g) ablated; mask already has it at 0."""
        x = self.inputs[g].clone()
        removed = self.writers[writer]
        x[port] -= removed
        if self.ablated is not None:
            x[port] += self.ablated[writer]
        trial = _Trial({}, {g: x}, self.out)
        self._run_group(trial, g, x, changed_ports={port})
        for g2 in range(g + 1, len(self.graph.groups)):
            group = self.graph.groups[g2]
            dirty = [d for d in trial.writers if d < group.n_writers_before]
            coeff = mask[group.edge_index[dirty]] if dirty else None  # [k, P]
            if coeff is None or not bool(coeff.any()):
                continue
            diff = torch.stack([trial.writers[d] - self.writers[d] for d in dirty])
            x2 = self.inputs[g2] + torch.einsum("kp,kbsd->pbsd", coeff, diff)
            trial.inputs[g2] = x2
            changed = set(torch.nonzero(coeff.any(0)).flatten().tolist())
            self._run_group(trial, g2, x2, changed)
        return trial

    def _run_group(self, trial: _Trial, g: int, x: torch.Tensor, changed_ports: set) -> None:
        group, model = self.graph.groups[g], self.model
        if group.kind == "logits":
            trial.out = model.unembed(x[0], **self.context)
        elif group.kind == "mlp":
            trial.writers[group.n_writers_before] = model.mlp(group.layer, x[0])
        else:
            h, _, b, s, d = model.n_heads, 3, *x.shape[1:]
            qkv = x.view(h, 3, b, s, d)
            heads = model.attention(group.layer, qkv[:, 0], qkv[:, 1], qkv[:, 2], **self.context)
            for head in sorted({p // 3 for p in changed_ports}):
                trial.writers[group.n_writers_before + head] = heads[head]

    def accept(self, trial: _Trial) -> None:
        for w, value in trial.writers.items():
            self.writers[w] = value
        for g, value in trial.inputs.items():
            self.inputs[g] = value
        self.out = trial.out


def _has_outputs(graph, mask, port: str) -> bool:
    """Is the node owning `port` still read by a kept edge? (logits always is.)"""
    if port == "logits":
        return True
    node = port.split("<")[0]
    return bool(mask[graph.outgoing(node)].any())


ADAPTER = ACDC
