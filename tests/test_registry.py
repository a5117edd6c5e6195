"""Tasks register from tasks/tracr/; unknown and duplicate names are clear errors."""
import pytest

from benchmark import list_tasks, load_task
from benchmark.backends.tracr.spec import TaskSpec
from benchmark.core.registry import TASKS, Registry, RegistryError
from tasks.tracr.reverse import TASK as REVERSE

REQUIRED = {"reverse", "xproportion", "sort", "sort_unique", "hist", "length", "pair_balance",
            "shuffle_dyck"}


def _fresh():
    return Registry("task", "tasks.tracr", "TASK", "circuitbench.tasks")


def test_registered_tasks():
    names = list_tasks()
    assert REQUIRED <= set(names)
    assert names == sorted(names) and len(names) == len(set(names))
    for name in names:
        assert TASKS.get(name).name == name


def test_unknown_task_lists_known():
    with pytest.raises(RegistryError) as err:
        load_task("revers")
    msg = str(err.value)
    assert "'revers'" in msg and "known tasks" in msg
    assert "reverse" in msg and "xproportion" in msg
    assert isinstance(err.value, KeyError)


def test_duplicate_task_is_an_error():
    registry = _fresh()
    with pytest.raises(RegistryError, match="registered twice") as err:
        registry.register(REVERSE, "a test")
    assert "tasks.tracr.reverse" in str(err.value) and "a test" in str(err.value)


def test_duplicate_on_the_global_registry_is_undone():
    try:
        with pytest.raises(RegistryError, match="registered twice"):
            TASKS.register(REVERSE, "a test")
    finally:
        TASKS.reset()
    assert TASKS.get("reverse") is REVERSE


def test_runtime_registration():
    registry = _fresh()
    spec = TaskSpec(name="toy_task", program=lambda: None, vocab=(1, 2), max_seq_len=3, length=2,
                    output="categorical")
    assert registry.register(spec) is spec
    assert registry.get("toy_task") is spec and "toy_task" in registry.names()
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register(spec)
    registry.reset()
    assert "toy_task" not in registry.names()
    assert "toy_task" not in list_tasks()  # the global registry never saw it
