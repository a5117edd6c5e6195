"""Where a result came from: the git commit and package versions, without importing torch.

Its own small module so that the report (which imports no torch) and the discover stage share
one definition, and so that the report's code key does not take in the discover stage. The one
home of which packages' versions decide or describe what (the lists below).

The main Snakemake process asks git and the package metadata once per plan and hands the
answers to its jobs in the environment, with its other keys (benchmark/workflow/plan_keys.py);
a process that finds none there (the CLI, a test) asks itself: the same values.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from importlib.metadata import version as package_version
from pathlib import Path

# the variable in which the main Snakemake process hands its plan's keys to its jobs
PLAN_KEYS_ENV = "CIRCUITBENCH_PLAN_KEYS"

RUN_PACKAGES = ("torch", "tracr-pypi", "jax", "circuitbench", "snakemake")  # a leaderboard's
RECORD_PACKAGES = ("torch", "tracr-pypi", "circuitbench")  # a circuit record's
# decide a trained language model: part of its cache key (benchmark/backends/lm/models.py)
MODEL_PACKAGES = ("torch", "transformers", "tokenizers")
ALL_PACKAGES = tuple(dict.fromkeys(RUN_PACKAGES + RECORD_PACKAGES + MODEL_PACKAGES))


def _handed_down(kind: str) -> dict:
    """The plan's keys of `kind` in this process's environment, {} where none."""
    try:
        table = json.loads(os.environ.get(PLAN_KEYS_ENV) or "{}").get(kind)
    except (ValueError, AttributeError):  # a damaged variable costs time, never a wrong value
        return {}
    return table if isinstance(table, dict) else {}


def package_versions(names) -> dict[str, str]:
    """{package: its installed version} for `names`: the plan's, else asked here."""
    handed = _handed_down("package")
    return {p: handed[p] if isinstance(handed.get(p), str) else package_version(p)
            for p in names}


def git_commit() -> str:
    """The commit of the code (`head_commit`): the plan's, else asked here."""
    commit = _handed_down("git").get("commit")
    return commit if isinstance(commit, str) else head_commit()


def head_commit() -> str:
    """The commit this code's checkout is at, asked of git ("unknown" outside one)."""
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
            "versions": package_versions(RUN_PACKAGES)}
