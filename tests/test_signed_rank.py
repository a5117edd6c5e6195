"""The exact signed-rank p-value equals scipy's where scipy enumerates every sign flip, with and
without ties, and is deterministic where scipy would sample."""
import numpy as np
import pytest
from scipy.stats import wilcoxon

from benchmark.report.signed_rank import signed_rank_p


@pytest.mark.parametrize("n", [2, 5, 9, 13, 25])
def test_equals_scipy_exact_without_ties(n):
    d = np.random.default_rng(n).normal(size=n) + 0.4
    assert signed_rank_p(d) == pytest.approx(wilcoxon(d, method="exact").pvalue, abs=1e-12)


@pytest.mark.parametrize("n", [6, 10, 13])
def test_equals_scipy_enumeration_with_ties_and_zeros(n):
    d = np.round(np.random.default_rng(n).normal(size=n) + 0.5)  # ties and zeros
    assert (d == 0).any() or len(set(np.abs(d))) < n
    assert signed_rank_p(d) == pytest.approx(wilcoxon(d, zero_method="wilcox").pvalue,
                                             abs=1e-12)


def test_edge_cases_and_determinism():
    assert signed_rank_p([0.0, 0.0]) == 1.0
    assert np.isnan(signed_rank_p([]))
    assert signed_rank_p([1.0, 2.0, 3.0]) == 0.25  # every sign +: 2 / 2^3
    d = np.round(np.random.default_rng(1).normal(size=30), 1)  # 30 cells with ties
    assert signed_rank_p(d) == signed_rank_p(d.copy())
