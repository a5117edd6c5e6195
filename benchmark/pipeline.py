"""The workflow's stages as plain functions; workflow/scripts/ only unpack Snakemake's objects.

Every stage writes its outputs atomically, so an interrupted job never leaves a half-written
result. The discover stage is benchmark.discover.discover_stage (shared with the CLI), the
dataset stage benchmark.datasets.dataset_stage.
"""
from __future__ import annotations

import hashlib
import json

import pandas as pd

from benchmark.artifact import atomic_write_json, atomic_write_text


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def compile_stage(task_name: str, cache: str, out: str) -> None:
    from benchmark import load_task
    from benchmark.cli import task_summary
    task = load_task(task_name, cache=cache)
    atomic_write_json(out, task_summary(task))


def score_stage(task_name: str, cache: str, circuits: list[str], out: str, *,
                sparsities, eval_examples: int, config_hash_: str = "") -> None:
    from benchmark import load_task
    from benchmark.evaluate import COLUMNS, score_record
    task = load_task(task_name, cache=cache)
    rows = []
    for path in circuits:
        record = read_circuit(path, task_name)
        rows.extend(score_record(task, record, sparsities=sparsities,
                                 eval_examples=eval_examples, config_hash=config_hash_))
    atomic_write_text(out, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))


CIRCUIT_FIELDS = ("task", "method", "params", "seed", "n_examples", "ablation", "kind", "status")


def read_circuit(path: str, task_name: str) -> dict:
    """A circuit file, checked: readable JSON with the fields scoring needs, of this task."""
    fix = f"delete {path} and rerun: Snakemake then reruns that discovery"
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"circuit file {path} is unreadable ({err}); {fix}") from None
    missing = [k for k in CIRCUIT_FIELDS if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"circuit file {path} lacks {', '.join(missing)}; {fix}")
    if record["task"] != task_name:
        raise ValueError(f"circuit file {path} is of task {record['task']!r}, not "
                         f"{task_name!r}; {fix}")
    return record


def leaderboard_stage(score_files: list[str], out_dir: str, provenance: dict) -> None:
    from benchmark.leaderboard import build_leaderboard
    build_leaderboard(score_files, out_dir, provenance)


def provenance(config: dict) -> dict:
    from importlib.metadata import version
    from benchmark.discover import git_commit
    return {"git_commit": git_commit(), "config_hash": config_hash(config),
            "versions": {p: version(p) for p in ("torch", "tracr-pypi", "jax", "circuitbench",
                                                 "snakemake")}}


