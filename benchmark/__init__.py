"""circuitbench: a benchmark of circuit-discovery methods on transformers with known circuits."""
from benchmark.task import Task, list_tasks, load_task

__all__ = ["Task", "list_tasks", "load_task", "load_lm"]


def __getattr__(name):
    """`load_lm` on first use: `import benchmark` stays free of transformers."""
    if name == "load_lm":
        from benchmark.lm_load import load_lm
        return load_lm
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
