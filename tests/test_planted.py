"""A trained model with a planted circuit (hist_planted): its answers, its ground truth
(validated here independently of the build: sufficient, each edge necessary, nothing off the
circuit changes an answer under resample ablation), its interchange behaviour, determinism."""
import pytest
import torch

from benchmark.backends.tracr import planted as P
from benchmark.backends.tracr.build import ground_truth_inputs
from benchmark.backends.tracr.planted_train import Alignment, train
from benchmark.backends.tracr.spec import planted
from benchmark.core.registry import TASKS
from benchmark.graph.circuit import ablated_outputs, run_circuit, writer_outputs

NAME = "hist_planted"
RESAMPLE = ["tok_embeds->a0.h1<q>", "tok_embeds->a0.h1<k>", "a0.h1->m1", "m1->logits"]


@pytest.fixture(scope="module")
def both(get_task):
    """(planted task, compiled hist, tokens, clean, corrupted, planted resampled outputs)."""
    task, hist = get_task(NAME), get_task("hist")
    tokens, clean, corrupted = ground_truth_inputs(task.spec, task.meta)
    with torch.no_grad():
        resampled = ablated_outputs(task.model, "resample", clean, corrupted)
    return task, hist, tokens, clean, corrupted, resampled


def _answers(model, tokens, mask=None, ablated=None):
    with torch.no_grad():
        return run_circuit(model, tokens, mask, ablated)[:, 1:].argmax(-1)


def test_planted_model_reproduces_compiled_answers(both):
    task, hist, tokens, *_ = both
    inputs = [[task._decoding[int(t)] for t in row[1:]] for row in tokens]
    ours, theirs = task.predict(inputs), hist.predict(inputs)
    accuracy = sum(a == b for r, s in zip(ours, theirs) for a, b in zip(r, s)) / (4 * len(ours))
    assert accuracy >= task.spec.planted.min_accuracy
    assert accuracy == task.meta["planted"]["accuracy"] == 1.0
    assert task.family == "planted" and task.conventions == ("resample",)
    assert (task.model.n_layers, task.model.n_heads, task.model.d_model) == (2, 2, 12)


def test_ground_truth_is_the_aligned_compiled_one(both):
    task, hist = both[:2]
    assert sorted(task.ground_truth("resample")) == sorted(RESAMPLE)
    al = Alignment(hist.model, task.model, dict(task.spec.planted.align))
    assert {al.low_edge(e) for e in hist.ground_truth("resample")} == set(RESAMPLE)
    assert task.meta["ground_truth"]["planted_nodes"] == ["tok_embeds", "a0.h1", "m1", "logits"]


def test_ground_truth_sufficient_and_each_edge_necessary(both):
    task, _, _, clean, _, resampled = both
    graph, full = task.graph, _answers(task.model, clean)
    truth = task.ground_truth("resample")
    kept = _answers(task.model, clean, graph.mask_from_edges(truth), resampled)
    assert torch.equal(kept, full), "keeping only the ground truth changes answers"
    for edge in truth:
        dropped = _answers(task.model, clean, graph.mask_from_edges(truth - {edge}), resampled)
        assert not torch.equal(dropped, full), f"{edge} is not necessary"


def test_no_off_circuit_edge_changes_an_answer(both):
    """Strictness, edge by edge under resample ablation; the build's record agrees."""
    task, _, _, clean, _, resampled = both
    graph, full = task.graph, _answers(task.model, clean)
    truth = task.ground_truth("resample")
    for edge in graph.edges:
        if edge not in truth:
            mask = torch.ones(graph.n_edges)
            mask[graph.edge_to_index[edge]] = 0.0
            assert torch.equal(_answers(task.model, clean, mask, resampled), full), edge
    record = task.meta["off_circuit"]["resample"]
    assert record["edges"] == graph.n_edges - len(truth)
    assert record["edges_changing_an_answer"] == 0


def test_interchanging_aligned_nodes_matches_compiled_model(both):
    """IIT: a compiled node's output taken from the paired input changes the planted model's
    answers exactly as it changes the compiled model's."""
    task, hist, _, clean, corrupted, resampled = both
    hist_ablated = writer_outputs(hist.model, corrupted).detach()
    for high, low in task.spec.planted.align:
        hm, lm = torch.ones(hist.graph.n_edges), torch.ones(task.graph.n_edges)
        hm[hist.graph.outgoing(high)] = 0.0
        lm[task.graph.outgoing(low)] = 0.0
        expected = _answers(hist.model, clean, hm, hist_ablated)
        assert not torch.equal(expected, _answers(hist.model, clean))  # a real intervention
        assert torch.equal(_answers(task.model, clean, lm, resampled), expected), high


def _short_run(seed, get_task):
    spec = planted(TASKS.get("hist"), n_layers=2, n_heads=2, d_model=12, seed=seed, steps=15,
                   batch=32, align=(("a0.h0", "a0.h1"), ("m0", "m1")))
    hist = get_task("hist")
    _, clean, corrupted = ground_truth_inputs(spec, hist.meta)
    low = P.trainable(P.initial_artifact(hist.meta, hist.artifact.arrays, spec.planted))
    al = Alignment(hist.model, low, dict(spec.planted.align))
    train(hist.model, low, al, hist.meta["ground_truth"]["resample"], clean, corrupted,
          spec.planted)
    return P.weights_of(low)


def test_training_is_deterministic(get_task):
    a, b, c = (_short_run(s, get_task) for s in (0, 0, 1))
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)


def test_build_refuses_a_model_below_the_accuracy_floor():
    spec = planted(TASKS.get("hist"), n_layers=2, n_heads=2, d_model=12, steps=1, batch=8,
                   align=(("a0.h0", "a0.h1"), ("m0", "m1")))
    with pytest.raises(P.PlantingError, match="agrees with the compiled one"):
        P.build_planted_artifact(spec)


def test_alignment_must_keep_graph_order(get_task):
    hist = get_task("hist")
    spec = planted(TASKS.get("hist"), n_layers=2, n_heads=2, d_model=12,
                   align=(("a0.h0", "a1.h0"), ("m0", "m0")))
    low = P.trainable(P.initial_artifact(hist.meta, hist.artifact.arrays, spec.planted))
    with pytest.raises(ValueError, match="breaks the order"):
        Alignment(hist.model, low, dict(spec.planted.align))
