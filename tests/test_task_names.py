"""Task names: `reverse` is a Tracr task, `ioi@tiny_gpt2` a prompt task on a language model, and
benchmark/core/task_names.py is the one place that parses them (the workflow's planning included)."""
import re
from pathlib import Path

import pytest

from benchmark.core.task_names import is_lm_task, lm_task_name, model_of, parts

ROOT = Path(__file__).resolve().parents[1]


def test_names_split_into_task_and_model():
    assert parts("ioi@tiny_gpt2") == ("ioi", "tiny_gpt2")
    assert parts("reverse") == ("reverse", None)
    assert model_of("greater_than@narrow_gpt2") == "narrow_gpt2" and model_of("sort") is None
    assert is_lm_task("ioi@gpt2") and not is_lm_task("hist_large")
    assert lm_task_name("ioi", "tiny_llama") == "ioi@tiny_llama"
    assert parts(lm_task_name("ioi_t1", "gpt2")) == ("ioi_t1", "gpt2")


def test_an_lm_task_without_a_known_model_names_the_known_ones():
    from benchmark.backends.lm.task import split_name
    with pytest.raises(Exception, match="tiny_gpt2"):
        split_name("ioi@no_such_model")


def test_no_other_module_parses_the_separator():
    """A second parser is how `task@model` came to be parsed in six places."""
    parse = re.compile(r"""["']@["']\s*(not\s+)?in\b|\.(split|partition|rpartition)\(\s*["']@""")
    sources = [*ROOT.glob("benchmark/**/*.py"), *ROOT.glob("workflow/**/*.smk"),
               *ROOT.glob("workflow/**/*.py"), ROOT / "Snakefile"]
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in sources if p.name != "task_names.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if parse.search(line)]
    assert offenders == []
