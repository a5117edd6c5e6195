"""The masked forward: exact with every edge kept, correct ablations, differentiable masks."""
import pytest
import torch

from benchmark import list_tasks
from benchmark.circuit import Recording, ablated_outputs, run_circuit


@pytest.mark.parametrize("name", list_tasks())
def test_full_circuit_equals_plain_model_exactly(get_task, name):
    task = get_task(name)
    n = 300 if task.graph.n_edges < 500 else 60
    model, data = task.model, task.dataset(n=n, seed=1).discovery
    plain = model(data.clean)
    assert torch.equal(plain, model.reference_forward(data.clean))
    ones = torch.ones(task.graph.n_edges)
    for kind in ("zero", "resample", "mean"):
        ablated = ablated_outputs(model, kind, data.clean, data.corrupted)
        for mask in (ones, ones.expand(len(data), -1)):
            diff = (run_circuit(model, data.clean, mask, ablated) - plain).abs().max().item()
            assert diff == 0.0, f"{name} {kind}: max |diff| = {diff}"


def test_empty_circuit_zero_ablation_ignores_input(get_task):
    task = get_task("reverse")
    data = task.dataset(n=50, seed=0).discovery
    out = run_circuit(task.model, data.clean, torch.zeros(task.graph.n_edges))
    assert torch.allclose(out, out[:1].expand_as(out))


@pytest.mark.parametrize("name", ["reverse", "xproportion", "sort"])
def test_empty_circuit_resample_equals_corrupted_run(get_task, name):
    """With every edge ablated, every reader sees only corrupted writer outputs."""
    task = get_task(name)
    data = task.dataset(n=200, seed=2).discovery
    ablated = ablated_outputs(task.model, "resample", data.clean, data.corrupted)
    out = run_circuit(task.model, data.clean, torch.zeros(task.graph.n_edges), ablated)
    assert torch.allclose(out, task.model(data.corrupted), atol=1e-5)


def test_mean_ablation_uses_reference_mean(get_task):
    task = get_task("xproportion")
    data = task.dataset(n=100, seed=0).discovery
    mean = ablated_outputs(task.model, "mean", data.clean)
    assert mean.shape[1] == 1
    rec = Recording()
    run_circuit(task.model, data.clean, record=rec)
    assert torch.allclose(mean[0, 0], rec.writers[0].mean(0))


def test_masks_are_differentiable(get_task):
    task = get_task("reverse")
    data = task.dataset(n=64, seed=0).discovery
    mask = torch.ones(task.graph.n_edges, requires_grad=True)
    out = run_circuit(task.model, data.clean, mask * 0.5 + 0.5)
    out[:, 1:].softmax(-1).max(-1).values.sum().backward()
    grad = mask.grad
    assert torch.isfinite(grad).all()
    assert grad[task.graph.edge_to_index["a3.h0->logits"]] != 0


def test_partial_run_from_recording_matches_full_run(get_task):
    task = get_task("reverse")
    data = task.dataset(n=100, seed=0).discovery
    ablated = ablated_outputs(task.model, "resample", data.clean, data.corrupted)
    mask = torch.ones(task.graph.n_edges)
    rec = Recording()
    run_circuit(task.model, data.clean, mask, ablated, record=rec)
    mask[task.graph.edge_to_index["m2->a3.h0<q>"]] = 0.0
    g = task.graph.group_of_edge("m2->a3.h0<q>")
    partial = run_circuit(task.model, data.clean, mask, ablated, start=rec, start_group=g)
    assert torch.equal(partial, run_circuit(task.model, data.clean, mask, ablated))


def test_resample_needs_paired_inputs(get_task):
    task = get_task("reverse")
    data = task.dataset(n=10, seed=0).discovery
    with pytest.raises(ValueError, match="corrupted"):
        ablated_outputs(task.model, "resample", data.clean, None)
    with pytest.raises(ValueError, match="unknown ablation"):
        ablated_outputs(task.model, "noise", data.clean, data.corrupted)
