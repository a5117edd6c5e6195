"""circuitbench: a benchmark of circuit-discovery methods on transformers with known circuits.

Everything is imported on first use: `import benchmark.workflow.job_server` (what a workflow job runs
first) must not pay for torch."""
__all__ = ["Task", "list_tasks", "load_task", "load_lm"]


def __getattr__(name):
    if name in ("list_tasks", "load_task"):
        from benchmark import tasks
        return getattr(tasks, name)
    if name == "Task":
        from benchmark.backends.tracr.task import Task
        return Task
    if name == "load_lm":
        from benchmark.backends.lm.load import load_lm
        return load_lm
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
