"""Tests of sparsemlp.approx.sparse_product (hierarchical PALM4MSA) and its nonzero split."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import approx
from sparsemlp.approx import sparse_factors
from sparsemlp.approx.sparse_factors import nnz_split


def product_of_sparse(seed, n=100, density=0.05):
    rng = np.random.default_rng(seed)
    S1, S2 = (sp.random(n, n, density=density, random_state=rng, data_rvs=rng.standard_normal)
              for _ in range(2))
    return (S1 @ S2).toarray()


def test_budget_51x10(seed):
    W = np.random.default_rng(seed).standard_normal((51, 10))
    a = approx.sparse_product(W, share=0.2, n_iter=30)
    assert sum(f.nnz for f in a.factors) == a.n_params <= 102
    assert [f.shape for f in a.factors] == [(51, 51), (51, 10)]
    np.testing.assert_allclose(a.dense(), a.factors[0].toarray() @ a.factors[1].toarray(), atol=1e-12)


def test_product_of_two_sparse_factors(seed):
    W = product_of_sparse(seed)
    a = approx.sparse_product(W, share=0.1, n_factors=2)
    lr = approx.low_rank(W, share=0.1)
    assert a.n_params <= 1000
    assert a.rel_error <= 0.35
    assert a.rel_error <= 0.5 * lr.rel_error
    assert a.rel_error == pytest.approx(np.linalg.norm(a.dense() - W) / np.linalg.norm(W), rel=1e-9)


def test_palm_error_never_increases():
    """PALM with a valid step bound and the optimal scale decreases the error at every sweep."""
    W = product_of_sparse(7, n=40, density=0.15)
    errs = [sparse_factors._hierarchical(W, [120, 120], 40, k, 0.0)[2] for k in range(1, 25)]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(errs, errs[1:]))
    assert errs[-1] < 0.9 * errs[0]


@pytest.mark.parametrize("K", [2, 3, 5])
def test_linear_split(K):
    parts = nnz_split(1000, 100, K, "linear")
    assert parts[-1] == 100 and sum(parts) <= 1000 and sum(parts) >= 1000 - K
    steps = np.diff(parts)
    assert np.ptp(steps) <= 1  # an arithmetic ramp up to rounding


def test_split_refuses_empty_factors():
    assert nnz_split(1000, 700, 3, "linear") is None  # the ramp would start at -33
    assert nnz_split(1000, 1000, 2) is None and nnz_split(1000, 0, 2) is None
    assert nnz_split(1000, 400, 3, "linear") == [266, 333, 400]


@pytest.mark.parametrize("K", [3, 4])
def test_exponential_split(K):
    parts = nnz_split(10000, 500, K, "exponential")
    assert parts[-1] == 500 and 10000 - K <= sum(parts) <= 10000
    ratios = np.array(parts[1:]) / np.array(parts[:-1])
    np.testing.assert_allclose(ratios, ratios[0], rtol=0.01)  # geometric up to rounding


@pytest.mark.parametrize("split", ["linear", "exponential"])
def test_three_factors_within_budget(split):
    W = np.random.default_rng(1).standard_normal((30, 20))
    a = approx.sparse_product(W, share=0.5, n_factors=3, split=split, n_iter=20)
    assert len(a.factors) == 3 and a.n_params <= 300 and a.rel_error < 1


def test_failure_is_raised_or_flagged_never_zero(monkeypatch):
    def broken(*args, **kwargs):
        raise approx.ApproximationFailedError("PALM4MSA: the product of the factors vanished")

    monkeypatch.setattr(sparse_factors, "_hierarchical", broken)
    W = np.random.default_rng(0).standard_normal((20, 10))
    with pytest.raises(approx.ApproximationFailedError, match="every run failed"):
        approx.sparse_product(W, share=0.3)
    a = approx.sparse_product(W, share=0.3, on_failure="flag")
    assert a.failed and math.isnan(a.rel_error) and "vanished" in a.message


def test_too_small_budget_refused():
    W = np.random.default_rng(0).standard_normal((4, 4))
    with pytest.raises(approx.InfeasibleBudgetError, match="smallest feasible share is 0.125") as exc:
        approx.sparse_product(W, share=0.1, n_factors=2)  # budget 1: no split gives both factors a nonzero
    # the named share is the threshold (with 1 + 1 nonzeros PALM may lose the support: flagged, not zero)
    a = approx.sparse_product(W, share=exc.value.min_share, n_iter=5, on_failure="flag")
    assert a.budget == 2 and a.n_params <= 2 and (a.failed or a.rel_error < 1)
    with pytest.raises(approx.InfeasibleBudgetError):
        approx.sparse_product(W, share=exc.value.min_share * 0.99)
