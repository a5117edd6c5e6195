"""Stage 3, the masked forward: exact with every edge kept, correct ablations, differentiable.

Why an empty circuit under resample ablation is the corrupted run: with every mask at 0 each
reader's input is the sum of the writers' outputs on the corrupted input, which is exactly the
residual stream the plain model builds on that input, so every later block also computes its
corrupted output (only the summation order can differ, hence allclose rather than equal).
"""
import pytest
import torch
from task_lists import looped_tasks

from benchmark.graph.circuit import Recording, ablated_outputs, run_circuit

TASKS = looped_tasks()


def _data(task, n=300, seed=1):
    n = n if task.graph.n_edges < 500 else n // 5
    return task.dataset(n=n, seed=seed).discovery


def _maxdiff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", TASKS)
def test_full_circuit_equals_plain_model_exactly(get_task, name):
    task = get_task(name)
    model, data = task.model, _data(task)
    with torch.no_grad():
        plain = model(data.clean)
        assert plain.shape == (len(data), task.spec.length + 1, len(task.meta["output_dims"]))
        assert torch.equal(plain, model.reference_forward(data.clean))
        ones = torch.ones(task.graph.n_edges)
        reference = task.dataset(n=50, seed=9).evaluation.clean
        for kind in ("zero", "resample", "mean"):
            ablated = ablated_outputs(model, kind, data.clean, data.corrupted, reference)
            for mask in (ones, ones.expand(len(data), -1).clone(), None):
                if mask is None and ablated is None:
                    continue
                out = run_circuit(model, data.clean, mask, ablated)
                diff = _maxdiff(out, plain)
                assert diff == 0.0, f"{name} {kind} mask {None if mask is None else mask.shape}"
                assert torch.equal(out, model.reference_forward(data.clean))


@pytest.mark.parametrize("name", TASKS)
def test_empty_circuit_zero_ablation_ignores_input(get_task, name):
    """Every reader, the logits included, reads an all-zero residual: outputs are exactly 0."""
    task = get_task(name)
    a, b = _data(task, n=50, seed=0), _data(task, n=50, seed=1)
    zeros = torch.zeros(task.graph.n_edges)
    with torch.no_grad():
        out_a = run_circuit(task.model, a.clean, zeros)
        out_b = run_circuit(task.model, b.corrupted, zeros)
    assert torch.equal(out_a, torch.zeros_like(out_a))
    assert torch.equal(out_a, out_b)
    assert not torch.equal(task.model(a.clean), out_a)


@pytest.mark.parametrize("name", TASKS)
def test_empty_circuit_resample_equals_corrupted_run(get_task, name):
    task = get_task(name)
    data = _data(task, n=200, seed=2)
    with torch.no_grad():
        ablated = ablated_outputs(task.model, "resample", data.clean, data.corrupted)
        out = run_circuit(task.model, data.clean, torch.zeros(task.graph.n_edges), ablated)
        corrupted = task.model(data.corrupted)
    assert torch.allclose(out, corrupted, atol=1e-5), _maxdiff(out, corrupted)
    per_example = torch.zeros(len(data), task.graph.n_edges)
    with torch.no_grad():
        out2 = run_circuit(task.model, data.clean, per_example, ablated)
    assert torch.allclose(out2, corrupted, atol=1e-5)


def test_per_example_masks_select_per_example(get_task):
    """Row i of a [B, E] mask applies to example i only."""
    task = get_task("reverse")
    data = _data(task, n=40, seed=3)
    g = task.graph
    ablated = ablated_outputs(task.model, "resample", data.clean, data.corrupted)
    keep = g.mask_from_edges(task.ground_truth("resample") - {"a3.h0->logits"})
    full = torch.ones(g.n_edges)
    rows = torch.stack([keep if i % 2 else full for i in range(len(data))])
    with torch.no_grad():
        mixed = run_circuit(task.model, data.clean, rows, ablated)
        a = run_circuit(task.model, data.clean, full, ablated)
        b = run_circuit(task.model, data.clean, keep, ablated)
    assert torch.equal(mixed[0::2], a[0::2])
    assert torch.allclose(mixed[1::2], b[1::2], atol=1e-6)
    assert not torch.allclose(a[1::2], b[1::2], atol=1e-3)  # the rows really differ


def test_single_edge_ablation_matches_hand_computation(get_task):
    """Ablating a3.h0->logits under resample: logits get the corrupted head output."""
    task = get_task("reverse")
    data = _data(task, n=60, seed=4)
    g, model = task.graph, task.model
    rec_clean, rec_corr = Recording(), Recording()
    with torch.no_grad():
        run_circuit(model, data.clean, record=rec_clean)
        run_circuit(model, data.corrupted, record=rec_corr)
        ablated = ablated_outputs(model, "resample", data.clean, data.corrupted)
        mask = torch.ones(g.n_edges)
        mask[g.edge_to_index["a3.h0->logits"]] = 0
        out = run_circuit(model, data.clean, mask, ablated)
    w = g.writer_to_index["a3.h0"]
    resid = sum(rec_clean.writers[i] for i in range(len(g.writers)) if i != w) + \
        rec_corr.writers[w]
    assert torch.allclose(out, model.unembed(resid), atol=1e-5)


