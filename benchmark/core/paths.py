"""Where cached models live: one definition for both backends (compiled Tracr artifacts, trained
and local language models), set by CIRCUITBENCH_CACHE or a stage's `cache` argument."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("CIRCUITBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "circuitbench"
