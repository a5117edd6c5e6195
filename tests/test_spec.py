"""Stage 0, task descriptions: TaskSpec rejects inconsistent tasks, naming the problem."""
import dataclasses

import pytest
from task_lists import looped_tasks

from benchmark.backends.tracr.spec import TaskSpec
from benchmark.core.registry import TASKS


def _spec(**kw):
    base = dict(name="t", program=lambda: None, vocab=(1, 2), max_seq_len=5, length=4,
                output="categorical")
    return TaskSpec(**{**base, **kw})


@pytest.mark.parametrize("kw,message", [
    ({"output": "text"}, "categorical"),
    ({"output": "Categorical"}, "'numerical'"),
    ({"length": 6}, "max_seq_len 5"),
    ({"length": 0}, "between 1"),
    ({"inputs": "distinct", "vocab": (1, 2, 3)}, "distinct tokens"),
    ({"inputs": "sorted"}, "product"),
    ({"vocab": (1, "BOS")}, "reserved"),
    ({"vocab": ("BOS",), "length": 1}, "BOS"),
])
def test_invalid_specs(kw, message):
    with pytest.raises(ValueError, match=message) as err:
        _spec(**kw)
    assert "'t'" in str(err.value)  # the error names the task


def test_valid_specs():
    spec = _spec()
    assert (spec.length, spec.inputs, spec.output) == (4, "product", "categorical")
    assert _spec(inputs="distinct", vocab=(1, 2, 3, 4)).inputs == "distinct"
    assert _spec(output="numerical", length=5).length == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.length = 3


@pytest.mark.parametrize("name", looped_tasks())
def test_registered_specs_are_consistent(name):
    spec = TASKS.get(name)
    assert spec.name == name and callable(spec.program)
    assert 1 <= spec.length <= spec.max_seq_len
    assert "BOS" not in spec.vocab and len(set(spec.vocab)) == len(spec.vocab)
