"""Ground truths: exact edge lists for the reference tasks, validated properties for every task."""
import pytest
import torch

from benchmark import list_tasks
from benchmark.circuit import ablated_outputs, run_circuit
from benchmark.metrics import changed_examples
from tasks.build import ground_truth_inputs

EXPECTED = {
    "reverse": {
        "structural": ["tok_embeds->a0.h0<q>", "tok_embeds->a0.h0<k>", "tok_embeds->a0.h0<v>",
                       "tok_embeds->m0", "a0.h0->m0", "tok_embeds->m1", "pos_embeds->m1",
                       "m0->m1", "m1->m2", "tok_embeds->a3.h0<q>", "m2->a3.h0<q>",
                       "tok_embeds->a3.h0<k>", "pos_embeds->a3.h0<k>", "tok_embeds->a3.h0<v>",
                       "a3.h0->logits"],
        "zero": ["tok_embeds->a0.h0<v>", "tok_embeds->m0", "a0.h0->m0", "tok_embeds->m1",
                 "pos_embeds->m1", "m0->m1", "m1->m2", "m2->a3.h0<q>", "pos_embeds->a3.h0<k>",
                 "tok_embeds->a3.h0<v>", "a3.h0->logits"],
        "resample": ["tok_embeds->a3.h0<v>", "a3.h0->logits"],
    },
    "xproportion": {
        "structural": ["tok_embeds->m0", "tok_embeds->a1.h0<q>", "pos_embeds->a1.h0<q>",
                       "tok_embeds->a1.h0<k>", "pos_embeds->a1.h0<k>", "m0->a1.h0<v>",
                       "a1.h0->logits"],
        "zero": ["tok_embeds->m0", "pos_embeds->a1.h0<q>", "pos_embeds->a1.h0<k>",
                 "m0->a1.h0<v>", "a1.h0->logits"],
        "resample": ["tok_embeds->m0", "m0->a1.h0<v>", "a1.h0->logits"],
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_ground_truths(get_task, name):
    task = get_task(name)
    for convention, edges in EXPECTED[name].items():
        assert task.ground_truth(convention) == frozenset(edges), convention


def _changes(task, edges, tokens, ablated):
    with torch.no_grad():
        full = task.model(tokens)
        out = run_circuit(task.model, tokens, task.graph.mask_from_edges(edges), ablated)
    return bool(changed_examples(full, out, task.output_kind, task.spec.numerical_atol).any())


@pytest.mark.parametrize("name", list_tasks())
def test_ground_truth_is_sufficient_and_minimal(get_task, name):
    task = get_task(name)
    tokens, clean, corrupted = ground_truth_inputs(task.spec, task.meta)
    structural = task.ground_truth("structural")
    assert task.ground_truth("zero") <= structural
    assert task.ground_truth("resample") <= structural
    resampled = ablated_outputs(task.model, "resample", clean, corrupted)
    assert not _changes(task, structural, tokens, None)
    for convention, inputs, ablated in (("zero", tokens, None), ("resample", clean, resampled)):
        edges = task.ground_truth(convention)
        assert not _changes(task, edges, inputs, ablated), f"{convention} not sufficient"
        if task.graph.n_edges > 200:
            continue  # checked when built; re-checking every edge of big graphs takes minutes
        for e in edges:
            assert _changes(task, edges - {e}, inputs, ablated), f"{convention}: {e} not needed"


def test_unknown_convention(get_task):
    with pytest.raises(KeyError, match="structural"):
        get_task("reverse").ground_truth("mean")
