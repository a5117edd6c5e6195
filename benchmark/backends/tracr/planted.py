"""Build a planted task's artifact: compile its base program (the high-level model), train a
larger transformer of tracr's architecture to implement it on aligned components (SIIT,
planted_train.py), and derive its ground truth from the alignment, validated by ablation.

The trained weights are written in the compiled artifact's format, so TracrTransformer, the
graph, the masked forward and every method run on it unchanged. The ground truth:

- resample (edges): the compiled resample ground truth mapped through the alignment; validated
  on every clean/corrupted pair: sufficient, and each edge necessary. A failure fails the build.
- zero (edges): the compiled zero ground truth mapped likewise, kept only if it validates under
  zero ablation (training never sees zero ablation, so it usually does not).
- planted_nodes: the trained components the resample ground truth touches.
- node level (node_truth.py): zero and resample derived by node ablation on the trained model
  from every writer, each kept only if it validates (meta["node_ground_truth_derivation"]
  ["missing"] says why one is not); no structural convention, as at the edge level.

The build also records how much the off-circuit edges matter: for each edge outside the
resample ground truth, the answers its resample ablation alone changes and the mean KL.
"""
from __future__ import annotations

import time
from dataclasses import fields

import numpy as np
import torch

from benchmark.backends.tracr.build import build_task_artifact, ground_truth_inputs
from benchmark.backends.tracr.ground_truth import GroundTruthError, Readout, validate
from benchmark.backends.tracr.model import TracrTransformer
from benchmark.backends.tracr.node_truth import node_truth_meta
from benchmark.backends.tracr.planted_train import Alignment, evaluate, train
from benchmark.backends.tracr.spec import TaskSpec
from benchmark.core.artifact import Artifact
from benchmark.graph.circuit import ablated_outputs, graph_of, run_circuit
from benchmark.graph.metrics import kl_per_position

BLOCK = ["wq", "bq", "wk", "bk", "wv", "bv", "wo", "w1", "b1", "w2", "b2"]


class PlantingError(AssertionError):
    """The trained model does not reproduce the compiled one well enough."""


def initial_artifact(high_meta: dict, high_arrays: dict, s) -> Artifact:
    """Seeded random weights in the compiled artifact's format; the outputs are the first
    residual dims (tracr reads its outputs from residual dims, with no unembedding)."""
    gen = torch.Generator().manual_seed(s.seed)
    d, h, k, m = s.d_model, s.n_heads, s.key_size, s.mlp_hidden
    n_out = len(high_meta["output_dims"])
    if n_out >= d:
        raise ValueError(f"planted d_model {d} must exceed the {n_out} output dims")

    def normal(*shape, fan_in):
        return (torch.randn(*shape, generator=gen) / np.sqrt(fan_in)).numpy()
    arrays = {"tok_embed": normal(high_arrays["tok_embed"].shape[0], d, fan_in=1),
              "pos_embed": normal(high_arrays["pos_embed"].shape[0], d, fan_in=1)}
    shapes = {"wq": (h, d, k), "wk": (h, d, k), "wv": (h, d, k), "wo": (h, k, d),
              "w1": (d, m), "w2": (m, d)}
    for layer in range(s.n_layers):
        for name in BLOCK:
            if name in shapes:
                shape = shapes[name]
                arr = normal(*shape, fan_in=shape[-2])
            else:  # biases start at zero
                arr = np.zeros({"bq": (h, k), "bk": (h, k), "bv": (h, k), "b1": (m,),
                                "b2": (d,)}[name])
            arrays[f"l{layer}_{name}"] = arr
    labels = [f"out:{i}" for i in range(n_out)] + [f"r{i}" for i in range(n_out, d)]
    meta = {k: v for k, v in high_meta.items()
            if not k.startswith(("ground_truth", "node_ground_truth"))
            and k not in ("fingerprint", "format_version")}
    meta.update(n_layers=s.n_layers, n_heads=h, key_size=k, mlp_hidden_size=m, d_model=d,
                residual_labels=labels, raw_residual_labels=labels,
                output_dims=list(range(n_out)))
    return Artifact(meta=meta, arrays={n: np.ascontiguousarray(a, dtype=np.float32)
                                       for n, a in arrays.items()})


def trainable(artifact: Artifact) -> TracrTransformer:
    model = TracrTransformer(artifact)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def weights_of(model: TracrTransformer) -> dict:
    arrays = {"tok_embed": model.tok_embed, "pos_embed": model.pos_embed}
    for layer, block in enumerate(model.blocks):
        arrays.update({f"l{layer}_{n}": getattr(block, n) for n in BLOCK})
    return {n: np.ascontiguousarray(a.detach().numpy(), dtype=np.float32)
            for n, a in arrays.items()}


def base_spec(spec) -> TaskSpec:
    """The compiled task a planted task plants: its fields, its base's name."""
    return TaskSpec(**dict({f.name: getattr(spec, f.name) for f in fields(TaskSpec)},
                           name=spec.base))


