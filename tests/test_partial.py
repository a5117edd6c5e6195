"""Positions where a RASP program is undefined (None) are excluded like BOS.

`successor_position` is None wherever the next larger token is absent: verification accepts it
(both models output tracr's null vector there), predictions say None, and metrics, agreement and
ground truth ignore those positions instead of comparing the null vector's arbitrary argmax.
"""
import itertools

import pytest
import torch

from benchmark.graph.metrics import agreement, changed_examples, defined_positions, faithfulness
from benchmark.scoring.evaluate import evaluate_circuit


def test_none_positions_verify_and_predict_as_none(get_task):
    from tracr.rasp import rasp
    task = get_task("successor_position")
    v = task.meta["verification"]
    assert v["exhaustive"] and v["n_inputs"] == 120
    assert task.meta["partial_output"] and task.partial
    inputs = [list(p) for p in itertools.permutations(task.spec.vocab, task.spec.length)]
    program = task.spec.program()
    expected = [rasp.evaluate(program, x) for x in inputs]
    assert task.predict(inputs) == expected
    assert sum(e is None for row in expected for e in row) == v["undefined_positions"] == 192


def test_tasks_without_none_are_not_partial(get_task):
    assert get_task("reverse").partial is False
    assert get_task("reverse").meta["verification"]["undefined_positions"] == 0


def _outputs():
    """Two examples, 3 positions after BOS, 2 classes; position 2 of example 0 is undefined."""
    full = torch.zeros(2, 4, 2)
    full[:, 1:, 0] = 1.0
    full[0, 2] = 0.0                      # the null vector: undefined
    circuit = full.clone()
    circuit[0, 2] = torch.tensor([0.0, 5.0])  # differs only where undefined
    return full, circuit


def test_metrics_skip_undefined_positions():
    full, circuit = _outputs()
    assert defined_positions(full, True).tolist() == [[True, False, True], [True, True, True]]
    assert defined_positions(full, False) is None
    assert float(faithfulness(full, circuit, "categorical", partial=True)) == 0.0
    assert agreement(full, circuit, "categorical", partial=True) == 1.0
    assert not changed_examples(full, circuit, "categorical", partial=True).any()
    # without the exclusion the null vector's argmax (class 0) is compared as an answer
    assert float(faithfulness(full, circuit, "categorical")) > 0
    assert agreement(full, circuit, "categorical") == pytest.approx(5 / 6)


def test_means_are_over_defined_positions_only():
    full, circuit = _outputs()
    circuit[1, 1] = torch.tensor([0.0, 1.0])  # one defined position wrong, of 5 defined
    assert agreement(full, circuit, "categorical", partial=True) == pytest.approx(4 / 5)
    kl = faithfulness(full, circuit, "categorical", partial=True)
    p = torch.log_softmax(full[1, 1].double(), -1)
    q = torch.log_softmax(circuit[1, 1].double(), -1)
    assert float(kl) == pytest.approx(float((p.exp() * (p - q)).sum()) / 5)


def test_ground_truth_and_scores_on_a_partial_task(get_task):
    task = get_task("successor_position")
    zero = task.ground_truth("zero")
    assert zero and zero <= task.ground_truth("structural")
    ev = task.dataset(300, seed=0).evaluation
    exact = evaluate_circuit(task, zero, ev, "zero")
    assert exact == {"faithfulness": 0.0, "agreement": 1.0}
    empty = evaluate_circuit(task, frozenset(), ev, "zero")
    defined = defined_positions(task.model(ev.clean), True)
    assert 0 < empty["agreement"] < 1 and empty["faithfulness"] > 0
    # agreement is a fraction of the defined positions: a multiple of 1 / their count
    count = int(defined.sum())
    assert count < defined.numel()
    assert empty["agreement"] * count == pytest.approx(round(empty["agreement"] * count))
