"""The tracr bridge: compile a task's RASP program, save the weights, verify the torch port.

This is the only module that imports jax (through tracr). It runs once per task; everything
downstream loads the saved artifact into torch. Verification is loud: the torch model must
reproduce `rasp.evaluate` and tracr's own haiku model on every verification input. Where the
program is undefined (None), both models must output tracr's null vector; such a task is marked
`partial_output` and its None positions are excluded downstream like BOS.
"""
from __future__ import annotations

import re
import time

import numpy as np
import torch

from benchmark.backends.tracr.spec import TaskSpec
from benchmark.core.artifact import Artifact
from benchmark.graph.inputs import verification_inputs
from benchmark.graph.metrics import NULL_BELOW

BOS = "BOS"


class VerificationError(AssertionError):
    """The compiled model disagrees with its RASP program (tracr can silently mis-compile)."""


def stable_label(label: str) -> str:
    """Drop tracr's global counters (`length_5:3` -> `length:3`) so names are reproducible."""
    name, sep, value = label.partition(":")
    name = re.sub(r"_\d+(?=_selector_width|$)", "", name)
    return name + sep + value


def compile_program(spec: TaskSpec):
    from tracr.compiler import compiling
    program = spec.program()
    model = compiling.compile_rasp_to_model(program, vocab=set(spec.vocab),
                                            max_seq_len=spec.max_seq_len, compiler_bos=BOS)
    return program, model


def _plain(value):
    """JSON-friendly vocabulary values (numpy scalars become Python numbers)."""
    return value.item() if hasattr(value, "item") else value


def extract_artifact(spec: TaskSpec, program, model) -> Artifact:
    """Weights per head, stable labels, encoders and the output dims of the residual stream."""
    cfg = model.model_config
    p = {k: {kk: np.asarray(vv, dtype=np.float32) for kk, vv in v.items()}
         for k, v in model.params.items()}
    n_heads, key_size = cfg.num_heads, cfg.key_size
    d_model = p["token_embed"]["embeddings"].shape[1]
    arrays = {"tok_embed": p["token_embed"]["embeddings"],
              "pos_embed": p["pos_embed"]["embeddings"]}
    for layer in range(cfg.num_layers):
        pre = f"transformer/layer_{layer}"
        for short, name in (("q", "query"), ("k", "key"), ("v", "value")):
            w, b = p[f"{pre}/attn/{name}"]["w"], p[f"{pre}/attn/{name}"]["b"]
            arrays[f"l{layer}_w{short}"] = w.reshape(d_model, n_heads, key_size).transpose(1, 0, 2)
            arrays[f"l{layer}_b{short}"] = b.reshape(n_heads, key_size)
        arrays[f"l{layer}_wo"] = p[f"{pre}/attn/linear"]["w"].reshape(n_heads, key_size, d_model)
        if np.any(p[f"{pre}/attn/linear"]["b"] != 0):
            raise ValueError(f"{spec.name}: layer {layer} has an attention output bias, which "
                             "belongs to no single head; the tracr port expects none")
        arrays[f"l{layer}_w1"] = p[f"{pre}/mlp/linear_1"]["w"]
        arrays[f"l{layer}_b1"] = p[f"{pre}/mlp/linear_1"]["b"]
        arrays[f"l{layer}_w2"] = p[f"{pre}/mlp/linear_2"]["w"]
        arrays[f"l{layer}_b2"] = p[f"{pre}/mlp/linear_2"]["b"]
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}

    raw_labels = list(model.residual_labels)
    labels = [stable_label(x) for x in raw_labels]
    if len(set(labels)) != len(labels):
        labels = raw_labels  # stripping collided: keep tracr's names rather than merge two
    out_name = program.label
    if spec.output == "categorical":
        out_values = sorted(model.output_encoder.encoding_map,
                            key=model.output_encoder.encoding_map.get)
        out_labels = [f"{out_name}:{v}" for v in out_values]
    else:
        out_values, out_labels = None, [out_name]
    missing = [x for x in out_labels if x not in raw_labels]
    if missing:
        raise ValueError(f"{spec.name}: output labels {missing} not in the residual stream")
    enc = model.input_encoder.encoding_map
    meta = {
        "task": spec.name, "task_version": spec.version,
        "n_layers": cfg.num_layers, "n_heads": n_heads, "key_size": key_size,
        "mlp_hidden_size": cfg.mlp_hidden_size, "d_model": d_model,
        "max_seq_len": spec.max_seq_len, "length": spec.length,
        "residual_labels": labels, "raw_residual_labels": raw_labels,
        "input_encoding": [[_plain(k), int(v)] for k, v in enc.items()],
        "bos_id": int(enc[BOS]), "symbol_ids": [int(enc[v]) for v in spec.vocab],
        "vocab": [_plain(v) for v in spec.vocab],
        "output_kind": spec.output, "output_label": out_name,
        "output_values": None if out_values is None else [_plain(v) for v in out_values],
        "output_dims": [raw_labels.index(x) for x in out_labels],
    }
    return Artifact(meta=meta, arrays=arrays)


