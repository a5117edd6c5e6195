"""Build a task's artifact: compile and verify (tracr), then derive its ground truth (torch)."""
from __future__ import annotations

import time

import numpy as np
import torch

from benchmark.backends.tracr.compile import build_artifact
from benchmark.backends.tracr.ground_truth import Readout, derive_ground_truth, validate
from benchmark.backends.tracr.model import TracrTransformer
from benchmark.backends.tracr.node_truth import node_truth_meta, validate_nodes
from benchmark.backends.tracr.spec import TaskSpec
from benchmark.core.artifact import Artifact
from benchmark.graph.circuit import ablated_outputs
from benchmark.graph.inputs import sample_different, sample_inputs, verification_inputs
from benchmark.graph.metrics import answers, defined_positions

MAX_ALL_PAIRS = 10_000  # every ordered pair of inputs up to this many, else sampled partners
PARTNERS = 16


def ground_truth_inputs(spec: TaskSpec, meta: dict):
    """The task's input set and the clean/corrupted pairs that define resample ablation."""
    tokens, _ = verification_inputs(meta["symbol_ids"], spec.length, spec.inputs, meta["bos_id"],
                                    spec.max_verify_inputs)
    n = len(tokens)
    if n * (n - 1) <= MAX_ALL_PAIRS:
        i, j = np.nonzero(~np.eye(n, dtype=bool))
    else:
        rng = np.random.default_rng(0)
        i = np.repeat(np.arange(n), PARTNERS)
        j = (i + rng.integers(1, n, size=len(i))) % n
    t = torch.from_numpy
    return t(tokens), t(tokens[i]), t(tokens[j])


VALIDATION_SEED = 1  # the derivation's sample uses seed 0


def validate_on_fresh_inputs(spec: TaskSpec, model, meta: dict, ground_truth: dict) -> dict:
    """Check every convention's sufficiency, edges and nodes, on `spec.validation_inputs` inputs
    drawn afresh (with a different-input partner each for resample): a ground truth derived on a
    sample of a large input space could miss an edge that only unseen inputs need. Necessity
    needs no recheck: the derivation exhibited an input that each kept edge (node) changes.
    Raises GroundTruthError when a convention falls short."""
    rng = np.random.default_rng(VALIDATION_SEED)
    tokens = np.unique(sample_inputs(meta["symbol_ids"], spec.length, spec.inputs,
                                     meta["bos_id"], spec.validation_inputs, rng), axis=0)
    partners = sample_different(tokens, meta["symbol_ids"], spec.inputs, meta["bos_id"], rng)
    tokens, partners = torch.from_numpy(tokens), torch.from_numpy(partners)
    readout = Readout(spec.output, spec.numerical_atol, model.partial)
    with torch.no_grad():
        resampled = ablated_outputs(model, "resample", tokens, partners)
    for name, ablated in (("structural", None), ("zero", None), ("resample", resampled)):
        validate(model, frozenset(ground_truth[name]), tokens, ablated, readout,
                 f"{name} (fresh inputs, seed {VALIDATION_SEED})", check_necessary=False)
    nodes = validate_nodes(model, meta.get("node_ground_truth", {}), tokens, resampled, readout,
                           f"(fresh inputs, seed {VALIDATION_SEED})")
    return {"inputs": len(tokens), "pairs": len(partners), "seed": VALIDATION_SEED,
            "conventions": ["structural", "zero", "resample"], "node_conventions": nodes,
            "passed": True}


class DegenerateTaskError(ValueError):
    """A task on which no circuit can be right or wrong: refused, not benchmarked."""


def refuse_degenerate(spec: TaskSpec, model, tokens, ground_truth: dict) -> None:
    """A program whose output ignores its input on the task's vocabulary (e.g. counting a token
    that is not in it) compiles and verifies, but every method "recovers" its empty circuit."""
    with torch.no_grad():
        full = model(tokens)
    decoded = answers(full, spec.output)
    defined = defined_positions(full, model.partial)
    if defined is not None:
        decoded = torch.where(defined, decoded, -1)  # None is an answer of its own
    if bool((decoded == decoded[:1]).all()) and not spec.constant_output:
        raise DegenerateTaskError(
            f"task {spec.name!r}: the compiled model gives the same output for all "
            f"{len(tokens)} inputs checked, so its output does not depend on its input; check "
            "that the program's comparisons use values of the vocabulary (or declare "
            "constant_output=True in its TaskSpec if that is the task)")
    empty = [c for c in ("zero", "resample") if not ground_truth[c]
             and not (c == "resample" and spec.constant_output)]
    if empty:
        raise DegenerateTaskError(
            f"task {spec.name!r}: its {' and '.join(empty)} ground truth is empty (no edge "
            "changes the output when ablated); choose a vocabulary or length on which the "
            "program's output varies")


def build_task_artifact(spec: TaskSpec) -> Artifact:
    if getattr(spec, "planted", None) is not None:  # a trained model, not a compiled one
        from benchmark.backends.tracr.planted import build_planted_artifact
        return build_planted_artifact(spec)
    artifact = build_artifact(spec)
    t0 = time.perf_counter()
    model = TracrTransformer(artifact)
    tokens, clean, corrupted = ground_truth_inputs(spec, artifact.meta)
    artifact.meta["ground_truth"] = derive_ground_truth(model, tokens, clean, corrupted,
                                                        spec.output, spec.numerical_atol,
                                                        model.partial)
    refuse_degenerate(spec, model, tokens, artifact.meta["ground_truth"])
    artifact.meta.update(node_truth_meta(model, artifact.meta["ground_truth"], tokens, clean,
                                         corrupted, spec.output, spec.numerical_atol,
                                         model.partial))
    if getattr(spec, "compression", None) is not None:  # superposition: a learned W (D -> d)
        from benchmark.backends.tracr.compressed_build import compress_task_artifact
        artifact = compress_task_artifact(spec, artifact, tokens, clean, corrupted)
        model = TracrTransformer(artifact)
        refuse_degenerate(spec, model, tokens, artifact.meta["ground_truth"])
    artifact.meta["ground_truth_inputs"] = {"n_inputs": len(tokens), "n_pairs": len(clean)}
    if spec.validation_inputs:
        artifact.meta["ground_truth_validation"] = validate_on_fresh_inputs(
            spec, model, artifact.meta, artifact.meta["ground_truth"])
    artifact.meta["ground_truth_seconds"] = round(time.perf_counter() - t0, 3)
    return artifact
