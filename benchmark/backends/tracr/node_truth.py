"""Node-level ground truth: the writers a circuit keeps (`tok_embeds`, `pos_embeds`, `a{l}.h{h}`,
`m{l}`; `logits` is always kept and never listed), in the edge level's named conventions and
derived the same way, by node ablation (ground_truth.py's machinery on node `Units`):

- structural: the writers of the structural edges (they write something some port reads);
  validated sufficient under zero node ablation.
- zero / resample: the writers whose single node ablation changes some non-BOS answer (on the
  task's inputs / clean-corrupted pairs), pruned until each is necessary; where those do not
  suffice together, pruned from the structural nodes instead (`derived_by` says so). Validated:
  sufficient under the matching node ablation, and dropping any one node changes an answer.

The relation to the edge level is recorded per convention: the writers of the edge ground truth
against the node ground truth. They can differ: a writer whose single edge matters can be
harmless to drop whole (its other edges compensate), and a node circuit keeps every edge between
its nodes, so it may need fewer (or other) writers than the edge circuit touches.
"""
from __future__ import annotations

import torch

from benchmark.backends.tracr.ground_truth import (
    GroundTruthError,
    Readout,
    derive_by_ablation,
    structural_edges,
    units_of,
    validate,
)
from benchmark.graph.circuit import ablated_outputs, graph_of
from benchmark.graph.nodes import nodes_of_edges

NO_STRUCTURE = ("a trained model: every writer writes every residual dim, so no writer is "
                "structurally idle")


def structural_nodes(model) -> frozenset[str]:
    """The writers of the structural edges: those that write something some port reads."""
    return nodes_of_edges(graph_of(model), structural_edges(model))


def derive_node_truth(model, tokens: torch.Tensor, clean: torch.Tensor,
                      corrupted: torch.Tensor, kind: str, atol: float, partial: bool = False,
                      *, trained: bool = False) -> dict:
    """{"node_ground_truth": {convention: writers in graph order}, "node_ground_truth_derivation":
    {pruned_as_redundant, derived_by where not single-node necessity, missing: {convention: why}}}.

    Compiled weights: all three conventions, a failure raises GroundTruthError. `trained` (a
    planted model): no structural convention, zero and resample derived from every writer and
    kept only if they validate; a missing one says why."""
    units = units_of(model, "node")
    graph = units.graph
    readout = Readout(kind, atol, partial)
    truth, pruned, derived_by, missing = {}, {}, {}, {}
    if trained:
        candidates, source = frozenset(graph.writers), "every writer"
        missing["structural"] = NO_STRUCTURE
    else:
        candidates, source = structural_nodes(model), "structural"
        validate(model, candidates, tokens, None, readout, "node structural",
                 check_necessary=False, units=units)
        truth["structural"] = candidates
    with torch.no_grad():
        resampled = ablated_outputs(model, "resample", clean, corrupted)
    for name, inputs, ablated in (("zero", tokens, None), ("resample", clean, resampled)):
        try:
            truth[name], pruned[name], how = derive_by_ablation(
                model, candidates, inputs, ablated, readout, f"node {name}", units, source)
        except GroundTruthError as err:
            if not trained:
                raise
            missing[name] = str(err)
            continue
        if how != "single-node necessity":
            derived_by[name] = how
    order = units.order
    derivation = {"pruned_as_redundant": {k: sorted(v, key=order) for k, v in pruned.items()}}
    if derived_by:
        derivation["derived_by"] = derived_by
    if missing:
        derivation["missing"] = missing
    return {"node_ground_truth": {k: sorted(v, key=order) for k, v in truth.items()},
            "node_ground_truth_derivation": derivation}


def node_edge_relation(graph, edge_truth: dict, node_truth: dict) -> dict:
    """Per node convention: the writers of the same convention's edge ground truth against its
    node ground truth. `edge_truth` is meta["ground_truth"]: a convention the task lacks at the
    edge level (a planted model's structural or zero) is absent from it."""
    out = {}
    for name, nodes in node_truth.items():
        if name not in edge_truth:
            out[name] = {"relation": "no edge-level ground truth"}
            continue
        writers, nodes = nodes_of_edges(graph, edge_truth[name]), frozenset(nodes)
        order = graph.writer_to_index.get
        out[name] = {"relation": "equal" if writers == nodes else "differs",
                     "edge_writers": len(writers), "nodes": len(nodes),
                     "edge_writers_only": sorted(writers - nodes, key=order),
                     "nodes_only": sorted(nodes - writers, key=order)}
    return out


def node_truth_meta(model, edge_truth: dict, tokens, clean, corrupted, kind: str, atol: float,
                    partial: bool = False, *, trained: bool = False) -> dict:
    """The meta entries of a task's node-level ground truth, with its relation to the edge
    ground truth `edge_truth` (meta["ground_truth"])."""
    meta = derive_node_truth(model, tokens, clean, corrupted, kind, atol, partial,
                             trained=trained)
    meta["node_ground_truth_relation"] = node_edge_relation(
        graph_of(model), edge_truth, meta["node_ground_truth"])
    return meta


def validate_nodes(model, node_truth: dict, tokens, resampled, readout, name: str) -> list:
    """Each node convention's sufficiency on other inputs (the build's fresh-input check): zero
    and structural on `tokens`, resample with `resampled`. The conventions checked."""
    units = units_of(model, "node")
    for convention, nodes in node_truth.items():
        ablated = resampled if convention == "resample" else None
        validate(model, frozenset(nodes), tokens, ablated, readout, f"node {convention} {name}",
                 check_necessary=False, units=units)
    return list(node_truth)
