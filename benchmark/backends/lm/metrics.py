"""Metrics of prompt tasks on next-token logits [B, S, V], read at each answer position.

Faithfulness is KL(full || circuit) of the next-token distribution there (the Edge Pruning
paper's measure). Each task also has its own measure, reported as circuit / full: IOI and the
gendered pronoun use the logit difference answer - rival; Greater-Than the probability of end
years greater than the start year minus the probability of the others (Hanna et al.).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def at_answer(logits: torch.Tensor, answer_pos: torch.Tensor) -> torch.Tensor:
    """The next-token logits at each example's answer position [B, V]."""
    return logits[torch.arange(len(logits), device=logits.device), answer_pos.to(logits.device)]


def logit_diff(logits, answer_pos, answer, rival) -> torch.Tensor:
    """Mean logit(answer) - logit(rival) at the answer positions."""
    return logit_diff_per_example(logits, answer_pos, answer, rival).mean()


def logit_diff_per_example(logits, answer_pos, answer, rival) -> torch.Tensor:
    """logit(answer) - logit(rival) at each example's answer position [B] (float64)."""
    last = at_answer(logits, answer_pos).double()
    rows = torch.arange(len(last), device=last.device)
    return last[rows, answer.to(last.device)] - last[rows, rival.to(last.device)]


def greater_than(logits, answer_pos, rival, year_ids: torch.Tensor) -> torch.Tensor:
    """Mean P(end year > YY) - P(end year <= YY), over the two-digit year tokens 00..99.

    `rival` holds each example's YY token; `year_ids[y]` is the token of the two digits y."""
    return greater_than_per_example(logits, answer_pos, rival, year_ids).mean()


def greater_than_per_example(logits, answer_pos, rival, year_ids: torch.Tensor) -> torch.Tensor:
    """`greater_than` per example [B] (float64)."""
    probs = F.softmax(at_answer(logits, answer_pos).double(), dim=-1)[:, year_ids.to(logits.device)]
    lookup = {int(t): y for y, t in enumerate(year_ids.tolist())}
    yy = torch.tensor([lookup[int(t)] for t in rival], device=probs.device)
    later = torch.arange(100, device=probs.device)[None, :] > yy[:, None]
    return (probs * later).sum(-1).sub((probs * ~later).sum(-1))
