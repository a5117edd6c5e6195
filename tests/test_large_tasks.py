"""Tasks with over a million distinct inputs: what the example-count study relies on.

Their ground truth is derived on a seeded sample; it must hold on inputs never used to derive
or validate it, and their evaluation split must share no input with discovery, even at 100,000
discovery examples.
"""
import numpy as np
import pytest
import torch

from benchmark.graph.circuit import ablated_outputs, run_circuit
from benchmark.graph.inputs import sample_different, sample_inputs
from benchmark.graph.metrics import changed_examples
from benchmark.scoring.evaluate import seen_fraction

LARGE = {"reverse_large": 8 ** 7, "sort_large": 6 ** 8, "hist_large": 4 ** 10}


@pytest.mark.parametrize("name", sorted(LARGE))
def test_input_space_and_recorded_validation(get_task, name):
    task = get_task(name)
    assert task.input_space == LARGE[name] >= 10 ** 6
    v = task.meta["ground_truth_validation"]
    assert v["passed"] and v["inputs"] > 19_000 and v["pairs"] == v["inputs"]
    assert 1000 < task.meta["ground_truth_inputs"]["n_inputs"] <= 1024  # 1,024 drawn, unique


@pytest.mark.parametrize("name", sorted(LARGE))
def test_ground_truth_holds_on_inputs_never_seen(get_task, name):
    task = get_task(name)
    meta, spec = task.meta, task.spec
    rng = np.random.default_rng(12345)  # neither the derivation's (0) nor the validation's (1)
    clean = sample_inputs(meta["symbol_ids"], spec.length, spec.inputs, meta["bos_id"], 5000,
                          rng)
    corrupted = sample_different(clean, meta["symbol_ids"], spec.inputs, meta["bos_id"], rng)
    clean, corrupted = torch.from_numpy(clean), torch.from_numpy(corrupted)
    with torch.no_grad():
        full = task.model(clean)
        for convention, ablation in (("zero", "zero"), ("resample", "resample")):
            ablated = ablated_outputs(task.model, ablation, clean, corrupted)
            mask = task.graph.mask_from_edges(task.ground_truth(convention))
            out = run_circuit(task.model, clean, mask, ablated)
            changed = changed_examples(full, out, task.output_kind, spec.numerical_atol,
                                       task.partial)
            assert not changed.any(), f"{name} {convention}: {int(changed.sum())} changed"
            # and the ground truth is not trivially sufficient: the empty circuit is not
            empty = run_circuit(task.model, clean, torch.zeros(task.graph.n_edges), ablated)
            assert changed_examples(full, empty, task.output_kind, spec.numerical_atol,
                                    task.partial).any()


def test_evaluation_shares_no_input_with_discovery_at_100k(get_task):
    task = get_task("hist_large")  # the smallest space: 1,048,576 inputs
    data = task.dataset(n=100_000, seed=0, n_eval=1000)
    assert seen_fraction(data.discovery.clean, data.evaluation.clean) == 0.0
    distinct = len({bytes(r) for r in data.discovery.clean.numpy().astype("int64")})
    assert distinct > 95_000  # drawn with replacement from a million: about 95,300 distinct
