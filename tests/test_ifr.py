"""Information Flow Routes: the proximity share of each writer in a port's input, read at the
positions the outputs read, and scores whose threshold at tau is the paper's greedy graph."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from benchmark.backends.lm.spec import LMSpec
from benchmark.core.registry import LM_MODELS
from benchmark.discovery import discover, make_problem
from methods.ifr import importances, proximity, route_scores


@pytest.fixture(scope="module")
def lm_task(task_cache):
    """IOI on a GPT-2 of ioi@tiny_gpt2's shape trained for a few steps (plumbing, not skill)."""
    from benchmark import load_task
    LM_MODELS.register(LMSpec(name="test_ifr_gpt2", family="gpt2", tasks=("ioi",),
                              train_tasks=("ioi",), steps=40, batch_size=16,
                              min_accuracy=0.0, min_corruption_kl=0.0))
    yield load_task("ioi@test_ifr_gpt2")
    LM_MODELS.reset()


def test_proximity_by_hand():
    whole = torch.tensor([1.0, 1.0])
    parts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    # ||x||_1 = 2; ||x - part||_1 = 1, 1, 3 (clipped to 0), 0
    assert proximity(whole, parts).tolist() == [1.0, 1.0, 0.0, 2.0]


def _greedy(graph, importance, tau):
    """The paper's build: from the logits back, keep each edge above tau into a node already
    in the graph and add its writer."""
    into = {}
    for i, edge in enumerate(graph.edges):
        writer, port = graph.split(edge)
        into.setdefault(graph.node_of(port), []).append((i, writer))
    kept, frontier, seen = set(), ["logits"], {"logits"}
    while frontier:
        for i, writer in into.get(frontier.pop(), []):
            if importance[i] > tau:
                kept.add(i)
                if writer not in seen:
                    seen.add(writer)
                    frontier.append(writer)
    return kept


@pytest.mark.parametrize("name", ["reverse", "xproportion", "lm"])
def test_threshold_of_scores_is_the_greedy_graph(get_task, lm_task, name):
    task = lm_task if name == "lm" else get_task(name)
    result, _, _ = discover(task, "ifr", {}, n=100, seed=0)
    problem = make_problem(task, n=100, seed=0, ablation="zero", device=torch.device("cpu"))
    importance = importances(problem, 1000).numpy()
    scores = result.scores
    np.testing.assert_array_equal(scores, route_scores(task.graph, torch.tensor(importance)))
    assert result.ranking == "signed" and scores.min() >= 0 and scores.max() <= 1 + 1e-12
    # the bottleneck matters: some edges above a threshold are not reachable from the logits
    assert (scores < importance - 1e-9).any()
    values = np.unique(scores)
    taus = [0.0, *values, *((values[1:] + values[:-1]) / 2)]
    for tau in taus:
        assert _greedy(task.graph, importance, tau) == set(np.flatnonzero(scores > tau)), tau


def test_importance_is_a_share_of_each_port_forward_only(get_task):
    task = get_task("reverse")
    result, _, _ = discover(task, "ifr", {"batch_size": 40}, n=100, seed=0, ablation="resample")
    problem = make_problem(task, n=100, seed=0, ablation="zero", device=torch.device("cpu"))
    importance = importances(problem, 1000)
    for group in task.graph.groups:  # each port's writers share 1 at every position
        np.testing.assert_allclose(importance[group.edge_index].sum(0), 1.0, rtol=1e-9)
    # three batches of plain forwards, no gradient, no ablation: the same under any ablation
    c = result.counters
    assert (c.forward_passes, c.backward_passes) == (3, 0)
    other, _, _ = discover(task, "ifr", {}, n=100, seed=0, ablation="zero")
    np.testing.assert_allclose(result.scores, other.scores, rtol=1e-12, atol=1e-15)


def test_readout_positions(get_task, lm_task):
    tracr = make_problem(get_task("reverse"), n=20, seed=0, ablation="zero",
                         device=torch.device("cpu"))
    read = tracr.readout_positions(tracr.data.clean)
    assert read.dtype == torch.bool and not read[:, 0].any() and read[:, 1:].all()
    lm = make_problem(lm_task, n=20, seed=0, ablation="zero", device=torch.device("cpu"))
    tokens = lm.data.clean
    read = lm.readout_positions(tokens)
    assert (read.sum(1) == 1).all()  # one position a prompt: the last real token
    pos = read.long().argmax(1)
    pad = lm_task.model.pad_id
    assert (tokens[torch.arange(len(tokens)), pos] != pad).all()
    after = torch.arange(tokens.shape[1])[None] > pos[:, None]
    assert (tokens[after] == pad).all() and after.any()  # padded prompts read before the end
