"""Seeded datasets and the task's encode/predict helpers."""
import pytest
import torch


def test_seeded_and_shaped(get_task):
    task = get_task("reverse")
    a, b = task.dataset(n=1000, seed=3), task.dataset(n=1000, seed=3)
    assert torch.equal(a.discovery.clean, b.discovery.clean)
    assert torch.equal(a.evaluation.corrupted, b.evaluation.corrupted)
    c = task.dataset(n=1000, seed=4)
    assert not torch.equal(a.discovery.clean, c.discovery.clean)
    assert not torch.equal(a.discovery.clean, a.evaluation.clean)


def test_full_size_and_pairs(get_task):
    task = get_task("reverse")
    data = task.dataset(n=100_000, seed=0)
    clean, corrupted = data.discovery.clean, data.discovery.corrupted
    assert clean.shape == (100_000, task.spec.length + 1)
    assert (clean[:, 0] == task.meta["bos_id"]).all()
    assert (clean != corrupted).any(dim=1).all()
    assert set(clean[:, 1:].unique().tolist()) == set(task.meta["symbol_ids"])


def test_distinct_inputs(get_task):
    task = get_task("sort_unique")
    body = task.dataset(n=500, seed=0).discovery.corrupted[:, 1:]
    assert all(len(set(row)) == len(row) for row in body.tolist())


def test_large_spaces_keep_splits_disjoint(get_task):
    task = get_task("sort_unique")  # 120 inputs: too few to separate 10 + 10 draws? no: 120>=80
    data = task.dataset(n=10, seed=0)
    seen = {tuple(r) for r in data.discovery.clean.tolist()}
    assert not seen & {tuple(r) for r in data.evaluation.clean.tolist()}


@pytest.mark.parametrize("n", [0, 100_001])
def test_size_limits(get_task, n):
    with pytest.raises(ValueError, match="100,000"):
        get_task("reverse").dataset(n=n, seed=0)


def test_predict_and_encode(get_task):
    task = get_task("reverse")
    assert task.predict([["BOS", 1, 2, 3]]) == [[3, 2, 1]]
    assert task.predict([[1, 2, 3, 3], ["BOS", 2, 1]]) == [[3, 3, 2, 1], [1, 2]]
    with pytest.raises(ValueError, match="7"):
        task.encode([["BOS", 1, 7]])
    x = get_task("xproportion").predict([["BOS", "x", "w", "x", "y"]])[0]
    assert x == pytest.approx([1.0, 0.5, 2 / 3, 0.5], abs=1e-3)
