"""A circuit record's scores: a float64 `.npy` file beside the JSON record, tied to it by hash.

At the 0.7-3.9M edges of 1B-13B models a score per edge is 30-160 MB as JSON; as a `.npy`
vector in canonical order it is 8 bytes an edge, written and read in a fraction of a second.
The record `<stem>.json` holds, under `scores`, the side file's name (`<stem>.scores.npy`, always
beside it: the name is for people), its sha256, shape and dtype, so that a side file that is
missing, truncated, edited or another record's is detected when the record is read.
Writers write the side file first, then the record (both atomically): a record never points to
a side file that is not there yet.
"""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from benchmark.core.artifact import atomic_write_bytes

SUFFIX = ".scores.npy"


class ScoreFileError(ValueError):
    """A side file that does not match its record: missing, unreadable, or of other content."""


def scores_path(record_path: str | os.PathLike) -> str:
    """The side file of a record: `a/b.json` -> `a/b.scores.npy`."""
    path = os.fspath(record_path)
    stem = path[:-len(".json")] if path.endswith(".json") else path
    return stem + SUFFIX


def is_score_file_entry(entry) -> bool:
    """Whether a record's `scores` is a side-file entry (a dict with a sha256), not scores."""
    return isinstance(entry, dict) and isinstance(entry.get("sha256"), str)


def write_scores(record_path: str | os.PathLike, values) -> dict:
    """Write `values` (1-D, float64) atomically beside the record; the record's `scores` entry."""
    a = np.asarray(values)
    if a.dtype != np.float64 or a.ndim != 1:
        raise ValueError(f"scores to write must be a 1-D float64 vector, got {a.dtype} "
                         f"{a.shape}")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    data = buf.getbuffer()
    path = scores_path(record_path)
    atomic_write_bytes(path, data)
    return {"file": os.path.basename(path), "sha256": hashlib.sha256(data).hexdigest(),
            "shape": [int(a.shape[0])], "dtype": "float64"}


def read_scores(record_path: str | os.PathLike, entry: dict) -> np.ndarray:
    """The scores a record's entry describes, or ScoreFileError when the side file is missing
    or does not match the entry (hash, shape, dtype)."""
    path = scores_path(record_path)
    shape = entry.get("shape")
    if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int)):
        raise ScoreFileError(f"the scores entry has no valid shape ({shape!r})")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ScoreFileError(f"scores file {path} is missing or unreadable "
                             f"({type(err).__name__})") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ScoreFileError(f"scores file {path} does not match the record's sha256 "
                             f"(truncated, edited or another record's)")
    try:
        values = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ScoreFileError(f"scores file {path} is not a .npy array ({err})") from None
    if values.dtype != np.float64 or list(values.shape) != shape:
        raise ScoreFileError(f"scores file {path} holds {values.dtype} {list(values.shape)}, "
                             f"not float64 {shape}")
    return values
