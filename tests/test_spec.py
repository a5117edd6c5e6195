"""TaskSpec rejects inconsistent task descriptions with errors that name the problem."""
import pytest

from tasks.spec import TaskSpec


def _spec(**kw):
    base = dict(name="t", program=lambda: None, vocab=(1, 2), max_seq_len=5, length=4,
                output="categorical")
    return TaskSpec(**{**base, **kw})


@pytest.mark.parametrize("kw,message", [
    ({"output": "text"}, "categorical"),
    ({"length": 6}, "max_seq_len"),
    ({"length": 0}, "between 1"),
    ({"inputs": "distinct", "vocab": (1, 2, 3)}, "distinct tokens"),
    ({"inputs": "sorted"}, "product"),
    ({"vocab": (1, "BOS")}, "reserved"),
])
def test_invalid_specs(kw, message):
    with pytest.raises(ValueError, match=message):
        _spec(**kw)


def test_valid_spec():
    assert _spec().length == 4
