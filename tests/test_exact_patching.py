"""Exact activation patching: each edge's score is the task loss's change when that edge alone
is ablated, equal to a brute-force masked forward of the whole model, whatever the batching;
where the loss is linear in an edge (a numerical task's readout), EAP's estimate is exact."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from benchmark.backends.lm.spec import LMSpec
from benchmark.core.registry import LM_MODELS, METHODS
from benchmark.discovery import discover, make_problem


@pytest.fixture(scope="module")
def lm_task(task_cache):
    """IOI on a GPT-2 of ioi@tiny_gpt2's shape trained for a few steps (plumbing, not skill)."""
    from benchmark import load_task
    LM_MODELS.register(LMSpec(name="test_patching_gpt2", family="gpt2", tasks=("ioi",),
                              train_tasks=("ioi",), steps=40, batch_size=16,
                              min_accuracy=0.0, min_corruption_kl=0.0))
    yield load_task("ioi@test_patching_gpt2")
    LM_MODELS.reset()


def _brute_force(problem, edge: int) -> float:
    """L(full circuit without `edge`) - L(full), one whole masked forward from the embeddings."""
    data = problem.data
    with torch.no_grad():
        ablated = problem.ablated(data)
        full = problem.forward(data.clean)
        mask = torch.ones(problem.graph.n_edges)
        mask[edge] = 0.0
        out = problem.forward(data.clean, mask, ablated)
        return float(problem.task_loss(full, out) - problem.task_loss(full, full))


def _exact(task, ablation, **params):
    cls = METHODS.get("exact_patching")
    problem = make_problem(task, n=100, seed=0, ablation=ablation, device=torch.device("cpu"))
    return cls().run(problem, cls.params(task.name, **params)), problem


# the batch repeated for 2 edges a forward; split into row slices of 64 and 36; data batches
BATCHINGS = [{}, {"examples_per_pass": 250}, {"examples_per_pass": 64},
             {"batch_size": 30, "examples_per_pass": 70}]


@pytest.mark.parametrize("params", BATCHINGS)
@pytest.mark.parametrize("name,ablation", [("reverse", "resample"), ("xproportion", "zero"),
                                           ("reverse", "mean"), ("lm", "zero")])
def test_scores_equal_brute_force_masked_forward(get_task, lm_task, name, ablation, params):
    task = lm_task if name == "lm" else get_task(name)
    result, problem = _exact(task, ablation, **params)
    assert result.ranking == "abs" and result.counters.backward_passes == 0
    graph = problem.graph
    # an edge into each kind of reader: first attention layer, an MLP, a later head, logits
    picks = [0, graph.groups[1].edge_index[-1, 0], graph.groups[2].edge_index[1, -1],
             graph.groups[-1].edge_index[-2, 0]]
    expected = [_brute_force(problem, int(e)) for e in picks]
    assert max(abs(x) for x in expected) > 1e-3  # some of them matter
    # up to float32 rounding of the losses (an LM's is about 6 nats: ulp 5e-7)
    np.testing.assert_allclose(result.scores[picks], expected, rtol=1e-5, atol=2e-6)


def test_counts_one_partial_forward_per_edge_group_chunk(get_task):
    task = get_task("reverse")
    result, problem = _exact(task, "resample", examples_per_pass=250)  # 2 edges a forward
    chunks = sum(-(-group.edge_index.numel() // 2) for group in problem.graph.groups)
    c = result.counters
    # the clean run, the corrupted run, then one forward (from its group on) per 2 edges
    assert (c.forward_passes, c.backward_passes) == (2 + chunks, 0)
    assert c.forward_examples == 100 * (2 + task.graph.n_edges)


def test_eap_is_exact_where_the_loss_is_linear_in_the_edge(get_task):
    """xproportion's loss is the mean output, a linear readout of the logits' input: for the
    edges into `logits`, EAP's first-order term is the whole effect, sign included."""
    task = get_task("xproportion")
    exact, _, _ = discover(task, "exact_patching", {}, n=200, seed=0, ablation="zero")
    eap, _, _ = discover(task, "eap", {}, n=200, seed=0, ablation="zero")
    into_logits = task.graph.groups[-1].edge_index[:, 0].numpy()
    assert np.abs(exact.scores[into_logits]).max() > 0.1
    np.testing.assert_allclose(eap.scores[into_logits], exact.scores[into_logits],
                               rtol=1e-5, atol=1e-7)
