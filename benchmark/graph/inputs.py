"""The input space of a task: which token sequences are valid, enumerated or sampled.

Works on encoded token ids (BOS first), so datasets, verification and ground truth all draw from
one definition. Sampling is seeded and uses numpy's Generator, so it is the same on every machine.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def space_size(n_symbols: int, length: int, kind: str) -> int:
    if kind == "product":
        return n_symbols ** length
    return math.perm(n_symbols, length)


def enumerate_inputs(symbol_ids, length: int, kind: str, bos_id: int) -> np.ndarray:
    """Every valid input [N, 1 + length], in a fixed (lexicographic) order."""
    it = (itertools.product(symbol_ids, repeat=length) if kind == "product"
          else itertools.permutations(symbol_ids, length))
    body = np.array(list(it), dtype=np.int64).reshape(-1, length)
    return np.concatenate([np.full((len(body), 1), bos_id, dtype=np.int64), body], axis=1)


def sample_inputs(symbol_ids, length: int, kind: str, bos_id: int, n: int,
                  rng: np.random.Generator) -> np.ndarray:
    """n valid inputs drawn uniformly with replacement [n, 1 + length]."""
    ids = np.asarray(symbol_ids, dtype=np.int64)
    if kind == "product":
        body = ids[rng.integers(0, len(ids), size=(n, length))]
    else:
        body = ids[np.argsort(rng.random((n, len(ids))), axis=1)[:, :length]]
    return np.concatenate([np.full((n, 1), bos_id, dtype=np.int64), body], axis=1)


def sample_different(clean: np.ndarray, symbol_ids, kind: str, bos_id: int,
                     rng: np.random.Generator) -> np.ndarray:
    """For each clean input, a uniformly drawn valid input that differs from it."""
    out = sample_inputs(symbol_ids, clean.shape[1] - 1, kind, bos_id, len(clean), rng)
    if space_size(len(symbol_ids), clean.shape[1] - 1, kind) < 2:
        raise ValueError("the input space has a single element: no corrupted input exists")
    same = (out == clean).all(axis=1)
    while same.any():
        out[same] = sample_inputs(symbol_ids, clean.shape[1] - 1, kind, bos_id,
                                  int(same.sum()), rng)
        same = (out == clean).all(axis=1)
    return out


def verification_inputs(symbol_ids, length: int, kind: str, bos_id: int, limit: int,
                        seed: int = 0) -> tuple[np.ndarray, bool]:
    """All inputs when there are at most `limit`, else a seeded sample; and whether exhaustive."""
    if space_size(len(symbol_ids), length, kind) <= limit:
        return enumerate_inputs(symbol_ids, length, kind, bos_id), True
    rng = np.random.default_rng(seed)
    return np.unique(sample_inputs(symbol_ids, length, kind, bos_id, limit, rng), axis=0), False
