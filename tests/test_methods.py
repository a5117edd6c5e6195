"""Each method recovers (or ranks) the Tracr ground truths it should, on the reference tasks."""
import numpy as np
import pytest
import torch

from benchmark.discovery import discover, make_problem
from benchmark.protocol import Recording
from benchmark.scoring.recovery import roc_auc


@pytest.mark.parametrize("task_name", ["reverse", "xproportion"])
@pytest.mark.parametrize("ablation", ["zero", "resample"])
def test_acdc_small_threshold_recovers_ground_truth(get_task, task_name, ablation):
    task = get_task(task_name)
    for seed in (0, 1):
        result, _, _ = discover(task, "acdc", {"threshold": 0.001}, n=500, seed=seed,
                                ablation=ablation)
        assert result.circuit == task.ground_truth(ablation)
        assert result.counters.forward_passes > 10 and result.counters.backward_passes == 0


@pytest.mark.parametrize("task_name", ["reverse", "xproportion"])
def test_acdc_large_threshold_prunes_more(get_task, task_name):
    task = get_task(task_name)
    small, _, _ = discover(task, "acdc", {"threshold": 0.001}, n=300, seed=0)
    large, _, _ = discover(task, "acdc", {"threshold": 100.0}, n=300, seed=0)
    assert len(large.circuit) < len(small.circuit)


# EAP's linear estimate is exactly 0 for a few ground-truth edges of reverse (the attention
# value path at layer 0): they tie with the edges that matter not at all, and ties count half
# (scoring.comparable), which puts reverse at 0.907
@pytest.mark.parametrize("method,minimum", [("eap", 0.9), ("eap_ig", 0.9)])
@pytest.mark.parametrize("task_name", ["reverse", "xproportion"])
def test_attribution_ranks_zero_ground_truth(get_task, method, minimum, task_name):
    task = get_task(task_name)
    result, _, _ = discover(task, method, {}, n=500, seed=0, ablation="zero")
    gt = task.ground_truth("zero")
    labels = [e in gt for e in task.graph.edges]
    assert result.ranking == "abs"  # signed effects, ranked by |score|
    auc = roc_auc(np.abs(result.scores), labels)  # canonical order
    print(f"{method} {task_name} zero AUROC = {auc:.4f}")
    assert auc >= minimum


def test_eap_counts_two_forwards_one_backward(get_task):
    task = get_task("reverse")
    result, _, _ = discover(task, "eap", {}, n=200, seed=0, ablation="resample")
    c = result.counters
    # clean run, corrupted run, gradient run; one backward
    assert (c.forward_passes, c.backward_passes) == (3, 1)


def test_eap_batches_do_not_change_scores(get_task):
    task = get_task("xproportion")
    a, _, _ = discover(task, "eap", {"batch_size": 1000}, n=400, seed=3, ablation="resample")
    b, _, _ = discover(task, "eap", {"batch_size": 64}, n=400, seed=3, ablation="resample")
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6, atol=1e-9)


def test_eap_ig_one_step_equals_eap(get_task):
    task = get_task("reverse")
    a, _, _ = discover(task, "eap", {}, n=200, seed=0)
    b, _, _ = discover(task, "eap_ig", {"steps": 1}, n=200, seed=0)
    a, b = a.score_dict(), b.score_dict()
    for e in task.graph.edges:
        assert a[e] == pytest.approx(b[e], rel=1e-6, abs=1e-12)


def _scores_at_ablated_embeddings(task, n: int) -> np.ndarray:
    """EAP's scores with the gradient taken where the embeddings are the ablated (corrupted)
    ones, alpha = 0, written out: (ablated - clean) . dL/d(reader input)."""
    problem = make_problem(task, n=n, seed=0, ablation="resample", device=torch.device("cpu"))
    graph, data = task.graph, problem.data
    clean = Recording()
    with torch.no_grad():
        full = problem.forward(data.clean, record=clean)
        ablated = problem.ablated(data)
    embeddings = tuple(a.clone().requires_grad_() for a in ablated[:len(graph.input_writers)])
    rec = Recording()
    out = problem.forward(data.clean, record=rec, embeddings=embeddings)
    grads = torch.autograd.grad(problem.task_loss(full, out), rec.group_inputs)
    delta = ablated - torch.stack(clean.writers)
    scores = np.zeros(graph.n_edges)
    for group, grad in zip(graph.groups, grads):  # the loss is a mean: grad is per example / B
        s = torch.einsum("wbsd,pbsd->wp", delta[:group.n_writers_before], grad)
        scores[group.edge_index.numpy()] = s.double().numpy()
    return scores


def test_eap_ig_mib_points_start_at_the_ablated_end(get_task):
    """points="mib" samples alpha = k / steps at k = 0..steps-1 (MIB's EAP-IG-inputs), "ours"
    at k = 1..steps: at 2 steps they share alpha 1/2 and differ in alpha 0 against alpha 1."""
    task = get_task("reverse")

    def run(method="eap_ig", **params):
        return discover(task, method, params, n=200, seed=0, ablation="resample")[0].scores
    mib, ours = run(steps=2, points="mib"), run(steps=2)
    assert np.abs(mib - ours).max() > 0.05
    at_zero = _scores_at_ablated_embeddings(task, n=200)
    np.testing.assert_allclose(run(steps=1, points="mib"), at_zero, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(2 * mib - 2 * ours, at_zero - run("eap"), rtol=1e-4, atol=1e-6)


def test_random_is_seeded(get_task):
    task = get_task("reverse")
    a, _, _ = discover(task, "random", {}, n=10, seed=0)
    b, _, _ = discover(task, "random", {}, n=10, seed=1)
    assert not np.array_equal(a.scores, b.scores)
