"""Tests of sparsemlp.approx.sss: exact recovery of semiseparable matrices, the budget mapping, refusals."""

import numpy as np
import pytest

from sparsemlp import approx
from sparsemlp.approx.semiseparable import budget_params, partition, state_dim_for_budget


def semiseparable(n, rank, rng):
    """tril(U1 V1^T, -1) + triu(U2 V2^T): every Hankel block has rank <= ``rank``."""
    U1, V1, U2, V2 = (rng.standard_normal((n, rank)) for _ in range(4))
    return np.tril(U1 @ V1.T, -1) + np.triu(U2 @ V2.T)


@pytest.mark.parametrize("method", ["sequential", "hankel"])
@pytest.mark.parametrize("n_states, share, P", [(4, 0.4, 1552), (8, 0.3, 1072), (16, 0.25, 880)])
def test_exact_semiseparable_64(seed, method, n_states, share, P):
    W = semiseparable(64, 2, np.random.default_rng(seed))
    assert budget_params(W.shape, n_states, 2) == P
    assert state_dim_for_budget(W.shape, n_states, int(share * 64 * 64)) == 2
    assert state_dim_for_budget(W.shape, n_states, P) == 1  # P(d) < budget is strict
    assert state_dim_for_budget(W.shape, n_states, P + 1) == 2
    a = approx.sss(W, share=share, n_states=n_states, method=method)
    assert a.rel_error <= 1e-10
    assert np.linalg.norm(a.dense() - W) <= 1e-10 * np.linalg.norm(W)
    assert a.state_dim == 2 and a.n_states == n_states
    assert a.budget_convention_params == P
    # stored count: the budget convention minus the unused boundary stages (d = 2, blocks of 64 / K)
    b = 64 // n_states
    assert a.n_params == P - 2 * 4 * b
    # the same with the state dimension given instead of mapped from the budget
    c = approx.sss(W, share=0.5, n_states=n_states, state_dim=2, method=method)
    assert c.rel_error <= 1e-10 and c.n_params == a.n_params


def test_diagonal_blocks_kept_exactly():
    W = np.random.default_rng(1).standard_normal((30, 45))
    a = approx.sss(W, share=0.5, n_states=4)
    ro, co = np.cumsum([0, *partition(30, 4)]), np.cumsum([0, *partition(45, 4)])
    D = a.dense()
    for k in range(4):
        rows, cols = slice(ro[k], ro[k + 1]), slice(co[k], co[k + 1])
        np.testing.assert_array_equal(D[rows, cols], W[rows, cols])


def test_partition_first_blocks_larger():
    np.testing.assert_array_equal(partition(10, 4), [3, 3, 2, 2])
    np.testing.assert_array_equal(partition(4096, 50), [82] * 46 + [81] * 4)


@pytest.mark.parametrize("share, d, P",
                         [(0.05, 1, 16680), (0.1, 3, 34232), (0.2, 8, 81472), (0.3, 12, 122720)])
def test_budget_table_100x4096_50_states(share, d, P):
    budget = approx.budget_for((100, 4096), share)
    assert state_dim_for_budget((100, 4096), 50, budget) == d
    assert budget_params((100, 4096), 50, d) == P < budget <= budget_params((100, 4096), 50, d + 1)


def test_budget_table_realised():
    W = np.random.default_rng(2).standard_normal((100, 4096))
    a = approx.sss(W, share=0.1, n_states=50)
    assert a.state_dim == 3 and a.n_params <= 34232 < a.budget == 40960
    with pytest.raises(approx.InfeasibleBudgetError, match="diagonal blocks alone need 8,192") as exc:
        approx.sss(W, share=0.01, n_states=50)
    assert exc.value.min_share == pytest.approx(16681 / 409600)
    assert "n_states=100 needs only" in str(exc.value)


def test_searched_n_states_is_the_best_candidate():
    W = np.random.default_rng(3).standard_normal((60, 50))
    a = approx.sss(W, share=0.4)
    others = [approx.sss(W, share=0.4, n_states=k) for k in (5, 10, 15, 20, 25)]  # linspace(5, 25, 5)
    assert a.n_states in (5, 10, 15, 20, 25)
    assert a.rel_error == pytest.approx(min(o.rel_error for o in others))


def test_bad_options():
    W = np.random.default_rng(0).standard_normal((20, 20))
    with pytest.raises(ValueError, match="n_states"):
        approx.sss(W, share=0.5, n_states=21)
    with pytest.raises(ValueError, match="method"):
        approx.sss(W, share=0.5, method="fast")
    with pytest.raises(ValueError, match="at least 2 rows"):
        approx.sss(W[:1], share=0.5)
