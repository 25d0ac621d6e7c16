"""Tests of sparsemlp.approx.toeplitz_like: displacement identities, exact Toeplitz recovery, refinement."""

import numpy as np
import pytest
from scipy.linalg import toeplitz

from sparsemlp import approx
from sparsemlp.approx.displacement import displacement, f_circulant


def shift(n, f):
    Z = np.eye(n, k=-1)
    Z[0, -1] = f
    return Z


def test_f_circulant_is_polynomial_in_the_shift():
    rng = np.random.default_rng(0)
    v, n = rng.standard_normal(7), 7
    for f in (1.0, -1.0, 0.5):
        Z = shift(n, f)
        ref = sum(v[k] * np.linalg.matrix_power(Z, k) for k in range(n))
        np.testing.assert_allclose(f_circulant(v, f), ref, atol=1e-12)
    W = rng.standard_normal((n, n))
    np.testing.assert_allclose(displacement(W), shift(n, 1) @ W - W @ shift(n, -1), atol=1e-12)


def test_toeplitz_recovered_at_displacement_rank_2(seed):
    rng = np.random.default_rng(seed)
    n = 60
    T = toeplitz(rng.standard_normal(n), rng.standard_normal(n))
    assert np.linalg.matrix_rank(displacement(T)) <= 2
    a = approx.toeplitz_like(T, share=4 / n)
    assert a.rank == 2 and a.n_params == 4 * n
    assert a.rel_error < 1e-12
    np.testing.assert_allclose(a.dense(), T, atol=1e-10)


def test_dense_has_the_stored_displacement(seed):
    """dense() is the unique matrix whose displacement is G H^T (Z_1 and Z_-1 share no eigenvalue)."""
    W = np.random.default_rng(seed).standard_normal((40, 40))
    a = approx.toeplitz_like(W, share=0.2, refine_iter=20)
    np.testing.assert_allclose(displacement(a.dense()), a.G @ a.H.T, atol=1e-10)


def test_refinement_beats_truncated_displacement():
    W = np.random.default_rng(3).standard_normal((50, 50))
    U, s, Vt = np.linalg.svd(displacement(W))
    G, H = U[:, :5] * np.sqrt(s[:5]), Vt[:5].T * np.sqrt(s[:5])
    truncated = approx.ToeplitzLike(G, H)
    e_trunc = np.linalg.norm(W - truncated.dense()) / np.linalg.norm(W)
    assert e_trunc > 1.5  # the inverse displacement operator amplifies the truncation
    scaled = approx.toeplitz_like(W, share=0.2, refine_iter=0)  # the best multiple of it
    t = truncated.dense()
    best = np.linalg.norm(W - (np.sum(W * t) / np.sum(t * t)) * t) / np.linalg.norm(W)
    assert scaled.rel_error == pytest.approx(best, rel=1e-9) and best > 0.98
    a = approx.toeplitz_like(W, share=0.2, refine_iter=60)
    assert not a.failed and a.rel_error < 0.95
    assert a.rel_error < approx.low_rank(W, share=0.2).rel_error + 0.02  # as good as low rank, roughly


def test_low_rank_matrix_has_small_displacement_rank():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 30))
    a = approx.toeplitz_like(W, share=12 / 30, refine_iter=0)  # displacement rank <= 2 * 3
    assert a.rank == 6 and a.rel_error < 1e-10


def test_rectangular_refused():
    with pytest.raises(ValueError, match="square"):
        approx.toeplitz_like(np.ones((4, 5)), share=0.5)
    with pytest.raises(approx.InfeasibleBudgetError, match="smallest feasible share is 0.2 "):
        approx.toeplitz_like(np.eye(10), share=0.1)


def test_products_in_generator_chunks(monkeypatch):
    a = approx.toeplitz_like(np.random.default_rng(5).standard_normal((24, 24)), share=0.5, refine_iter=3)
    X = np.random.default_rng(6).standard_normal((24, 3))
    whole, whole_t = a.matmat(X), a.rmatmat(X)
    monkeypatch.setattr(approx.ToeplitzLike, "_CHUNK_ENTRIES", 1)  # one generator per FFT call
    assert len(a._rank_chunks(3)) == a.rank == 6
    np.testing.assert_allclose(a.matmat(X), whole, atol=1e-12)
    np.testing.assert_allclose(a.rmatmat(X), whole_t, atol=1e-12)
    np.testing.assert_allclose(a.matmat(X), a.dense() @ X, atol=1e-10)
