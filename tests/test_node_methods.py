"""Node-level methods: HISP is the mean absolute per-example gradient w.r.t. the node masks,
NAP the signed first-order effect of ablating a node, subnetwork probing a trained node circuit
that recovers the Tracr ground truth's writers and shrinks as lambda_ grows."""
import pytest
import torch

from benchmark.discovery import discover, make_problem
from benchmark.graph.data import Split
from benchmark.graph.nodes import nodes_of_edges
from methods.hisp import HISP
from methods.nap import NAP


def _problem(task, ablation, n=24, seed=0):
    return make_problem(task, n=n, seed=seed, ablation=ablation, device=torch.device("cpu"))


def _per_example_losses(problem, node_mask_of):
    """L_x for each example x of the split, one example at a time, with the [n_nodes] mask
    node_mask_of(x) (a path independent of the batched per-example mask)."""
    data, losses = problem.data, []
    for x in range(len(data)):
        one = Split(data.clean[x:x + 1], data.corrupted[x:x + 1])
        ablated = problem.ablated(one)
        with torch.no_grad():
            full = problem.forward_nodes(one.clean)
        out = problem.forward_nodes(one.clean, node_mask_of(x), ablated)
        losses.append(problem.objective(full, out, one)[0])
    return losses


@pytest.mark.parametrize("task_name,ablation", [("reverse", "zero"),
                                                ("xproportion", "resample")])
def test_hisp_is_the_mean_absolute_per_example_gradient(get_task, task_name, ablation):
    task = get_task(task_name)
    problem = _problem(task, ablation)
    scores = HISP().run(problem, HISP.params()).scores
    n_nodes, n_writers = task.graph.n_nodes, len(task.graph.writers)
    masks = [torch.ones(n_nodes, requires_grad=True) for _ in range(len(problem.data))]
    grads = [torch.autograd.grad(loss, [masks[x]])[0][:n_writers]
             for x, loss in enumerate(_per_example_losses(problem, masks.__getitem__))]
    expected = torch.stack(grads).abs().double().mean(0)
    assert expected.max() > 0.1  # the check is not vacuous: some nodes matter
    torch.testing.assert_close(torch.as_tensor(scores[:n_writers]), expected,
                               rtol=1e-5, atol=1e-7)


def test_hisp_layer_normalisation_gives_each_layer_unit_norm(get_task):
    task = get_task("reverse")
    p = _problem(task, "zero")
    raw = HISP().run(p, HISP.params()).score_dict()
    normed = HISP().run(_problem(task, "zero"), HISP.params(normalize_layers=True)).score_dict()
    for layer in (["tok_embeds", "pos_embeds"], ["a3.h0", "m3"]):
        norm = sum(raw[w] ** 2 for w in layer) ** 0.5
        assert norm > 0
        assert [normed[w] for w in layer] == pytest.approx([raw[w] / norm for w in layer])


@pytest.mark.parametrize("ablation", ["zero", "resample"])
def test_nap_is_the_first_order_effect_of_ablating_a_node(get_task, ablation):
    """score_n ~ mean_x (L_x(m_n = 1 - eps) - L_x(m = 1)) / eps: positive when removing the
    node raises the loss, i.e. the node helps."""
    task = get_task("reverse")
    problem = _problem(task, ablation)
    result = NAP().run(problem, NAP.params())
    assert result.level == "node" and result.ranking == "abs"
    scores, eps = result.score_dict(), 1e-3
    base = torch.stack(_per_example_losses(problem, lambda x: torch.ones(task.graph.n_nodes)))
    for node in ("tok_embeds", "a3.h0", "m2"):
        mask = torch.ones(task.graph.n_nodes)
        mask[task.graph.node_to_index[node]] = 1 - eps
        with torch.no_grad():
            moved = torch.stack(_per_example_losses(problem, lambda x: mask))
        finite = float((moved - base).mean()) / eps
        assert scores[node] == pytest.approx(finite, rel=0.02, abs=1e-3), node
    # the output head helps: removing it raises the loss (the full ablation says so too)
    assert scores["a3.h0"] > 0.1
    mask = torch.ones(task.graph.n_nodes)
    mask[task.graph.node_to_index["a3.h0"]] = 0.0
    with torch.no_grad():
        removed = torch.stack(_per_example_losses(problem, lambda x: mask))
    assert float((removed - base).mean()) > 0


def test_nap_and_hisp_share_their_gradient(get_task):
    """|NAP| <= HISP node by node (|mean| <= mean of |.|): equal where every example's gradient
    has one sign (xproportion under zero ablation: removing a node only lowers the output),
    smaller where the signs differ (resample: a corrupted token may raise or lower it)."""
    task = get_task("xproportion")
    for ablation, signs_differ in (("zero", False), ("resample", True)):
        nap = NAP().run(_problem(task, ablation), NAP.params()).scores
        hisp = HISP().run(_problem(task, ablation), HISP.params()).scores
        assert (abs(nap) <= hisp + 1e-12).all()
        assert (abs(nap) < hisp - 1e-3).any() == signs_differ, ablation


def _writers_of_zero_truth(task):
    return nodes_of_edges(task.graph, task.ground_truth("zero"))


@pytest.mark.parametrize("task_name", ["xproportion", "reverse"])
def test_subnetwork_probing_recovers_the_zero_truths_writers(get_task, task_name):
    task = get_task(task_name)
    result, _, _ = discover(task, "subnetwork_probing", n=200, seed=0, ablation="zero")
    assert result.kind == "circuit" and result.level == "node"
    assert result.circuit == _writers_of_zero_truth(task)
    assert result.info["final_metric"] == pytest.approx(0.0, abs=1e-6)


def test_subnetwork_probing_same_seed_same_circuit(get_task):
    task = get_task("xproportion")
    runs = [discover(task, "subnetwork_probing", {"steps": 100, "lambda_": 0.0}, n=100,
                     seed=seed, ablation="zero")[0] for seed in (3, 3, 4)]
    assert runs[0].circuit == runs[1].circuit and runs[0].info == runs[1].info
    assert runs[0].info != runs[2].info  # the seed drives the init, batches and samples


def test_subnetwork_probing_circuit_shrinks_as_lambda_grows(get_task):
    task = get_task("xproportion")
    sizes = [len(discover(task, "subnetwork_probing", {"lambda_": lam}, n=200, seed=0,
                          ablation="zero")[0].circuit) for lam in (0.0, 0.01, 10.0)]
    # no penalty keeps extra nodes (a0.h0, m1: no gradient pushes them out), the default keeps
    # the 4 ground-truth writers, a large penalty keeps nothing
    assert sizes == [6, 4, 0]
