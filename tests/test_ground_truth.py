"""Stage 4, ground truth: exact edge lists for the reference tasks, validated for every task.

The validation here is independent of benchmark.backends.tracr.ground_truth: it re-runs the masked forward from
scratch (no cached partial runs) on the task's own inputs and clean/corrupted pairs.
"""
import pytest
import torch
from task_lists import looped_tasks

from benchmark.backends.tracr.build import ground_truth_inputs
from benchmark.core.conventions import EDGE_CONVENTIONS as CONVENTIONS  # a Tracr task has these
from benchmark.graph.circuit import ablated_outputs, run_circuit
from benchmark.graph.metrics import changed_examples

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
COUNTS = {"reverse": (15, 11, 2), "xproportion": (7, 5, 3)}  # DESIGN.md section 3


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_ground_truths(get_task, name):
    task = get_task(name)
    for convention, edges in EXPECTED[name].items():
        assert task.ground_truth(convention) == frozenset(edges), convention
        # stored in canonical edge order
        assert task.meta["ground_truth"][convention] == edges, convention
    assert tuple(len(EXPECTED[name][c]) for c in CONVENTIONS) == COUNTS[name]
    assert task.meta["ground_truth"]["pruned_as_redundant"] == {"zero": [], "resample": []}


CHUNK = 512  # inputs per masked run when searching for a witness


class Inputs:
    """One convention's inputs (the task's inputs, or clean halves of the resample pairs), what
    ablated edges carry, and the full model's outputs on them."""

    def __init__(self, task, tokens, ablated):
        self.task, self.tokens, self.ablated = task, tokens, ablated
        with torch.no_grad():
            self.full = task.model(tokens)
        # a fixed shuffle, so that witnesses of all kinds turn up in the first chunks
        self.order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(0))

    def changed(self, edges, rows=None) -> bool:
        """Does keeping only `edges` (the others ablated) change any non-BOS answer?"""
        task = self.task
        rows = slice(None) if rows is None else rows
        ablated = None if self.ablated is None else self.ablated[:, rows]
        with torch.no_grad():
            out = run_circuit(task.model, self.tokens[rows], task.graph.mask_from_edges(edges),
                              ablated)
        return bool(changed_examples(self.full[rows], out, task.output_kind,
                                     task.spec.numerical_atol).any())

    def witness(self, edges) -> bool:
        """changed(edges), stopping at the first chunk of inputs that shows a change."""
        return any(self.changed(edges, self.order[i:i + CHUNK])
                   for i in range(0, len(self.tokens), CHUNK))


@pytest.fixture(scope="module")
def gt_inputs(get_task):
    cache = {}

    def get(name, convention):
        if name not in cache:
            task = get_task(name)
            tokens, clean, corrupted = ground_truth_inputs(task.spec, task.meta)
            assert torch.equal(clean[:, 0], tokens[:1, 0].expand(len(clean)))
            assert (clean != corrupted).any(dim=1).all()
            with torch.no_grad():
                resampled = ablated_outputs(task.model, "resample", clean, corrupted)
            plain = Inputs(task, tokens, None)
            cache[name] = {"structural": plain, "zero": plain,
                           "resample": Inputs(task, clean, resampled)}
        return cache[name][convention]

    return get


@pytest.mark.parametrize("name", looped_tasks())
def test_conventions_nest(get_task, name):
    task = get_task(name)
    if "structural" not in task.conventions:
        pytest.skip(f"{name} is a trained model: every weight is non-zero, so it has no "
                    "structural ground truth to nest in")
    structural = task.ground_truth("structural")
    assert structural <= set(task.graph.edges)
    assert task.ground_truth("zero") <= structural
    assert task.ground_truth("resample") <= structural
    assert task.ground_truth("zero"), "an empty circuit cannot reproduce a task"
    assert any(e.endswith("->logits") for e in task.ground_truth("zero"))


@pytest.mark.parametrize("name", looped_tasks())
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_ground_truth_is_sufficient(get_task, gt_inputs, name, convention):
    task = get_task(name)
    if convention not in task.conventions:
        pytest.skip(f"{name} has no {convention} ground truth (a planted model keeps only the "
                    "conventions that validate)")
    inputs = gt_inputs(name, convention)
    edges = task.ground_truth(convention)
    assert not inputs.changed(edges), f"{convention} not sufficient"
    # an empty ground truth only when the task's answers never depend on the ablated parts
    # (length under resample ablation: every input has the same length)
    assert inputs.witness(frozenset()) == bool(edges)


@pytest.mark.parametrize("name", looped_tasks())
@pytest.mark.parametrize("convention", ["zero", "resample"])
def test_ground_truth_is_minimal(get_task, gt_inputs, name, convention):
    task = get_task(name)
    if convention not in task.conventions:
        pytest.skip(f"{name} has no {convention} ground truth (a planted model keeps only the "
                    "conventions that validate)")
    inputs = gt_inputs(name, convention)
    edges = task.ground_truth(convention)
    for e in sorted(edges):
        assert inputs.witness(edges - {e}), f"{convention}: {e} not needed"


def test_structural_edges_carry_shared_dims(get_task):
    """Structural = writer's non-zero output dims overlap the port's non-zero input dims."""
    task = get_task("xproportion")
    model, labels = task.model, task.meta["residual_labels"]
    for edge in task.graph.edges:
        writer, port = edge.split("->")
        shared = model.write_dims(writer) & model.read_dims(port)
        assert (edge in task.ground_truth("structural")) == bool(shared), edge
    m0 = {labels[d] for d in model.write_dims("m0")}
    assert m0 and m0 <= {labels[d] for d in model.read_dims("a1.h0<v>")}


def test_unknown_convention(get_task):
    with pytest.raises(KeyError) as err:
        get_task("reverse").ground_truth("mean")
    msg = str(err.value)
    assert "'mean'" in msg and all(c in msg for c in CONVENTIONS)
