"""The workflow's stages as plain functions; workflow/scripts/ only unpack Snakemake's objects.

Every stage writes its outputs atomically, so an interrupted job never leaves a half-written
result. The discover stage is benchmark.workflow.discover_stage (shared with the CLI), the
dataset stage benchmark.datasets.dataset_stage, the score stage benchmark.scoring.stage, the
leaderboard benchmark.report.leaderboard.leaderboard_job.
"""
from __future__ import annotations

from benchmark.core.artifact import atomic_write_json


def compile_stage(task_name: str, cache: str, out: str) -> None:
    from benchmark.tasks import load_task
    task = load_task(task_name, cache=cache)
    g = task.graph  # its shape: the workflow checks circuit files against it without a model
    atomic_write_json(out, dict(task.summary(), graph={
        "n_layers": g.n_layers, "n_heads": g.n_heads, "input_writers": list(g.input_writers)}))


def model_stage(model: str, cache: str, out: str) -> None:
    """Train (or find in the cache) a language model of tasks/ and write its report."""
    from benchmark.backends.lm.models import load_model
    _, _, report = load_model(model, cache)
    atomic_write_json(out, report)
