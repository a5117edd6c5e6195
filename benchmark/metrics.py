"""Task metrics on model outputs [B, S, O]; position 0 (BOS) is excluded everywhere.

Categorical outputs are compared as distributions (softmax over the output logits): KL(full ||
circuit). Numerical outputs (one value per position) by mean squared error. Agreement is the
fraction of non-BOS positions where the circuit's answer equals the full model's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def answers(outputs: torch.Tensor, kind: str) -> torch.Tensor:
    """Decoded answers at non-BOS positions: class index (categorical) or value (numerical)."""
    body = outputs[:, 1:]
    return body.argmax(-1) if kind == "categorical" else body[..., 0]


def kl_per_position(full: torch.Tensor, circuit: torch.Tensor) -> torch.Tensor:
    """KL(full || circuit) per non-BOS position [B, S-1]."""
    p_log = F.log_softmax(full[:, 1:].double(), dim=-1)
    q_log = F.log_softmax(circuit[:, 1:].double(), dim=-1)
    return (p_log.exp() * (p_log - q_log)).sum(-1)


def squared_error_per_position(full: torch.Tensor, circuit: torch.Tensor) -> torch.Tensor:
    return (full[:, 1:, 0].double() - circuit[:, 1:, 0].double()) ** 2


def faithfulness(full: torch.Tensor, circuit: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean KL(full || circuit) for categorical outputs, mean squared error for numerical."""
    per = kl_per_position(full, circuit) if kind == "categorical" else \
        squared_error_per_position(full, circuit)
    return per.mean()


def faithfulness_name(kind: str) -> str:
    return "kl" if kind == "categorical" else "mse"


def agreement(full: torch.Tensor, circuit: torch.Tensor, kind: str, atol: float = 1e-3) -> float:
    a, b = answers(full, kind), answers(circuit, kind)
    same = (a == b) if kind == "categorical" else (a - b).abs() <= atol
    return float(same.double().mean())


def changed_examples(full: torch.Tensor, circuit: torch.Tensor, kind: str,
                     atol: float = 1e-3) -> torch.Tensor:
    """Per example: does any non-BOS answer differ? [B] bool."""
    a, b = answers(full, kind), answers(circuit, kind)
    diff = (a != b) if kind == "categorical" else (a - b).abs() > atol
    return diff.any(dim=1)
