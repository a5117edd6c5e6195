"""Stage 5, data: seeded clean/corrupted datasets and the task's encode/predict helpers."""
import pytest
import torch
from task_lists import looped_tasks


def _splits(data):
    return {"discovery": data.discovery, "evaluation": data.evaluation}


def test_same_seed_same_tensors(get_task):
    task = get_task("reverse")
    a, b = task.dataset(n=1000, seed=3), task.dataset(n=1000, seed=3)
    for name in ("discovery", "evaluation"):
        for part in ("clean", "corrupted"):
            x, y = getattr(_splits(a)[name], part), getattr(_splits(b)[name], part)
            assert x.dtype == torch.long and torch.equal(x, y), (name, part)


def test_different_seeds_differ(get_task):
    task = get_task("reverse")
    a, c = task.dataset(n=1000, seed=3), task.dataset(n=1000, seed=4)
    for name in ("discovery", "evaluation"):
        assert not torch.equal(_splits(a)[name].clean, _splits(c)[name].clean)
        assert not torch.equal(_splits(a)[name].corrupted, _splits(c)[name].corrupted)


def test_splits_differ(get_task):
    for name in ("reverse", "xproportion", "sort_unique"):
        data = get_task(name).dataset(n=500, seed=0)
        assert not torch.equal(data.discovery.clean, data.evaluation.clean)
        assert not torch.equal(data.discovery.corrupted, data.evaluation.corrupted)


def test_full_size(get_task):
    task = get_task("reverse")
    data = task.dataset(n=100_000, seed=0)
    ids = set(task.meta["symbol_ids"])
    for split in (data.discovery, data.evaluation):
        assert len(split) == 100_000
        for x in (split.clean, split.corrupted):
            assert x.shape == (100_000, task.spec.length + 1) and x.dtype == torch.long
            assert (x[:, 0] == task.meta["bos_id"]).all()
            assert set(x[:, 1:].unique().tolist()) == ids  # every symbol, no BOS in the body
        assert (split.clean != split.corrupted).any(dim=1).all()
    # 81 inputs, 100,000 draws: sampled with replacement, every input appears
    assert len({tuple(r) for r in data.discovery.clean.tolist()}) == 3 ** 4


@pytest.mark.parametrize("name", looped_tasks())
def test_every_task_pairs_different_valid_inputs(get_task, name):
    task = get_task(name)
    data = task.dataset(n=2000, seed=7, n_eval=300)
    assert (len(data.discovery), len(data.evaluation)) == (2000, 300)
    ids = set(task.meta["symbol_ids"])
    for split in (data.discovery, data.evaluation):
        assert split.clean.shape == split.corrupted.shape == (len(split), task.spec.length + 1)
        assert (split.clean != split.corrupted).any(dim=1).all()
        for x in (split.clean, split.corrupted):
            assert (x[:, 0] == task.meta["bos_id"]).all()
            assert set(x[:, 1:].unique().tolist()) <= ids


def test_distinct_inputs(get_task):
    task = get_task("sort_unique")
    assert task.spec.inputs == "distinct"
    data = task.dataset(n=2000, seed=0)
    for split in (data.discovery, data.evaluation):
        for x in (split.clean, split.corrupted):
            body = x[:, 1:]
            assert (body.sort(dim=1).values.diff(dim=1) != 0).all()


def test_large_spaces_keep_splits_disjoint(get_task):
    task = get_task("sort_unique")  # 5 * 4 * 3 * 2 = 120 inputs >= 4 * (10 + 10)
    data = task.dataset(n=10, seed=0)
    seen = {tuple(r) for r in data.discovery.clean.tolist()}
    assert not seen & {tuple(r) for r in data.evaluation.clean.tolist()}


@pytest.mark.parametrize("kw", [{"n": 0}, {"n": 100_001}, {"n": -1}, {"n": 10, "n_eval": 0},
                                {"n": 10, "n_eval": 100_001}])
def test_size_limits(get_task, kw):
    with pytest.raises(ValueError, match="100,000"):
        get_task("reverse").dataset(seed=0, **kw)


def test_predict(get_task):
    task = get_task("reverse")
    assert task.predict([["BOS", 1, 2, 3]]) == [[3, 2, 1]]
    assert task.predict([[1, 2, 3]]) == [[3, 2, 1]]  # BOS added when missing
    # mixed lengths in one call, answers in input order
    assert task.predict([[1, 2, 3, 3], ["BOS", 2, 1], [3], ["BOS", 1, 1, 2, 3]]) == \
        [[3, 3, 2, 1], [1, 2], [3], [3, 2, 1, 1]]
    assert task.predict([[1, 2, 3, 1, 2]]) == [[2, 1, 3, 2, 1]]  # max_seq_len tokens
    x = get_task("xproportion").predict([["BOS", "x", "w", "x", "y"], ["w", "w"]])
    assert x[0] == pytest.approx([1.0, 0.5, 2 / 3, 0.5], abs=1e-3)
    assert x[1] == pytest.approx([0.0, 0.0], abs=1e-3)


def test_predict_agrees_with_dataset_encoding(get_task):
    task = get_task("sort")
    clean = task.dataset(n=20, seed=0).discovery.clean
    values = [[task._decoding[int(t)] for t in row] for row in clean]
    assert torch.equal(task.encode(values), clean)
    assert task.predict(values) == task.decode_outputs(task.model(clean))


def test_encode_rejects_unknown_tokens(get_task):
    task = get_task("reverse")
    with pytest.raises(ValueError, match="7") as err:
        task.encode([["BOS", 1, 7]])
    assert "vocabulary" in str(err.value) and "[1, 2, 3]" in str(err.value)
    with pytest.raises(ValueError, match="'x'"):
        task.predict([[1, "x"]])
    with pytest.raises(ValueError, match="at most 5"):
        task.encode([[1, 2, 3, 1, 2, 3]])
    with pytest.raises(ValueError, match="one length"):
        task.encode([[1, 2], [1, 2, 3]])
