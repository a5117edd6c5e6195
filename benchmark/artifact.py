"""A compiled model on disk: weights as arrays plus JSON metadata, written atomically.

The artifact is what crosses the boundary between the jax world (compilation, done once) and the
torch world (everything else), so it holds plain numpy arrays and JSON only.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


@dataclass
class Artifact:
    meta: dict
    arrays: dict  # name -> np.ndarray (float32)

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        meta = dict(self.meta, format_version=FORMAT_VERSION)
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                 **self.arrays)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "Artifact":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["__meta__"]).decode())
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: artifact format {meta.get('format_version')} is not "
                             f"{FORMAT_VERSION}; delete it so that it is compiled again")
        return cls(meta=meta, arrays=arrays)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
