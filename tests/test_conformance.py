"""Every registered method honours the protocol: exact coverage of its level's units (every
edge, or every node for a node-level method), determinism, and no ground truth reachable from
what it is given."""
import dataclasses

import numpy as np
import pytest
import torch

from benchmark.core.registry import METHODS
from benchmark.discovery import list_methods, make_problem

FAST = {"edge_pruning": {"steps": 60}, "acdc": {"threshold": 0.01},
        "subnetwork_probing": {"steps": 60}}


def _external_file(task) -> dict:
    """A method that reads a file (from_file) gets an MIB circuit file of the task's graph:
    fixed scores, so that two runs must agree."""
    import tempfile
    from pathlib import Path

    from benchmark.graph.mib_format import MibCircuit, mib_cfg, write_mib
    path = Path(tempfile.mkdtemp()) / f"{task.name}.json"
    scores = np.linspace(-1.0, 1.0, task.graph.n_edges)
    write_mib(path, task.graph, MibCircuit(frozenset(), frozenset(), scores),
              mib_cfg(task.graph, task.model.d_model))
    return {"path": str(path)}


def _run(task, name, seed):
    cls = METHODS.get(name)
    problem = make_problem(task, n=64, seed=seed, ablation="resample", device=torch.device("cpu"))
    extra = _external_file(task) if name == "from_file" else {}
    return cls().run(problem, cls.params(task.name, **FAST.get(name, {}), **extra)), problem


@pytest.mark.parametrize("name", list_methods())
def test_output_covers_exactly_the_graph(get_task, name):
    task = get_task("xproportion")
    result, _ = _run(task, name, seed=0)
    cls = METHODS.get(name)
    assert result.kind == cls.output
    assert result.level in ("edge", "node")
    # the units of its level: graph.edges, or graph.nodes (writers, then logits)
    units = task.graph.edges if result.level == "edge" else task.graph.nodes
    if result.kind == "scores":  # a float64 vector in canonical order, whatever the method gave
        assert result.scores.dtype == np.float64 and result.scores.shape == (len(units),)
        assert list(result.score_dict()) == units
    else:
        assert result.circuit <= set(units)
    assert result.counters.wall_seconds > 0


@pytest.mark.parametrize("name", list_methods())
def test_same_seed_same_output(get_task, name):
    task = get_task("xproportion")
    a, _ = _run(task, name, seed=5)
    b, _ = _run(task, name, seed=5)
    assert a.circuit == b.circuit
    assert (a.scores is None) == (b.scores is None)
    if a.scores is not None:
        assert np.array_equal(a.scores, b.scores)


@pytest.mark.parametrize("name", list_methods())
def test_declares_protocol_fields(name):
    cls = METHODS.get(name)
    assert cls.name == name and isinstance(cls.version, str) and cls.output in ("scores", "circuit")
    assert dataclasses.is_dataclass(cls.Params)
    assert cls.Params.__dataclass_params__.frozen, "Params must be a frozen dataclass"


def _reachable(obj, depth=0, seen=None):
    """Every object reachable from obj through attributes, dicts and sequences (bounded)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 6:
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, dict):
        children = list(obj.keys()) + list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif isinstance(obj, torch.nn.Module):
        children = list(obj.__dict__.values())
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        children = list(vars(obj).values())
    else:
        children = []
    for child in children:
        if isinstance(child, (str, int, float, bool, torch.Tensor)) or child is None:
            if isinstance(child, str):
                yield child
            continue
        yield from _reachable(child, depth + 1, seen)


@pytest.mark.parametrize("name", ["reverse", "hist_planted"])
def test_problem_holds_no_ground_truth(get_task, name):
    task = get_task(name)
    problem = make_problem(task, n=16, seed=0, ablation="zero", device=torch.device("cpu"))
    truths = [task.ground_truth(c) for c in task.conventions]
    truths += [task.node_ground_truth(c) for c in task.node_conventions]
    for obj in _reachable(problem):
        assert obj is not task, "the problem must not expose the task"
        if isinstance(obj, str):
            assert "ground_truth" not in obj and obj != "planted"
        if isinstance(obj, (set, frozenset)) and obj:
            assert obj not in truths
    assert not hasattr(problem, "task")
