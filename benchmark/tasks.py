"""A task by its name: loading, listing and keying dispatch here to the backend that owns it (a
Tracr task, `reverse`; a prompt task on a language model, `ioi@tiny_gpt2`, whose name
benchmark.core.task_names parses).

Torch-free at import (the backends are imported on first use): the workflow's planning uses it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from benchmark.core.task_names import is_lm_task

def list_tasks() -> list[str]:
    """The registered Tracr tasks (prompt tasks on models: benchmark.backends.lm.task.list_lm_tasks)."""
    from benchmark.core.registry import TASKS
    return TASKS.names()


def load_task(name: str, *, cache: str | Path | None = None, device: str = "cpu"):
    """The task `name`, from its backend: a Tracr task compiled and verified on first use, or
    `<prompt task>@<model>` (e.g. `ioi@tiny_gpt2`) with its model trained here or loaded. The
    same interface either way; unknown names list the known ones."""
    if is_lm_task(name):
        from benchmark.backends.lm.task import load_lm_task
        return load_lm_task(name, cache=cache, device=device)
    from benchmark.backends.tracr.task import load_tracr_task
    return load_tracr_task(name, cache=cache, device=device)


@lru_cache(maxsize=None)
def task_key(name: str) -> str:
    """The key of task `name`'s model and data: changes when anything that decides them does."""
    if is_lm_task(name):
        from benchmark.backends.lm.task import lm_task_key
        return lm_task_key(name)
    from benchmark.backends.tracr.task import tracr_task_key
    return tracr_task_key(name)