def build_planted_artifact(spec) -> Artifact:
    s = spec.planted
    t0 = time.perf_counter()
    high_artifact = build_task_artifact(base_spec(spec))
    high = TracrTransformer(high_artifact)
    if high.output_kind != "categorical" or high.partial:
        raise ValueError(f"task {spec.name!r}: planting needs a categorical program defined "
                         "everywhere")
    compile_seconds = time.perf_counter() - t0
    high_truth = high_artifact.meta["ground_truth"]
    tokens, clean, corrupted = ground_truth_inputs(spec, high_artifact.meta)
    start = initial_artifact(high_artifact.meta, high_artifact.arrays, s)
    low = trainable(start)
    al = Alignment(high, low, dict(s.align))
    record = train(high, low, al, high_truth["resample"], clean, corrupted, s)
    artifact = Artifact(meta=dict(start.meta), arrays=weights_of(low))
    t1 = time.perf_counter()
    model = TracrTransformer(artifact)
    with torch.no_grad():
        agree = (model(tokens)[:, 1:].argmax(-1) == high(tokens)[:, 1:].argmax(-1))
    accuracy = float(agree.float().mean())
    if accuracy < s.min_accuracy:
        raise PlantingError(f"task {spec.name!r}: the planted model agrees with the compiled "
                            f"one on {accuracy:.4f} of the answers, below {s.min_accuracy}; "
                            "train longer or widen the model")
    record["final"] = evaluate(high, model, Alignment(high, model, dict(s.align)),
                               high_truth["resample"], clean, corrupted)
    meta = artifact.meta
    meta.update(planted={"base": spec.base, "align": [list(a) for a in s.align],
                         "accuracy": accuracy, **record},
                verification={"n_inputs": len(tokens), "exhaustive": True,
                              "accuracy_vs_compiled": accuracy},
                partial_output=False, compile_seconds=round(compile_seconds, 3),
                verify_seconds=round(time.perf_counter() - t1, 3))
    t2 = time.perf_counter()
    truth, meta["conventions"], meta["ground_truth_validation"] = planted_ground_truth(
        model, al, high_truth, tokens, clean, corrupted)
    meta["ground_truth"] = truth
    meta.update(node_truth_meta(model, truth, tokens, clean, corrupted, "categorical", 0.0,
                                trained=True))
    meta["ground_truth_inputs"] = {"n_inputs": len(tokens), "n_pairs": len(clean)}
    meta["off_circuit"] = off_circuit_effects(model, truth["resample"], tokens, clean,
                                              corrupted)
    meta["ground_truth_seconds"] = round(time.perf_counter() - t2, 3)
    return artifact


def planted_ground_truth(model, al: Alignment, high_truth: dict, tokens, clean, corrupted):
    """(ground truth, its conventions, validation record): resample must validate; zero is
    kept only when it does."""
    graph = graph_of(model)
    order = graph.edge_to_index.get
    readout = Readout("categorical", 0.0)
    with torch.no_grad():
        resampled = ablated_outputs(model, "resample", clean, corrupted)
    resample = frozenset(al.low_edge(e) for e in high_truth["resample"])
    validate(model, resample, clean, resampled, readout, "planted resample",
             check_necessary=True)  # raises GroundTruthError: no build with a wrong truth
    truth = {"resample": sorted(resample, key=order), "pruned_as_redundant": {}}
    nodes = {n for e in resample for n in (e.split("->")[0], graph.node_of(e.split("->")[1]))}
    truth["planted_nodes"] = sorted(nodes, key=graph.node_to_index.get)
    record = {"resample": {"pairs": len(clean), "sufficient": True, "each_necessary": True}}
    zero = frozenset(al.low_edge(e) for e in high_truth["zero"])
    try:
        validate(model, zero, tokens, None, readout, "planted zero", check_necessary=True)
        truth["zero"] = sorted(zero, key=order)
        record["zero"] = {"inputs": len(tokens), "sufficient": True, "each_necessary": True}
    except GroundTruthError as err:
        record["zero"] = {"inputs": len(tokens), "holds": False, "why": str(err)}
    conventions = ["zero", "resample"] if "zero" in truth else ["resample"]
    return truth, conventions, record


def off_circuit_effects(model, truth: list, tokens, clean, corrupted, top: int = 5) -> dict:
    """Each edge outside the resample ground truth, ablated alone from the full model (resample
    on every pair; zero on every input): the fraction of answers it changes and the mean
    KL(full || ablated), with the strongest edges first."""
    graph = graph_of(model)
    result = {}
    with torch.no_grad():
        for kind, inputs, ablated in (
                ("resample", clean, ablated_outputs(model, "resample", clean, corrupted)),
                ("zero", tokens, None)):
            full, rows = model(inputs), []
            for edge in graph.edges:
                if edge in truth:
                    continue
                mask = torch.ones(graph.n_edges)
                mask[graph.edge_to_index[edge]] = 0.0
                out = run_circuit(model, inputs, mask, ablated)
                changed = (out[:, 1:].argmax(-1) != full[:, 1:].argmax(-1)).float().mean()
                rows.append({"edge": edge, "changed": float(changed),
                             "kl": float(kl_per_position(full, out).mean())})
            rows.sort(key=lambda r: (-r["changed"], -r["kl"]))
            result[kind] = {"edges": len(rows),
                            "edges_changing_an_answer": sum(r["changed"] > 0 for r in rows),
                            "strongest": rows[:top]}
    return result
