"""Train the residual-stream compression W of a compressed task (Tracr paper, sec. 5).

W [D, d] starts as a seeded random orthonormal map and is trained by full-batch Adam on every
input of the task so that the compressed model (the compiled weights with W folded in,
benchmark.backends.tracr.fold) gives the compiled model's answers: cross-entropy to its answers
(categorical) or squared error to its values (numerical), plus the squared error between each
block's output read back through W^T and the compiled block's output, as the paper does.
The forward is the model's own (run_circuit through `torch.func.functional_call`), so what is
trained is exactly what is loaded later. One thread and a seeded start make W the same bits on
every run of one machine.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.backends.tracr.fold import COMPRESSION, fold
from benchmark.backends.tracr.model import TracrTransformer
from benchmark.core.artifact import Artifact
from benchmark.graph.circuit import Recording, run_circuit
from benchmark.graph.metrics import agreement, answers, defined_positions


class CompressionError(AssertionError):
    """The compressed model does not reproduce the compiled one well enough."""


def with_compression(artifact: Artifact, w: np.ndarray, meta: dict | None = None) -> Artifact:
    """A copy of the compiled artifact that carries W (and `meta` merged into its meta)."""
    arrays = dict(artifact.arrays, **{COMPRESSION: np.ascontiguousarray(w, dtype=np.float32)})
    return Artifact(meta=dict(artifact.meta, **(meta or {})), arrays=arrays)


def initial_w(d_model: int, width: int, seed: int) -> torch.Tensor:
    """A random map with orthonormal columns (rows, when width > D) from `seed`."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(max(d_model, width), min(d_model, width), generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))  # a unique QR: the same start on every machine
    return (q if d_model >= width else q.T).float()


class _Recorded(torch.nn.Module):
    """The model's plain run with a Recording, callable through functional_call."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, record):
        return run_circuit(self.model, tokens, record=record)


def _array_name(param: str) -> str:
    """`blocks.2.wq` -> `l2_wq`; `tok_embed` stays."""
    if param.startswith("blocks."):
        _, layer, short = param.split(".")
        return f"l{layer}_{short}"
    return param


def train_compression(artifact: Artifact, tokens: torch.Tensor, settings, atol: float) -> tuple:
    """W [D, d] trained on `tokens` (every input of the task) and a record of the training;
    `atol`: how far a numerical answer may move and still count as the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(artifact, tokens, settings, atol)
    finally:
        torch.set_num_threads(threads)


def _train(artifact, tokens, settings, atol):
    t0 = time.perf_counter()
    compiled = TracrTransformer(artifact)
    kind, partial = compiled.output_kind, compiled.partial
    with torch.no_grad():
        target_rec = Recording()
        target = run_circuit(compiled, tokens, record=target_rec)
    target_inner = _flat(target_rec)
    defined = defined_positions(target, partial)
    weights = {k: torch.from_numpy(v.astype("float32")) for k, v in artifact.arrays.items()}
    w = initial_w(compiled.d_model, settings.width, settings.seed).requires_grad_(True)
    model = _Recorded(TracrTransformer(with_compression(artifact, w.detach().numpy())))
    opt = torch.optim.Adam([w], lr=settings.lr)
    answer = answers(target, kind)
    norm = float(target_inner.shape[0])  # squared error summed over dims, averaged over rows
    losses = []
    for _ in range(settings.steps):
        rec = Recording()
        out = _forward(model, weights, w, tokens, rec)
        loss = _output_loss(out, target, answer, kind, defined, settings.logit_scale)
        if settings.intermediate_weight:
            inner = F.mse_loss(_flat(rec) @ w.T, target_inner, reduction="sum") / norm
            loss = loss + settings.intermediate_weight * inner
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    w = w.detach()
    trained = TracrTransformer(with_compression(artifact, w.numpy()))
    with torch.no_grad():
        out = trained(tokens)
    acc = agreement(target, out, kind, atol, partial)
    same_input = (answers(out, kind) == answer) if kind == "categorical" else \
        ((answers(out, kind) - answer).abs() <= atol)
    if defined is not None:
        same_input = same_input | ~defined
    record = {"width": settings.width, "d_compiled": compiled.d_model,
              "seed": settings.seed, "steps": settings.steps, "lr": settings.lr,
              "intermediate_weight": settings.intermediate_weight,
              "final_loss": losses[-1] if losses else None,
              "initial_loss": losses[0] if losses else None,
              "accuracy": acc, "inputs_all_correct": float(same_input.all(1).double().mean()),
              "n_inputs": len(tokens), "train_seconds": round(time.perf_counter() - t0, 3)}
    return w.numpy(), record


def _forward(wrapped: _Recorded, weights: dict, w, tokens, rec):
    """The compressed model's outputs for W = `w`, differentiable in w."""
    folded = fold(weights, w, wrapped.model.meta["output_dims"])
    params = {name: folded[_array_name(name[len("model."):])]
              for name, _ in wrapped.named_parameters()}
    return torch.func.functional_call(wrapped, params, (tokens, rec))


def _flat(rec: Recording) -> torch.Tensor:
    """Every block's output and every reader's input of a run, as rows of the residual
    stream [N, D]: what the compressed run must give back through W^T."""
    parts = [x for x in rec.writers] + [x for x in rec.group_inputs if x is not None]
    return torch.cat([x.reshape(-1, x.shape[-1]) for x in parts])


def _output_loss(out, target, answer, kind, defined, scale):
    if kind == "categorical":
        per = F.cross_entropy(scale * out[:, 1:].flatten(0, 1), answer.flatten(),
                              reduction="none")
    else:
        per = (out[:, 1:, 0] - target[:, 1:, 0]) ** 2
    per = per.reshape(answer.shape)
    if defined is None:
        return per.mean()
    return (per * defined).sum() / defined.sum().clamp(min=1)
