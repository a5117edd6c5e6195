"""The computational graph shared by every method: Edge Pruning's disentangled residual stream.

Writers are the model's input writers (tracr: token and position embeddings; a transformers LM:
one `input`), every head and every MLP; readers are each head's query, key and value input, each
MLP input and the logits. An edge joins a writer to every reader that comes after it (heads of
one layer run in parallel). Edge ids are stable strings such as
`tok_embeds->a0.h0<q>`; the canonical edge order (readers in topological order, writers in
topological order within a reader) is the order of every mask and score vector.
Nodes are the writers and the logits (`tok_embeds`, `a0.h0`, `m0`, ..., `logits`; a head's node
owns its three ports `a0.h0<q>`, `<k>`, `<v>`), in topological order: the order of node-level
score vectors (benchmark.protocol.Discovery, level "node").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

QKV = ("q", "k", "v")
# tracr's two embedding writers; a model names its own in `input_writers` (the LM backend: "input")
INPUT_WRITERS = ("tok_embeds", "pos_embeds")
# what a discovery scores or keeps: edges (the default) or nodes
LEVELS = ("edge", "node")


@dataclass(frozen=True)
class ReaderGroup:
    """Readers computed together: the q/k/v ports of one attention layer, one MLP, or logits.

    `edge_index[w, p]` is the position in `Graph.edges` of the edge from writer w to port p
    (every writer before `n_writers_before` feeds every port of the group).
    """

    kind: str  # "attn", "mlp" or "logits"
    layer: int
    ports: tuple[str, ...]
    n_writers_before: int
    edge_index: torch.Tensor = field(compare=False)


class Graph:
    def __init__(self, n_layers: int, n_heads: int, input_writers: tuple = INPUT_WRITERS):
        self.n_layers, self.n_heads = n_layers, n_heads
        self.input_writers = tuple(input_writers)  # the writers `model.embed` returns, in order
        self.writers: list[str] = list(self.input_writers)
        self.groups: list[ReaderGroup] = []
        self.edges: list[str] = []
        for layer in range(n_layers):
            heads = [f"a{layer}.h{h}" for h in range(n_heads)]
            self._add_group("attn", layer, tuple(f"{hd}<{x}>" for hd in heads for x in QKV))
            self.writers.extend(heads)
            self._add_group("mlp", layer, (f"m{layer}",))
            self.writers.append(f"m{layer}")
        self._add_group("logits", n_layers, ("logits",))
        self.readers: list[str] = [p for g in self.groups for p in g.ports]
        self.nodes: list[str] = [*self.writers, "logits"]
        self.node_to_index = {n: i for i, n in enumerate(self.nodes)}
        self.edge_to_index = {e: i for i, e in enumerate(self.edges)}
        self.writer_to_index = {w: i for i, w in enumerate(self.writers)}
        self._edge_group = [g for g, group in enumerate(self.groups)
                            for _ in range(group.edge_index.numel())]
        self._outgoing: dict[str, list[int]] = {w: [] for w in self.writers}
        for i, e in enumerate(self.edges):
            self._outgoing[e.split("->")[0]].append(i)

    def _add_group(self, kind, layer, ports):
        n = len(self.writers)
        index = torch.empty(n, len(ports), dtype=torch.long)
        for p, port in enumerate(ports):
            for w, writer in enumerate(self.writers):
                index[w, p] = len(self.edges)
                self.edges.append(f"{writer}->{port}")
        self.groups.append(ReaderGroup(kind, layer, ports, n, index))

    @classmethod
    def for_model(cls, model) -> "Graph":
        return cls(model.n_layers, model.n_heads,
                   getattr(model, "input_writers", INPUT_WRITERS))

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    def units(self, level: str = "edge") -> list[str]:
        """The edges or the nodes, in canonical order: what a score vector of `level` covers."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {list(LEVELS)}, got {level!r}")
        return self.edges if level == "edge" else self.nodes

    @staticmethod
    def node_of(reader: str) -> str:
        """The node a reader port belongs to: `a0.h0<q>` -> `a0.h0`; `m0` and `logits` are
        their own."""
        return reader.split("<")[0]

    def mask_from_edges(self, kept, dtype=torch.float32) -> torch.Tensor:
        """A 0/1 mask vector in canonical order from a collection of edge ids."""
        mask = torch.zeros(self.n_edges, dtype=dtype)
        unknown = [e for e in kept if e not in self.edge_to_index]
        if unknown:
            raise KeyError(f"edges not in this graph: {sorted(unknown)[:5]} (ids look like "
                           f"{self.edges[0]!r})")
        for e in kept:
            mask[self.edge_to_index[e]] = 1.0
        return mask

    def edges_from_mask(self, mask, threshold: float = 0.5) -> frozenset[str]:
        return frozenset(e for e, m in zip(self.edges, mask.tolist()) if m > threshold)

    def group_of_edge(self, edge: str) -> int:
        """The index of the reader group an edge feeds (groups are in topological order)."""
        return self._edge_group[self.edge_to_index[edge]]

    def outgoing(self, writer: str) -> list[int]:
        """Indices of the edges a writer feeds."""
        return self._outgoing[writer]

    @staticmethod
    def split(edge: str) -> tuple[str, str]:
        writer, reader = edge.split("->")
        return writer, reader
