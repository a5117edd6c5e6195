"""Tasks register from tasks/; unknown and duplicate names are clear errors."""
import pytest

from benchmark import list_tasks, load_task
from benchmark.registry import TASKS, RegistryError
from tasks.reverse import TASK as REVERSE

REQUIRED = {"reverse", "xproportion", "sort", "sort_unique", "hist", "length", "pair_balance",
            "shuffle_dyck"}


def test_registered_tasks():
    assert REQUIRED <= set(list_tasks())


def test_unknown_task_lists_known():
    with pytest.raises(RegistryError) as err:
        load_task("revers")
    assert "known tasks" in str(err.value) and "reverse" in str(err.value)
    assert "xproportion" in str(err.value)


def test_duplicate_task_is_an_error():
    try:
        with pytest.raises(RegistryError, match="registered twice"):
            TASKS.register(REVERSE, "a test")
    finally:
        TASKS.reset()