def _haiku_outputs(model, tokens: np.ndarray, batch: int = 2048):
    import jax.numpy as jnp
    decoded, raw = [], []
    for i in range(0, len(tokens), batch):
        out = model.forward(model.params, jnp.asarray(tokens[i:i + batch]))
        decoded.append(np.asarray(out.unembedded_output))
        raw.append(np.asarray(out.transformer_output.output))
    return np.concatenate(decoded), np.concatenate(raw)


def verify(spec: TaskSpec, program, model, artifact: Artifact, limit: int | None = None) -> dict:
    """Torch port vs rasp.evaluate and vs tracr's haiku model; raises VerificationError."""
    from tracr.rasp import rasp

    from benchmark.backends.tracr.model import TracrTransformer

    meta = artifact.meta
    tokens, exhaustive = verification_inputs(meta["symbol_ids"], spec.length, spec.inputs,
                                             meta["bos_id"], limit or spec.max_verify_inputs)
    torch_model = TracrTransformer(artifact)
    with torch.no_grad():
        t_raw = torch_model(torch.from_numpy(tokens)).numpy()  # [N, S, O]
    h_decoded, h_resid = _haiku_outputs(model, tokens)
    h_raw = h_resid[..., meta["output_dims"]]
    max_diff = float(np.abs(t_raw - h_raw).max())
    id_to_value = {v: k for k, v in meta["input_encoding"]}
    mismatches, undefined = [], 0
    for i, row in enumerate(tokens):
        values = [id_to_value[int(t)] for t in row[1:]]
        expected = rasp.evaluate(program, values)
        if spec.output == "categorical":
            got = _categorical(t_raw[i, 1:], t_raw[i, 1:].argmax(-1), meta["output_values"])
            haiku = _categorical(h_raw[i, 1:], h_decoded[i, 1:], meta["output_values"])
            ok = got == list(expected) == haiku
            undefined += sum(e is None for e in expected)
        else:
            got = t_raw[i, 1:, 0].tolist()
            haiku = h_decoded[i, 1:].tolist()
            ok = all(e is not None and abs(g - e) <= spec.numerical_atol
                     and abs(g - h) <= spec.numerical_atol
                     for g, h, e in zip(got, haiku, expected))
        if not ok:
            mismatches.append((values, expected, got, haiku))
    if mismatches:
        values, expected, got, haiku = mismatches[0]
        raise VerificationError(
            f"task {spec.name!r}: the compiled model disagrees with its RASP program on "
            f"{len(mismatches)} of {len(tokens)} inputs; first: input {values}, rasp {expected}, "
            f"torch {got}, haiku {haiku}. Change the task (vocab, length, program) so that tracr "
            "compiles it correctly" + (" (a numerical output cannot be None)" if
                                       spec.output == "numerical" and None in expected else "")
            + ".")
    return {"n_inputs": int(len(tokens)), "exhaustive": exhaustive,
            "max_abs_diff_torch_vs_haiku": max_diff, "undefined_positions": undefined}


def _categorical(raw: np.ndarray, indices, values: list) -> list:
    """Decoded answers per position; None where the output is tracr's null vector (the
    program is undefined there: a categorical Aggregate that selects nothing)."""
    defined = np.abs(raw).max(-1) > NULL_BELOW
    return [values[j] if d else None for j, d in zip(indices, defined)]


def build_artifact(spec: TaskSpec) -> Artifact:
    """Compile, extract and verify; the artifact's meta records timings and verification."""
    t0 = time.perf_counter()
    program, model = compile_program(spec)
    artifact = extract_artifact(spec, program, model)
    t1 = time.perf_counter()
    artifact.meta["verification"] = verify(spec, program, model, artifact)
    # None positions are excluded from metrics and ground truth (benchmark.graph.metrics)
    artifact.meta["partial_output"] = artifact.meta["verification"]["undefined_positions"] > 0
    t2 = time.perf_counter()
    artifact.meta["compile_seconds"] = round(t1 - t0, 3)
    artifact.meta["verify_seconds"] = round(t2 - t1, 3)
    return artifact
