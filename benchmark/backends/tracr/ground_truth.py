"""Ground-truth circuits derived from compiled weights, in three named conventions.

- structural: a writer feeds a reader port when the residual dims it writes (non-zero output
  columns) overlap the dims the port reads (non-zero input rows); tracr's `one` bias direction
  counts like any other.
- zero: the structural edges whose zero-ablation alone changes some non-BOS answer.
- resample: the same under resample ablation over clean/corrupted pairs.

Where the single-edge-necessary edges are not sufficient together (a compressed model, whose
values are spread over many edges), the set is instead pruned from the structural edges until
every remaining edge is necessary, and `derived_by` says so.

Where single-edge necessity is not enough (an edge matters alone but becomes redundant once other
edges are gone, as in tracr's shuffle_dyck), the set is pruned greedily, latest reader first,
until every remaining edge is necessary; the pruned edges are reported, not hidden.

Every convention is validated when built: keeping only its edges reproduces the full model's
answers under the matching ablation and, for zero and resample, dropping any one of its edges
changes them. A failure raises GroundTruthError, never a silently wrong ground truth.

The machinery works on `Units`: edges, or nodes (writers; dropping one ablates all its outgoing
edges, `edge_mask_of_nodes`), which node_truth.py derives node-level ground truth with.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.graph.circuit import Recording, ablated_outputs, graph_of, run_circuit
from benchmark.graph.graph import Graph
from benchmark.graph.metrics import changed_examples
from benchmark.graph.nodes import edge_mask_of_nodes, node_mask_from_nodes


class GroundTruthError(AssertionError):
    pass


@dataclass(frozen=True)
class Readout:
    """How answers are compared: output kind, numerical tolerance, None positions skipped."""
    kind: str
    atol: float
    partial: bool = False


@dataclass(frozen=True)
class Units:
    """What a circuit keeps or drops: edges (level "edge"), or writers (level "node": dropping
    a node replaces its output in every reader, the node-masked forward). Every run is an edge
    mask: a node set's is `edge_mask_of_nodes` of it, the same forward bit for bit."""
    graph: Graph
    level: str = "edge"

    def _edge_mask(self, unit_mask: torch.Tensor) -> torch.Tensor:
        return unit_mask if self.level == "edge" else edge_mask_of_nodes(self.graph, unit_mask)

    def mask(self, kept) -> torch.Tensor:
        """The edge mask of the circuit that keeps exactly `kept`."""
        if self.level == "edge":
            return self.graph.mask_from_edges(kept)
        return self._edge_mask(node_mask_from_nodes(self.graph, kept))

    def all_but(self, unit: str) -> torch.Tensor:
        """The edge mask of the full model less `unit`."""
        index = self.graph.edge_to_index if self.level == "edge" else self.graph.node_to_index
        mask = torch.ones(len(index))
        mask[index[unit]] = 0.0
        return self._edge_mask(mask)

    def order(self, unit: str) -> int:
        return (self.graph.edge_to_index if self.level == "edge"
                else self.graph.writer_to_index)[unit]

    def group(self, unit: str) -> int:
        """The first reader group that dropping `unit` changes: runs reuse what precedes it."""
        edge = unit if self.level == "edge" else self.graph.edges[self.graph.outgoing(unit)[0]]
        return self.graph.group_of_edge(edge)


def units_of(model, level: str = "edge") -> Units:
    return Units(graph_of(model), level)


def structural_edges(model) -> frozenset[str]:
    graph = graph_of(model)
    writes = {w: model.write_dims(w) for w in graph.writers}
    kept = []
    for edge in graph.edges:
        writer, port = edge.split("->")
        if writes[writer] & model.read_dims(port):
            kept.append(edge)
    return frozenset(kept)


FIRST_ROWS = 256  # rows of the first slice `_changes` runs; each next slice is twice as long


def _row_slices(n: int):
    lo, size = 0, FIRST_ROWS
    while lo < n:
        yield slice(lo, min(n, lo + size))
        lo, size = lo + size, size * 2


def _rows(ablated, rows: slice):
    """The rows of a [W, B or 1, S, D] ablation (one row serves every example)."""
    return ablated if ablated is None or ablated.shape[1] == 1 else ablated[:, rows]


def _changes(model, readout, tokens, ablated, full, mask, start=None, group=0) -> bool:
    """Does the circuit `mask` change some answer? Run on growing slices of the examples and
    stop at the first change: an edge that matters usually shows it in the first slice, so
    necessity checks cost a fraction of a pass (sort_large's derivation: 36 -> 15 s). Each
    example's output does not depend on the others in its batch, so the answer is that of one
    pass over all of them."""
    with torch.no_grad():
        for rows in _row_slices(len(tokens)):
            part = None if start is None else start.rows(rows)
            rows_mask = mask[rows] if mask is not None and mask.dim() == 2 else mask
            out = run_circuit(model, tokens[rows], rows_mask, _rows(ablated, rows), start=part,
                              start_group=group)
            if changed_examples(full[rows], out, readout.kind, readout.atol,
                                readout.partial).any():
                return True
    return False


def necessary_edges(model, candidates, tokens, ablated, readout,
                    units: Units | None = None) -> frozenset[str]:
    """Candidates (edges, or nodes with node `units`) whose single ablation (from the full
    model) changes some answer."""
    units = units or units_of(model)
    cache = Recording()
    with torch.no_grad():
        full = run_circuit(model, tokens, record=cache)
    kept = []
    for unit in sorted(candidates, key=units.order):
        # only the unit's readers and what follows them change: reuse the rest of the full run
        if _changes(model, readout, tokens, ablated, full, units.all_but(unit), cache,
                    units.group(unit)):
            kept.append(unit)
    return frozenset(kept)


