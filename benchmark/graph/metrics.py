"""Task metrics on model outputs [B, S, O]; position 0 (BOS) is excluded everywhere.

Categorical outputs are compared as distributions (softmax over the output logits): KL(full ||
circuit). Numerical outputs (one value per position) by mean squared error. Agreement is the
fraction of non-BOS positions where the circuit's answer equals the full model's.

A task whose RASP program is undefined (None) at some positions is `partial`: tracr compiles
None to the null vector (every output logit 0, where a defined answer is one-hot), so the full
model's output says which positions are defined. Those positions are excluded like BOS: from
the means' numerators and denominators and from "changed" decisions. For other tasks
`partial=False` and every position after BOS counts, on exactly the same arithmetic as before.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

NULL_BELOW = 0.5  # a defined tracr answer has a logit of 1; the null vector is all 0


def defined_positions(full: torch.Tensor, partial: bool) -> torch.Tensor | None:
    """Non-BOS positions where the program is defined [B, S-1] bool, or None (all are)."""
    if not partial:
        return None
    return full[:, 1:].abs().amax(-1) > NULL_BELOW


def _mean(per: torch.Tensor, defined: torch.Tensor | None) -> torch.Tensor:
    if defined is None:
        return per.mean()
    return (per * defined).sum() / defined.sum().clamp(min=1)


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


def faithfulness(full: torch.Tensor, circuit: torch.Tensor, kind: str,
                 partial: bool = False) -> torch.Tensor:
    """Mean KL(full || circuit) for categorical outputs, mean squared error for numerical."""
    per = kl_per_position(full, circuit) if kind == "categorical" else \
        squared_error_per_position(full, circuit)
    return _mean(per, defined_positions(full, partial))


def faithfulness_per_example(full: torch.Tensor, circuit: torch.Tensor, kind: str,
                             partial: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over counted positions, number of counted positions) per example [B], [B]: the
    mean `faithfulness` is sum(first) / sum(second), which a bootstrap over examples resamples."""
    per = kl_per_position(full, circuit) if kind == "categorical" else \
        squared_error_per_position(full, circuit)
    defined = defined_positions(full, partial)
    weight = torch.ones_like(per) if defined is None else defined.to(per.dtype)
    return (per * weight).sum(1), weight.sum(1)


def answer_nll(full: torch.Tensor, circuit: torch.Tensor, partial: bool = False) -> torch.Tensor:
    """Mean negative log-probability the circuit gives the full model's answer (categorical)."""
    return _mean(_answer_nll_per_position(full, circuit), defined_positions(full, partial))


def answer_nll_per_example(full: torch.Tensor, circuit: torch.Tensor,
                           partial: bool = False) -> torch.Tensor:
    """`answer_nll` per example [B]: the mean over each example's counted positions."""
    per = _answer_nll_per_position(full, circuit)
    defined = defined_positions(full, partial)
    if defined is None:
        return per.mean(1)
    weight = defined.to(per.dtype)
    return (per * weight).sum(1) / weight.sum(1).clamp(min=1)


def _answer_nll_per_position(full: torch.Tensor, circuit: torch.Tensor) -> torch.Tensor:
    answer = full[:, 1:].argmax(-1)
    logp = F.log_softmax(circuit[:, 1:].float(), dim=-1)
    return -logp.gather(-1, answer.unsqueeze(-1))[..., 0]


def faithfulness_name(kind: str) -> str:
    return "kl" if kind == "categorical" else "mse"


def _same(full, circuit, kind: str, atol: float) -> torch.Tensor:
    a, b = answers(full, kind), answers(circuit, kind)
    return (a == b) if kind == "categorical" else (a - b).abs() <= atol


def agreement(full: torch.Tensor, circuit: torch.Tensor, kind: str, atol: float = 1e-3,
              partial: bool = False) -> float:
    same = _same(full, circuit, kind, atol).double()
    return float(_mean(same, defined_positions(full, partial)))


def changed_examples(full: torch.Tensor, circuit: torch.Tensor, kind: str,
                     atol: float = 1e-3, partial: bool = False) -> torch.Tensor:
    """Per example: does any non-BOS answer differ (at a defined position)? [B] bool."""
    diff = ~_same(full, circuit, kind, atol)
    defined = defined_positions(full, partial)
    if defined is not None:
        diff = diff & defined
    return diff.any(dim=1)
