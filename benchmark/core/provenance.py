"""Where a result came from: the git commit and package versions, without importing torch.

Its own small module so that the report (which imports no torch) and the discover stage share
one definition, and so that the report's code key does not take in the discover stage.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.metadata import version as package_version
from pathlib import Path

RUN_PACKAGES = ("torch", "tracr-pypi", "jax", "circuitbench", "snakemake")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_provenance(config: dict) -> dict:
    """The leaderboard's footer: the commit, the config's hash, the packages' versions."""
    return {"git_commit": git_commit(), "config_hash": config_hash(config),
            "versions": {p: package_version(p) for p in RUN_PACKAGES}}