def _dropping_changes(model, kept, unit, tokens, ablated, readout, full, cache,
                      units: Units) -> bool:
    """Does removing `unit` from the circuit `kept` (whose run is cached) change an answer?"""
    return _changes(model, readout, tokens, ablated, full, units.mask(kept - {unit}), cache,
                    units.group(unit))


def _circuit_run(model, kept, tokens, ablated, units: Units) -> Recording:
    cache = Recording()
    with torch.no_grad():
        run_circuit(model, tokens, units.mask(kept), ablated, record=cache)
    return cache


def prune_to_necessary(model, edges, tokens, ablated, readout,
                       units: Units | None = None) -> tuple[frozenset, list]:
    """Drop edges (nodes) that are not necessary within the circuit, latest reader first."""
    units = units or units_of(model)
    with torch.no_grad():
        full = run_circuit(model, tokens)
    kept, pruned = set(edges), []
    cache = _circuit_run(model, kept, tokens, ablated, units)
    for unit in sorted(edges, key=units.order, reverse=True):
        if not _dropping_changes(model, kept, unit, tokens, ablated, readout, full, cache, units):
            kept.discard(unit)
            pruned.append(unit)
            cache = _circuit_run(model, kept, tokens, ablated, units)
    return frozenset(kept), pruned


def _sufficient(model, edges, tokens, ablated, readout, units: Units) -> bool:
    with torch.no_grad():
        full = run_circuit(model, tokens)
    return not _changes(model, readout, tokens, ablated, full, units.mask(edges))


def _irreducible(model, structural, tokens, ablated, readout,
                 units: Units) -> tuple[frozenset, list]:
    """Prune `edges` pass after pass until no edge can go (one pass can leave an edge that a
    later drop made redundant: seen on a compressed sort_unique). From the structural set, where
    the edges that matter alone do not suffice together (a model in superposition spreads one
    value over many edges, none necessary alone), it is sufficient by construction."""
    kept, pruned = frozenset(structural), []
    while True:
        kept, dropped = prune_to_necessary(model, kept, tokens, ablated, readout, units)
        pruned += dropped
        if not dropped:
            return kept, pruned


def validate(model, edges, tokens, ablated, readout, name, check_necessary: bool,
             units: Units | None = None) -> None:
    units = units or units_of(model)
    noun = units.level
    with torch.no_grad():
        full = run_circuit(model, tokens)
    if _changes(model, readout, tokens, ablated, full, units.mask(edges)):
        raise GroundTruthError(f"{name} ground truth ({len(edges)} {noun}s) is not sufficient: "
                               f"keeping only its {noun}s changes the model's answers")
    if check_necessary:
        kept = set(edges)
        cache = _circuit_run(model, kept, tokens, ablated, units)
        for unit in edges:
            if not _dropping_changes(model, kept, unit, tokens, ablated, readout, full, cache,
                                     units):
                raise GroundTruthError(f"{name} ground truth: {noun} {unit} is not necessary "
                                       "(dropping it from the circuit changes no answer)")


def derive_by_ablation(model, candidates, tokens, ablated, readout, name: str,
                       units: Units | None = None, source: str = "structural"):
    """(circuit, pruned, derived_by) under one ablation: the candidates whose single ablation
    changes an answer, pruned until each is necessary; where those do not suffice together,
    pruned from all the candidates (`source`) instead. Validated: raises GroundTruthError."""
    units = units or units_of(model)
    kept = necessary_edges(model, candidates, tokens, ablated, readout, units)
    kept, pruned = _irreducible(model, kept, tokens, ablated, readout, units)
    how = f"single-{units.level} necessity"
    if not _sufficient(model, kept, tokens, ablated, readout, units):
        kept, pruned = _irreducible(model, candidates, tokens, ablated, readout, units)
        how = f"pruned from {source}"
    validate(model, kept, tokens, ablated, readout, name, check_necessary=True, units=units)
    return kept, pruned, how


def derive_ground_truth(model, tokens: torch.Tensor, clean: torch.Tensor,
                        corrupted: torch.Tensor, kind: str, atol: float,
                        partial: bool = False) -> dict:
    """All three conventions, validated, plus the edges pruned for redundancy (usually none).
    `tokens`: the task's inputs; (clean, corrupted): the pairs that define resample ablation;
    `partial`: the program is undefined at some positions, which then never count as changed."""
    graph = graph_of(model)
    readout = Readout(kind, atol, partial)
    structural = structural_edges(model)
    validate(model, structural, tokens, None, readout, "structural", check_necessary=False)
    with torch.no_grad():
        resampled = ablated_outputs(model, "resample", clean, corrupted)
    result, pruned, derived_by = {"structural": structural}, {}, {}
    for name, inputs, ablated in (("zero", tokens, None), ("resample", clean, resampled)):
        result[name], pruned[name], derived_by[name] = derive_by_ablation(
            model, structural, inputs, ablated, readout, name)
    order = graph.edge_to_index.get
    out = {name: sorted(edges, key=order) for name, edges in result.items()}
    out["pruned_as_redundant"] = {k: sorted(v, key=order) for k, v in pruned.items()}
    if set(derived_by.values()) != {"single-edge necessity"}:  # compiled tasks: unchanged
        out["derived_by"] = derived_by
    return out
