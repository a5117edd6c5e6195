"""The build step of a compressed task: train W, derive the ground truth on the compressed model
and say how it relates to the compiled model's.

The structural convention reads residual dims: in a compressed model every writer that writes
anything overlaps every reader that reads anything (W mixes all dims), so there structural is
every edge between non-empty blocks, and zero and resample are found among those by necessity
on the compressed model itself. What the compression changed is recorded per convention (edges
added and removed against the compiled ground truth) with the interference: the strongest
single edge outside the ground truth (mean KL(full || that edge ablated), MSE for numerical
tasks) next to the weakest edge inside it, for both models. The node-level ground truth
(node_truth.py) is derived on the compressed model too, its change against the compiled model's
recorded likewise.
"""
from __future__ import annotations

import time

import torch

from benchmark.backends.tracr.compress import CompressionError, train_compression, with_compression
from benchmark.backends.tracr.ground_truth import derive_ground_truth
from benchmark.backends.tracr.model import TracrTransformer
from benchmark.backends.tracr.node_truth import node_truth_meta
from benchmark.core.artifact import Artifact
from benchmark.graph.circuit import ablated_outputs, graph_of, run_circuit
from benchmark.graph.metrics import agreement, faithfulness

CONVENTIONS = ("structural", "zero", "resample")


def relation(compiled: list, compressed: list) -> dict:
    a, b = set(compiled), set(compressed)
    kind = "equal" if a == b else "superset" if b > a else "subset" if b < a else "differs"
    return {"relation": kind, "added": sorted(b - a), "removed": sorted(a - b),
            "compiled": len(a), "compressed": len(b)}


def single_edge_effects(model, tokens, ablated) -> dict:
    """Edge -> mean KL(full || that one edge ablated) (MSE for numerical tasks)."""
    graph = graph_of(model)
    effects = {}
    with torch.no_grad():
        full = run_circuit(model, tokens)
        for i, edge in enumerate(graph.edges):
            mask = torch.ones(graph.n_edges)
            mask[i] = 0.0
            out = run_circuit(model, tokens, mask, ablated)
            effects[edge] = float(faithfulness(full, out, model.output_kind, model.partial))
    return effects


def interference(model, ground_truth: dict, tokens, clean, corrupted) -> dict:
    """Per ablation convention: the strongest edge outside the ground truth, the weakest in it."""
    out = {}
    with torch.no_grad():
        resampled = ablated_outputs(model, "resample", clean, corrupted)
    for name, inputs, ablated in (("zero", tokens, None), ("resample", clean, resampled)):
        effects = single_edge_effects(model, inputs, ablated)
        inside = set(ground_truth[name])
        outside = {e: v for e, v in effects.items() if e not in inside}
        strongest = max(outside, key=outside.get, default=None)
        weakest = min(inside, key=effects.get, default=None)
        out[name] = {"strongest_outside": strongest,
                     "strongest_outside_effect": outside.get(strongest),
                     "weakest_inside": weakest, "weakest_inside_effect": effects.get(weakest)}
    return out


def compiled_circuit_on(model, ground_truth: dict, tokens, clean, corrupted, atol) -> dict:
    """The compiled model's circuits run on the compressed model: do they still suffice?"""
    graph, out = graph_of(model), {}
    with torch.no_grad():
        resampled = ablated_outputs(model, "resample", clean, corrupted)
        for name, inputs, ablated in (("structural", tokens, None), ("zero", tokens, None),
                                      ("resample", clean, resampled)):
            full = run_circuit(model, inputs)
            circ = run_circuit(model, inputs, graph.mask_from_edges(ground_truth[name]), ablated)
            out[name] = {"agreement": agreement(full, circ, model.output_kind, atol,
                                                model.partial),
                         "faithfulness": float(faithfulness(full, circ, model.output_kind,
                                                            model.partial))}
    return out


def compress_task_artifact(spec, artifact: Artifact, tokens, clean, corrupted) -> Artifact:
    """The compressed task's artifact from the compiled one (whose meta holds the compiled
    ground truth): W trained and stored, the ground truth derived on the compressed model."""
    settings = spec.compression
    w, record = train_compression(artifact, tokens, settings, spec.numerical_atol)
    if record["accuracy"] < settings.min_accuracy:
        raise CompressionError(
            f"task {spec.name!r}: compressed to {settings.width} of {record['d_compiled']} dims, "
            f"the model agrees with the compiled one on {record['accuracy']:.4f} of the answers "
            f"(needs {settings.min_accuracy}; final loss {record['final_loss']:.4g} after "
            f"{settings.steps} steps): choose a larger width, more steps or another seed")
    t0 = time.perf_counter()
    compiled_model = TracrTransformer(artifact)
    compiled_gt = {k: artifact.meta["ground_truth"][k] for k in CONVENTIONS}
    compiled_interference = interference(compiled_model, compiled_gt, tokens, clean, corrupted)
    result = with_compression(artifact, w, {"compression": record})
    model = TracrTransformer(result)
    gt = derive_ground_truth(model, tokens, clean, corrupted, spec.output, spec.numerical_atol,
                             model.partial)
    result.meta["ground_truth"] = gt
    compiled_nodes = artifact.meta["node_ground_truth"]
    result.meta.update(node_truth_meta(model, gt, tokens, clean, corrupted, spec.output,
                                       spec.numerical_atol, model.partial))
    nodes = result.meta["node_ground_truth"]
    result.meta["ground_truth_compression"] = {
        "compiled": compiled_gt,
        "relation": {k: relation(compiled_gt[k], gt[k]) for k in CONVENTIONS},
        "compiled_nodes": compiled_nodes,
        "node_relation": {k: relation(compiled_nodes[k], nodes[k]) for k in CONVENTIONS},
        "interference": {"compiled": compiled_interference,
                         "compressed": interference(model, gt, tokens, clean, corrupted)},
        "compiled_circuits_on_compressed": compiled_circuit_on(
            model, compiled_gt, tokens, clean, corrupted, spec.numerical_atol),
        "seconds": round(time.perf_counter() - t0, 3)}
    return result
