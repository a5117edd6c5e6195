"""Seeded datasets of clean inputs with paired corrupted inputs, split for discovery and evaluation.

The two splits come from independent random streams of one seed, so a method that sees the
discovery split learns nothing of the evaluation draws. When the input space is large enough the
evaluation inputs are also kept disjoint from the discovery inputs; for tiny spaces (reverse has
81 inputs) both splits necessarily draw from the same inputs, with replacement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.graph.inputs import sample_different, sample_inputs, space_size

MAX_EXAMPLES = 100_000


@dataclass(frozen=True)
class Split:
    clean: torch.Tensor      # [n, 1 + length] token ids, BOS first (prompts: right-padded)
    corrupted: torch.Tensor  # [n, 1 + length], each row a different valid input
    # prompt tasks: the answer's and the rival's token ids [n], for the task's own metric
    answer: torch.Tensor | None = None
    rival: torch.Tensor | None = None

    def __len__(self):
        return len(self.clean)

    def tensors(self) -> tuple:
        """The split's tensors in field order, without the absent ones (Split(*tensors()))."""
        return tuple(t for t in (self.clean, self.corrupted, self.answer, self.rival)
                     if t is not None)

    def to(self, device) -> "Split":
        return Split(*(t.to(device) for t in self.tensors()))

    def batches(self, size: int):
        for i in range(0, len(self), size):
            yield Split(*(t[i:i + size] for t in self.tensors()))


@dataclass(frozen=True)
class TaskData:
    task: str
    seed: int
    discovery: Split
    evaluation: Split


def make_dataset(task: str, symbol_ids, length: int, kind: str, bos_id: int, n: int, seed: int,
                 n_eval: int | None = None) -> TaskData:
    n_eval = n if n_eval is None else n_eval
    for name, value in (("n", n), ("n_eval", n_eval)):
        if not 1 <= value <= MAX_EXAMPLES:
            raise ValueError(f"{name}={value}: example counts go from 1 to {MAX_EXAMPLES:,}")
    disc_rng = np.random.default_rng([seed, 0])
    eval_rng = np.random.default_rng([seed, 1])
    clean = sample_inputs(symbol_ids, length, kind, bos_id, n, disc_rng)
    corrupted = sample_different(clean, symbol_ids, kind, bos_id, disc_rng)
    ev_clean = sample_inputs(symbol_ids, length, kind, bos_id, n_eval, eval_rng)
    if space_size(len(symbol_ids), length, kind) >= 4 * (n + n_eval):
        seen = {row.tobytes() for row in clean}
        clash = np.array([row.tobytes() in seen for row in ev_clean])
        while clash.any():
            ev_clean[clash] = sample_inputs(symbol_ids, length, kind, bos_id, int(clash.sum()),
                                            eval_rng)
            clash = np.array([row.tobytes() in seen for row in ev_clean])
    ev_corrupted = sample_different(ev_clean, symbol_ids, kind, bos_id, eval_rng)
    t = torch.from_numpy
    return TaskData(task, seed, Split(t(clean), t(corrupted)), Split(t(ev_clean), t(ev_corrupted)))