def test_mean_ablation_uses_reference_mean(get_task):
    task = get_task("xproportion")
    data = task.dataset(n=100, seed=0)
    ref = data.evaluation.clean
    mean = ablated_outputs(task.model, "mean", data.discovery.clean, reference=ref)
    assert mean.shape[:2] == (len(task.graph.writers), 1)
    rec = Recording()
    run_circuit(task.model, ref, record=rec)
    for w in range(len(task.graph.writers)):
        assert torch.allclose(mean[w, 0], rec.writers[w].mean(0))


@pytest.mark.parametrize("name", ["reverse", "xproportion"])
def test_masks_are_differentiable(get_task, name):
    task = get_task(name)
    data = task.dataset(n=64, seed=0).discovery
    ablated = ablated_outputs(task.model, "resample", data.clean, data.corrupted)
    edge = "a3.h0->logits" if name == "reverse" else "a1.h0->logits"
    assert edge in task.ground_truth("resample")
    weights = torch.randn(len(data), task.spec.length, len(task.meta["output_dims"]),
                          generator=torch.Generator().manual_seed(0))
    for abl in (None, ablated):
        mask = torch.full((task.graph.n_edges,), 0.7, requires_grad=True)
        rec = Recording()
        out = run_circuit(task.model, data.clean, mask, abl, record=rec)
        (out[:, 1:] * weights).sum().backward()
        grad = mask.grad
        assert grad is not None and grad.shape == mask.shape
        assert torch.isfinite(grad).all()
        assert grad[task.graph.edge_to_index[edge]].abs() > 1e-2
        # outputs are linear in a logits edge's mask: the derivative is the writer's output
        # (in this run) minus what the ablated edge carries, through the same weighted sum
        w = task.graph.writer_to_index[edge.split("->")[0]]
        carried = rec.writers[w].detach() - (0 if abl is None else abl[w])
        expected = (task.model.unembed(carried)[:, 1:] * weights).sum()
        assert torch.allclose(grad[task.graph.edge_to_index[edge]], expected, rtol=1e-4,
                              atol=1e-5)
    # per-example masks get per-example gradients: row i only sees example i
    per_example = torch.ones(len(data), task.graph.n_edges, requires_grad=True)
    rec = Recording()
    out = run_circuit(task.model, data.clean, per_example, ablated, record=rec)
    (out[:, 1:] * weights).sum().backward()
    assert torch.isfinite(per_example.grad).all()
    carried = rec.writers[w].detach() - ablated[w]
    expected = (task.model.unembed(carried)[:, 1:] * weights).sum(dim=(1, 2))
    got = per_example.grad[:, task.graph.edge_to_index[edge]]
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert (got != 0).any()


def test_partial_run_from_recording_matches_full_run(get_task):
    task = get_task("reverse")
    data = task.dataset(n=100, seed=0).discovery
    g = task.graph
    ablated = ablated_outputs(task.model, "resample", data.clean, data.corrupted)
    base = g.mask_from_edges(task.ground_truth("structural"))
    rec = Recording()
    with torch.no_grad():
        run_circuit(task.model, data.clean, base, ablated, record=rec)
    assert len(rec.writers) == len(g.writers) and len(rec.group_inputs) == len(g.groups)
    for edge in ("tok_embeds->a0.h0<v>", "a0.h0->m0", "m2->a3.h0<q>", "a3.h0->logits"):
        mask = base.clone()
        mask[g.edge_to_index[edge]] = 0.0
        group = g.group_of_edge(edge)
        with torch.no_grad():
            partial = run_circuit(task.model, data.clean, mask, ablated, start=rec,
                                  start_group=group)
            full = run_circuit(task.model, data.clean, mask, ablated)
        assert torch.equal(partial, full), edge
    with torch.no_grad():  # starting at group 0 from a recording is a full run
        again = run_circuit(task.model, data.clean, base, ablated, start=rec, start_group=0)
        assert torch.equal(again, run_circuit(task.model, data.clean, base, ablated))


def test_resample_needs_paired_inputs(get_task):
    task = get_task("reverse")
    data = task.dataset(n=10, seed=0).discovery
    with pytest.raises(ValueError, match="corrupted"):
        ablated_outputs(task.model, "resample", data.clean, None)
    with pytest.raises(ValueError, match="corrupted"):
        ablated_outputs(task.model, "resample", data.clean, data.corrupted[:5])
    with pytest.raises(ValueError, match="unknown ablation"):
        ablated_outputs(task.model, "noise", data.clean, data.corrupted)
