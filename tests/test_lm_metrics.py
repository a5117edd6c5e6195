"""Prompt-task metrics read the answer position and compute what their docstrings say."""
import torch

from benchmark.backends.lm.metrics import at_answer, greater_than, logit_diff


def _logits():
    torch.manual_seed(0)
    return torch.randn(3, 5, 120), torch.tensor([4, 2, 3])


def test_answer_position_is_read_per_example():
    logits, pos = _logits()
    assert torch.equal(at_answer(logits, pos)[1], logits[1, 2])


def test_logit_difference():
    logits, pos = _logits()
    answer, rival = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    expected = sum(float(logits[i, pos[i], answer[i]] - logits[i, pos[i], rival[i]])
                   for i in range(3)) / 3
    assert abs(float(logit_diff(logits, pos, answer, rival)) - expected) < 1e-5


def test_greater_than_probability_gap():
    year_ids = torch.arange(20, 120)           # token of year y is 20 + y
    logits = torch.full((2, 3, 120), -1e9)
    logits[0, 2, 20 + 60] = 0.0                # all mass on 60, start year 50: +1
    logits[1, 2, 20 + 30] = 0.0                # all mass on 30, start year 50: -1
    rival = torch.tensor([20 + 50, 20 + 50])
    pos = torch.tensor([2, 2])
    assert float(greater_than(logits[:1], pos[:1], rival[:1], year_ids)) == 1.0
    assert float(greater_than(logits, pos, rival, year_ids)) == 0.0
    logits[1, 2, 20 + 50] = 0.0                # half on 30, half on 50 (not greater): -1
    assert float(greater_than(logits[1:], pos[1:], rival[1:], year_ids)) == -1.0
