"""Tests shared by every sparsemlp.approx kind: products, budgets, storage, errors on bad input."""

import io
import math
import pathlib
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sparsemlp import approx
from sparsemlp.approx import common

# fast options per kind (the defaults search or iterate more)
FAST = {
    "low_rank": {}, "sss": {}, "hodlr": {"max_levels": 2}, "hedlr": {"max_levels": 2},
    "hmatrix": {"min_block": 4}, "sparse_product": {"n_iter": 5, "last_share": 0.5},
    "toeplitz_like": {"refine_iter": 5},
}
KINDS = sorted(FAST)


def build(kind, W, share):
    return getattr(approx, kind)(W, share=share, **FAST[kind])


def sample(kind, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((30, 30) if kind == "toeplitz_like" else (37, 23))
    return W, build(kind, W, 0.4)


@pytest.mark.parametrize("kind", KINDS)
def test_products_match_dense(kind):
    W, a = sample(kind)
    D = a.dense()
    m, n = W.shape
    rng = np.random.default_rng(1)
    x, X = rng.standard_normal(n), rng.standard_normal((n, 5))
    y, Y = rng.standard_normal(m), rng.standard_normal((m, 3))
    scale = np.abs(D).max()
    np.testing.assert_allclose(a.matvec(x), D @ x, atol=1e-6 * scale * n)
    np.testing.assert_allclose(a.matmat(X), D @ X, atol=1e-6 * scale * n)
    np.testing.assert_allclose(a.rmatvec(y), D.T @ y, atol=1e-6 * scale * m)
    np.testing.assert_allclose(a.rmatmat(Y), D.T @ Y, atol=1e-6 * scale * m)
    np.testing.assert_allclose(a.aslinearoperator() @ x, D @ x, atol=1e-6 * scale * n)
    assert a.shape == W.shape and a.n_params <= a.budget == math.floor(0.4 * m * n)
    assert a.rel_error == pytest.approx(np.linalg.norm(W - D) / np.linalg.norm(W), rel=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_npz(kind):
    _, a = sample(kind)
    buf = io.BytesIO()
    np.savez(buf, **a.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as f:
        b = approx.from_arrays(f)
    assert type(b) is type(a) and b.shape == a.shape and b.n_params == a.n_params
    assert (b.budget, b.rel_error, b.failed, b.message) == (a.budget, a.rel_error, a.failed, a.message)
    x = np.random.default_rng(2).standard_normal(a.shape[1])
    np.testing.assert_array_equal(b.matvec(x), a.matvec(x))


def test_from_arrays_rejects_bad_input():
    _, a = sample("sss")
    arrays = a.to_arrays()
    with pytest.raises(ValueError, match="'kind' is missing"):
        approx.from_arrays({k: v for k, v in arrays.items() if k != "kind"})
    with pytest.raises(ValueError, match="unknown approximation kind 'tt'"):
        approx.from_arrays({**arrays, "kind": np.array("tt")})
    with pytest.raises(ValueError, match="generator C needs"):
        approx.from_arrays({**arrays, "C": arrays["C"][:-1]})
    with pytest.raises(ValueError, match="'shape' says"):
        approx.from_arrays({**arrays, "shape": np.array([37, 24])})
    _, s = sample("sparse_product")
    arrays = s.to_arrays()
    bad = arrays["factor0_indices"].copy()
    bad[0] = 10_000
    with pytest.raises(ValueError, match="not a valid"):
        approx.from_arrays({**arrays, "factor0_indices": bad})
    _, h = sample("hodlr")
    blocks = h.to_arrays()["blocks"].copy()
    blocks[0, 1] = 1000
    with pytest.raises(ValueError, match="outside"):
        approx.from_arrays({**h.to_arrays(), "blocks": blocks})


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_refused(kind):
    W = np.random.default_rng(0).standard_normal((20, 20))
    f = getattr(approx, kind)
    for bad, msg in [(np.full((20, 20), np.nan), "NaN"), (np.zeros((20, 20)), "all zero"),
                     (np.ones(20), "2-D"), (np.zeros((0, 5)), "at least one row"),
                     (np.array([["a"]]), "numeric")]:
        with pytest.raises(ValueError, match=msg):
            f(bad, share=0.5)
    for share in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="'share' parameter"):
            f(W, share=share)
    with pytest.raises(TypeError, match="'share' parameter"):
        f(W, share="0.5")
    with pytest.raises(ValueError, match="on_failure"):
        f(W, share=0.5, on_failure="ignore")
    a = build(kind, W, 0.5)
    with pytest.raises(ValueError, match="shape"):
        a.matvec(np.ones(21))
    with pytest.raises(ValueError, match="shape"):
        a.rmatmat(np.ones((19, 2)))


def test_worse_than_zero_or_non_finite_is_a_failure():
    W = np.random.default_rng(0).standard_normal((6, 4))
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    wrong = approx.LowRank(-U * s, Vt)  # -W: relative error 2
    with pytest.raises(approx.ApproximationFailedError, match="worse than the zero matrix"):
        common.finish(wrong, W, "raise")
    flagged = common.finish(approx.LowRank(-U * s, Vt), W, "flag")
    assert flagged.failed and flagged.rel_error == pytest.approx(2.0)
    nan = approx.LowRank(np.full((6, 1), np.nan), np.ones((1, 4)))
    assert common.finish(nan, W, "flag").failed and math.isnan(nan.rel_error)
    assert not common.finish(approx.LowRank(U * s, Vt), W, "raise").failed


def test_dense_is_size_guarded():
    a = approx.LowRank(np.ones((5000, 1)), np.ones((1, 5000)))
    with pytest.raises(MemoryError, match="force=True"):
        a.dense()
    assert a.matvec(np.ones(5000))[0] == 5000.0


@pytest.mark.parametrize("kind", ["sss", "hodlr", "sparse_product"])
def test_sparse_input_equals_dense_input(kind):
    S = sp.random(40, 30, density=0.3, random_state=0, format="csr")
    a, b = build(kind, S, 0.4), build(kind, S.toarray(), 0.4)
    assert a.rel_error == pytest.approx(b.rel_error, rel=1e-9)


def test_relative_error_in_column_blocks(monkeypatch):
    W, a = sample("hodlr")
    full = common.relative_error(W, a)
    monkeypatch.setattr(common, "_ERROR_BLOCK_ENTRIES", 37 * 4)  # four columns per block, last one partial
    assert common.relative_error(W, a) == pytest.approx(full, rel=1e-12)
    assert common.relative_error(sp.csr_array(W), a) == pytest.approx(full, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(2, 24), n=st.integers(2, 24), share=st.floats(0.01, 1.0), seed=st.integers(0, 2**16))
def test_every_kind_within_budget_or_refused_with_a_feasible_share(kind, m, n, share, seed):
    if kind == "toeplitz_like":
        n = m
    W = np.random.default_rng(seed).standard_normal((m, n))
    try:
        a = build(kind, W, share)
    except approx.ApproximationFailedError:
        # PALM can lose every shared index with a handful of nonzeros: raised, or flagged, never zeros
        event(f"{kind} failed")
        assert kind == "sparse_product"
        a = getattr(approx, kind)(W, share=share, on_failure="flag", **FAST[kind])
        assert a.failed and math.isnan(a.rel_error) and a.n_params <= a.budget < m + n
        return
    except approx.InfeasibleBudgetError as exc:
        event(f"{kind} refused")
        assert exc.min_share > share
        if exc.min_share <= 1:  # the named share is feasible, and it is the smallest one
            a = build(kind, W, exc.min_share) if kind != "sparse_product" else getattr(approx, kind)(
                W, share=exc.min_share, on_failure="flag", **FAST[kind])
            assert a.n_params <= a.budget
            with pytest.raises(approx.InfeasibleBudgetError):
                build(kind, W, exc.min_share * (1 - 1e-6))
        return
    event(f"{kind} built")
    assert a.n_params <= a.budget == math.floor(share * m * n * (1 + 1e-12))
    assert not a.failed and a.rel_error <= 1 + 1e-9


def test_docs_example_runs():
    """The first Python block of docs/approx.md runs as written."""
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "approx.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec(compile(code, "docs/approx.md", "exec"), namespace)
    assert namespace["a"].n_params <= 4800 and namespace["b"].n_params == namespace["a"].n_params
