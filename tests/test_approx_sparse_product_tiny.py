"""sparse_product on tiny matrices: the smallest feasible share that the infeasible-budget error
names is feasible (the solver returns a non-zero product there, never a failure)."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsemlp import approx
from sparsemlp.approx.sparse_factors import _spectral_norm


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 8), n=st.integers(1, 8), K=st.integers(2, 4),
       split=st.sampled_from(["linear", "exponential"]), seed=st.integers(0, 2**16))
def test_the_named_min_share_succeeds(m, n, K, split, seed):
    W = np.random.default_rng(seed).standard_normal((m, n))
    try:
        approx.sparse_product(W, share=1e-9, n_factors=K, split=split, n_iter=20)
        return  # one nonzero per factor already fits (not on these shapes)
    except approx.InfeasibleBudgetError as exc:
        min_share = exc.min_share
    if min_share > 1:
        return  # the error says no share fits
    a = approx.sparse_product(W, share=min_share, n_factors=K, split=split, n_iter=20,
                              on_failure="flag")
    assert not a.failed, a.message
    assert a.n_params <= a.budget
    A = a.dense()
    assert np.isfinite(A).all() and np.any(A != 0)
    # the reported error is the error of the product (oracle: the dense matrices)
    assert abs(a.rel_error - np.linalg.norm(W - A) / np.linalg.norm(W)) < 1e-9
    assert a.rel_error <= 1 + 1e-12


def test_two_by_two_at_budget_two_to_four():
    """The reported case: 2 x 2 with budgets <= 4 failed with "product vanished"."""
    for seed in range(6):  # budget 2 failed for 5 of these 6 matrices
        W = np.random.default_rng(seed).standard_normal((2, 2))
        for budget in (2, 3, 4):
            a = approx.sparse_product(W, share=budget / 4, n_iter=30)
            assert a.n_params <= budget and np.any(a.dense() != 0)


def test_spectral_norm_restarts_from_a_warm_vector_in_the_null_space():
    """The warm start (top vector of the previous product) can be orthogonal to the new product's
    row space; the norm is then 1 here, not 0."""
    R = sp.csr_array(np.array([[0.0, 0.0], [0.0, 1.0]]))
    vecs = {"k": np.array([1.0, 0.0])}
    assert abs(_spectral_norm([R], vecs, "k") - 1.0) < 1e-6
    assert _spectral_norm([sp.csr_array((2, 2))], {}, "z") == 0.0
