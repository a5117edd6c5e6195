"""circuitbench: a benchmark of circuit-discovery methods on transformers with known circuits."""
from benchmark.task import Task, list_tasks, load_task

__all__ = ["Task", "list_tasks", "load_task"]
