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
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.graph.circuit import Recording, ablated_outputs, graph_of, run_circuit
from benchmark.graph.metrics import changed_examples


class GroundTruthError(AssertionError):
    pass


@dataclass(frozen=True)
class Readout:
    """How answers are compared: output kind, numerical tolerance, None positions skipped."""
    kind: str
    atol: float
    partial: bool = False


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


def necessary_edges(model, candidates, tokens, ablated, readout) -> frozenset[str]:
    """Candidates whose single ablation (from the full model) changes some answer."""
    graph = graph_of(model)
    cache = Recording()
    with torch.no_grad():
        full = run_circuit(model, tokens, record=cache)
    ones = torch.ones(graph.n_edges)
    kept = []
    for edge in sorted(candidates, key=graph.edge_to_index.get):
        mask = ones.clone()
        mask[graph.edge_to_index[edge]] = 0.0
        # only the edge's reader and what follows it change: reuse the rest of the full run
        if _changes(model, readout, tokens, ablated, full, mask, cache,
                    graph.group_of_edge(edge)):
            kept.append(edge)
    return frozenset(kept)


def _dropping_changes(model, kept, edge, tokens, ablated, readout, full, cache) -> bool:
    """Does removing `edge` from the circuit `kept` (whose run is cached) change an answer?"""
    graph = graph_of(model)
    mask = graph.mask_from_edges(kept - {edge})
    return _changes(model, readout, tokens, ablated, full, mask, cache,
                    graph.group_of_edge(edge))


def _circuit_run(model, kept, tokens, ablated) -> Recording:
    cache = Recording()
    with torch.no_grad():
        run_circuit(model, tokens, graph_of(model).mask_from_edges(kept), ablated, record=cache)
    return cache


def prune_to_necessary(model, edges, tokens, ablated, readout) -> tuple[frozenset, list]:
    """Drop edges that are not necessary within the circuit, latest reader first."""
    graph = graph_of(model)
    with torch.no_grad():
        full = run_circuit(model, tokens)
    kept, pruned = set(edges), []
    cache = _circuit_run(model, kept, tokens, ablated)
    for edge in sorted(edges, key=graph.edge_to_index.get, reverse=True):
        if not _dropping_changes(model, kept, edge, tokens, ablated, readout, full, cache):
            kept.discard(edge)
            pruned.append(edge)
            cache = _circuit_run(model, kept, tokens, ablated)
    return frozenset(kept), pruned


def _sufficient(model, edges, tokens, ablated, readout) -> bool:
    with torch.no_grad():
        full = run_circuit(model, tokens)
    return not _changes(model, readout, tokens, ablated, full,
                        graph_of(model).mask_from_edges(edges))


def _irreducible(model, structural, tokens, ablated, readout) -> tuple[frozenset, list]:
    """Prune `edges` pass after pass until no edge can go (one pass can leave an edge that a
    later drop made redundant: seen on a compressed sort_unique). From the structural set, where
    the edges that matter alone do not suffice together (a model in superposition spreads one
    value over many edges, none necessary alone), it is sufficient by construction."""
    kept, pruned = frozenset(structural), []
    while True:
        kept, dropped = prune_to_necessary(model, kept, tokens, ablated, readout)
        pruned += dropped
        if not dropped:
            return kept, pruned


def validate(model, edges, tokens, ablated, readout, name, check_necessary: bool) -> None:
    graph = graph_of(model)
    with torch.no_grad():
        full = run_circuit(model, tokens)
    if _changes(model, readout, tokens, ablated, full, graph.mask_from_edges(edges)):
        raise GroundTruthError(f"{name} ground truth ({len(edges)} edges) is not sufficient: "
                               "keeping only its edges changes the model's answers")
    if check_necessary:
        kept = set(edges)
        cache = _circuit_run(model, kept, tokens, ablated)
        for edge in edges:
            if not _dropping_changes(model, kept, edge, tokens, ablated, readout, full, cache):
                raise GroundTruthError(f"{name} ground truth: edge {edge} is not necessary "
                                       "(dropping it from the circuit changes no answer)")


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
    result, pruned = {"structural": structural}, {}
    derived_by = {"zero": "single-edge necessity", "resample": "single-edge necessity"}
    for name, inputs, ablated in (("zero", tokens, None), ("resample", clean, resampled)):
        edges = necessary_edges(model, structural, inputs, ablated, readout)
        edges, pruned[name] = _irreducible(model, edges, inputs, ablated, readout)
        if not _sufficient(model, edges, inputs, ablated, readout):
            edges, pruned[name] = _irreducible(model, structural, inputs, ablated, readout)
            derived_by[name] = "pruned from structural"
        validate(model, edges, inputs, ablated, readout, name, check_necessary=True)
        result[name] = edges
    order = graph.edge_to_index.get
    out = {name: sorted(edges, key=order) for name, edges in result.items()}
    out["pruned_as_redundant"] = {k: sorted(v, key=order) for k, v in pruned.items()}
    if set(derived_by.values()) != {"single-edge necessity"}:  # compiled tasks: unchanged
        out["derived_by"] = derived_by
    return out
