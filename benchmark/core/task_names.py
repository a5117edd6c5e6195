"""The one place that knows how a task is named: a Tracr task by its name (`reverse`), a prompt
task on a language model as `<prompt task>@<model>` (`ioi@tiny_gpt2`).

Torch-free and in the core layer, so that the workflow's planning, the CLI, the task dispatch
(benchmark.tasks) and the language-model backend parse names with the same code;
benchmark.backends.lm.task.split_name turns the two parts into their registered specs.
"""
from __future__ import annotations

SEP = "@"


def is_lm_task(name: str) -> bool:
    """Whether `name` is a prompt task on a language model (it has a model part)."""
    return SEP in name


def parts(name: str) -> tuple[str, str | None]:
    """(task name, model name or None): `ioi@tiny_gpt2` -> ("ioi", "tiny_gpt2"),
    `reverse` -> ("reverse", None)."""
    task, sep, model = name.partition(SEP)
    return task, (model if sep else None)


def model_of(name: str) -> str | None:
    """The language model a task runs on, None for a Tracr task."""
    return parts(name)[1]


def lm_task_name(task: str, model: str) -> str:
    return f"{task}{SEP}{model}"
