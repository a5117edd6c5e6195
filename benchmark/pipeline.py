"""The workflow's stages as plain functions; workflow/scripts/ only unpack Snakemake's objects.

Every stage writes its outputs atomically, so an interrupted job never leaves a half-written
result. The discover stage is benchmark.discover.discover_stage (shared with the CLI), the
dataset stage benchmark.datasets.dataset_stage, the score stage benchmark.score_stage.
"""
from __future__ import annotations

import hashlib
import json

from benchmark.artifact import atomic_write_json


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def compile_stage(task_name: str, cache: str, out: str) -> None:
    from benchmark import load_task
    task = load_task(task_name, cache=cache)
    atomic_write_json(out, task.summary())


def model_stage(model: str, cache: str, out: str) -> None:
    """Train (or find in the cache) a language model of tasks/ and write its report."""
    from benchmark.lm_task import load_model
    _, _, report = load_model(model, cache)
    atomic_write_json(out, report)


def leaderboard_stage(score_files: list[str], out_dir: str, provenance: dict) -> None:
    from benchmark.leaderboard import build_leaderboard
    build_leaderboard(score_files, out_dir, provenance)


def leaderboard_job(score_files: list[str], out_dir: str, config: dict) -> None:
    """The workflow's leaderboard job: the tables, with the run's provenance."""
    leaderboard_stage(score_files, out_dir, provenance(config))


def provenance(config: dict) -> dict:
    from importlib.metadata import version
    from benchmark.discover import git_commit
    return {"git_commit": git_commit(), "config_hash": config_hash(config),
            "versions": {p: version(p) for p in ("torch", "tracr-pypi", "jax", "circuitbench",
                                                 "snakemake")}}


