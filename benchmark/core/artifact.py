"""A compiled model on disk: weights as arrays plus JSON metadata, written atomically.

The artifact is what crosses the boundary between the jax world (compilation, done once) and the
torch world (everything else), so it holds plain numpy arrays and JSON only.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 2


class ArtifactError(ValueError):
    """A cached artifact that cannot be trusted: unreadable, of another format, or edited."""


def content_fingerprint(meta: dict, arrays: dict) -> str:
    """Hash of the metadata (without its fingerprint) and every array's name, dtype, shape
    and bytes: any edit of a cached artifact shows up as a mismatch."""
    h = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "fingerprint"},
                                  sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}{a.dtype}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


@dataclass
class Artifact:
    meta: dict
    arrays: dict  # name -> np.ndarray (float32)

    def save(self, path: str | Path) -> None:
        buf = io.BytesIO()
        meta = json.loads(json.dumps(dict(self.meta, format_version=FORMAT_VERSION)))
        meta["fingerprint"] = content_fingerprint(meta, self.arrays)
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                 **self.arrays)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "Artifact":
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["__meta__"]).decode())
                arrays = {k: data[k] for k in data.files if k != "__meta__"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ArtifactError(f"artifact {path} is unreadable ({type(err).__name__}: "
                                f"{err})") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(f"artifact {path} has format {meta.get('format_version')}, "
                                f"not {FORMAT_VERSION}")
        if meta.get("fingerprint") != content_fingerprint(meta, arrays):
            raise ArtifactError(f"artifact {path} does not match its fingerprint: it was "
                                "edited or damaged after it was written")
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
