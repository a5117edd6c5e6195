"""Which registered tasks the tests that loop over tasks build.

Every compiled task, and one task of each other family (a compressed and a planted one: each
build trains a model, 10-70 s). The other variants validate their ground truth and accuracy
whenever they are built (the default run builds them all), and here too with
CIRCUITBENCH_SLOW=1."""
import os

from benchmark import list_tasks
from benchmark.core.registry import TASKS

REPRESENTATIVES = ("reverse_c8", "hist_planted")


def looped_tasks() -> list[str]:
    every = list_tasks()
    if os.environ.get("CIRCUITBENCH_SLOW") == "1":
        return every
    return [t for t in every
            if getattr(TASKS.get(t), "family", "compiled") == "compiled" or t in REPRESENTATIVES]
