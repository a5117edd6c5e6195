"""Ground-truth circuits derived from compiled weights, in three named conventions.

- structural: a writer feeds a reader port when the residual dims it writes (non-zero output
  columns) overlap the dims the port reads (non-zero input rows); tracr's `one` bias direction
  counts like any other.
- zero: the structural edges whose zero-ablation alone changes some non-BOS answer.
- resample: the same under resample ablation over clean/corrupted pairs.

Every convention is validated when built: keeping only its edges reproduces the full model's
answers under the matching ablation and, for zero and resample, dropping any one of its edges
changes them. A failure raises GroundTruthError, never a silently wrong ground truth.
"""
from __future__ import annotations

import torch

from benchmark.circuit import ablated_outputs, graph_of, run_circuit
from benchmark.metrics import changed_examples

CONVENTIONS = ("structural", "zero", "resample")


class GroundTruthError(AssertionError):
    pass


def structural_edges(model) -> frozenset[str]:
    graph = graph_of(model)
    writes = {w: model.write_dims(w) for w in graph.writers}
    kept = []
    for edge in graph.edges:
        writer, port = edge.split("->")
        if writes[writer] & model.read_dims(port):
            kept.append(edge)
    return frozenset(kept)


def _changes(model, kind, atol, tokens, ablated, full, mask) -> bool:
    with torch.no_grad():
        out = run_circuit(model, tokens, mask, ablated)
    return bool(changed_examples(full, out, kind, atol).any())


def necessary_edges(model, candidates, tokens, ablated, kind, atol) -> frozenset[str]:
    """Candidates whose single ablation (from the full model) changes some answer."""
    graph = graph_of(model)
    with torch.no_grad():
        full = run_circuit(model, tokens)
    ones = torch.ones(graph.n_edges)
    kept = []
    for edge in sorted(candidates, key=graph.edge_to_index.get):
        mask = ones.clone()
        mask[graph.edge_to_index[edge]] = 0.0
        if _changes(model, kind, atol, tokens, ablated, full, mask):
            kept.append(edge)
    return frozenset(kept)


def validate(model, edges, tokens, ablated, kind, atol, name, check_necessary: bool) -> None:
    graph = graph_of(model)
    with torch.no_grad():
        full = run_circuit(model, tokens)
    mask = graph.mask_from_edges(edges)
    if _changes(model, kind, atol, tokens, ablated, full, mask):
        raise GroundTruthError(f"{name} ground truth ({len(edges)} edges) is not sufficient: "
                               "keeping only its edges changes the model's answers")
    if check_necessary:
        for edge in edges:
            m = mask.clone()
            m[graph.edge_to_index[edge]] = 0.0
            if not _changes(model, kind, atol, tokens, ablated, full, m):
                raise GroundTruthError(f"{name} ground truth: edge {edge} is not necessary "
                                       "(dropping it from the circuit changes no answer)")


def derive_ground_truth(model, tokens: torch.Tensor, clean: torch.Tensor,
                        corrupted: torch.Tensor, kind: str, atol: float) -> dict[str, list[str]]:
    """All three conventions, validated. `tokens`: the task's inputs; (clean, corrupted): the
    pairs that define resample ablation."""
    graph = graph_of(model)
    structural = structural_edges(model)
    validate(model, structural, tokens, None, kind, atol, "structural", check_necessary=False)
    zero = necessary_edges(model, structural, tokens, None, kind, atol)
    validate(model, zero, tokens, None, kind, atol, "zero", check_necessary=True)
    with torch.no_grad():
        resampled = ablated_outputs(model, "resample", clean, corrupted)
    resample = necessary_edges(model, structural, clean, resampled, kind, atol)
    validate(model, resample, clean, resampled, kind, atol, "resample", check_necessary=True)
    order = graph.edge_to_index.get
    return {name: sorted(edges, key=order) for name, edges in
            (("structural", structural), ("zero", zero), ("resample", resample))}
