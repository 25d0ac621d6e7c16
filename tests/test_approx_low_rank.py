"""Tests of sparsemlp.approx.low_rank against the Eckart-Young optimum computed by numpy's SVD."""

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import approx


def test_budget_28x20_share_02(seed):
    W = np.random.default_rng(seed).standard_normal((28, 20))
    a = approx.low_rank(W, share=0.2)
    assert a.n_params <= 112 and a.budget == 112
    assert a.rank == 112 // 48 and a.n_params == a.rank * 48  # r = floor(budget / (m + n))


def test_rank4_product_recovered(seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((26, 4)) @ rng.standard_normal((4, 17))
    a = approx.low_rank(W, share=0.5)  # budget 221 -> rank 5 >= 4
    np.testing.assert_allclose(a.dense(), W, atol=1e-10)
    assert a.rel_error < 1e-12


def test_error_is_eckart_young_and_factors_balanced(seed):
    W = np.random.default_rng(seed).standard_normal((40, 30))
    a = approx.low_rank(W, share=0.3)
    s = np.linalg.svd(W, compute_uv=False)
    assert a.rel_error == pytest.approx(np.sqrt(np.sum(s[a.rank:] ** 2) / np.sum(s ** 2)), rel=1e-10)
    # balanced: both factors carry the square roots of the singular values
    np.testing.assert_allclose(np.linalg.norm(a.L, axis=0), np.sqrt(s[:a.rank]), rtol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(a.R, axis=1), np.sqrt(s[:a.rank]), rtol=1e-10)


def test_sparse_input_stays_sparse_and_matches_dense(monkeypatch):
    S = sp.random(300, 200, density=0.05, random_state=3, format="csr")
    b = approx.low_rank(S.toarray(), share=0.1)

    def no_dense(*args, **kwargs):
        raise AssertionError("the sparse W was densified")

    monkeypatch.setattr(sp.csr_array, "toarray", no_dense)
    a = approx.low_rank(S, share=0.1)
    assert a.rank == b.rank == 12  # floor(6000 / 500)
    assert a.rel_error == pytest.approx(b.rel_error, rel=1e-8)


def test_rank_zero_refused_with_smallest_share():
    W = np.random.default_rng(0).standard_normal((28, 20))
    with pytest.raises(approx.InfeasibleBudgetError, match="smallest feasible share is 0.0858") as exc:
        approx.low_rank(W, share=0.01)
    assert exc.value.min_share == pytest.approx(48 / 560)
    assert approx.low_rank(W, share=exc.value.min_share).rank == 1
    with pytest.raises(approx.InfeasibleBudgetError):
        approx.low_rank(W, share=exc.value.min_share * 0.999)
