"""evolution.regrow on its own: the completion of a removal-only step, its result, its checks."""

import numpy as np
import pytest

from sparsemlp.evolution import evolve, evolve_original, regrow
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.topology import erdos_renyi

N_IN, N_OUT = 40, 30  # not square: n_in * n_out differs from n_out * n_out


def _layer(dtype=np.float32):
    W = erdos_renyi(N_IN, N_OUT, epsilon=4, rng=np.random.default_rng(1), dtype=dtype)
    return SparseLinear(W, kernels="numpy")


def _rng(legacy):
    return np.random.RandomState(7) if legacy else np.random.default_rng(7)


@pytest.mark.parametrize("init", ["normal", "he_uniform"])
@pytest.mark.parametrize("original", [False, True])
@pytest.mark.parametrize("legacy", [False, True])
def test_regrow_completes_a_removal_only_step(init, original, legacy):
    """evolve(regrow=False) then regrow(n_removed) is evolve(), bit for bit, in the layer's
    dtype; regrow's defaults are evolve's (normal_std=0.1, the sampler unless original)."""
    fn = evolve_original if original else evolve
    a, b = _layer(), _layer()
    fn(a, zeta=0.3, rng=_rng(legacy), init=init, normal_std=0.1)
    removed = fn(b, zeta=0.3, rng=_rng(legacy), init=init, normal_std=0.1, regrow=False)
    before = b.W.toarray()
    kw = {"original": True} if original else {}  # the defaults otherwise
    if init != "normal":
        kw["init"] = init
    out = regrow(b, removed.n_removed, rng=_rng(legacy), **kw)
    for k in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a.W, k), getattr(b.W, k))
    assert b.W.data.dtype == np.float32 and b.W.has_canonical_format
    # the result, checked against the dense layer before and after
    after = b.W.toarray()
    old = before != 0
    np.testing.assert_array_equal(after[old], before[old])  # old connections keep their values
    assert out.n_removed == 0 and out.n_regrown == removed.n_removed
    assert (after != 0).sum() == old.sum() + removed.n_removed
    np.testing.assert_array_equal(out.keep_index, np.arange(old.sum()))
    rows = np.repeat(np.arange(N_IN), np.diff(b.W.indptr))
    new = np.zeros_like(old)
    new[rows[out.new_positions], b.W.indices[out.new_positions]] = True
    assert new.sum() == removed.n_removed and not (new & old).any()
    np.testing.assert_array_equal(new | old, after != 0)


def test_regrow_fills_every_free_position():
    L = _layer()
    before = L.W.toarray()
    free = N_IN * N_OUT - L.nnz
    out = regrow(L, free, rng=np.random.default_rng(0))
    after = L.W.toarray()
    assert out.n_regrown == free and L.nnz == N_IN * N_OUT and (after != 0).all()
    np.testing.assert_array_equal(after[before != 0], before[before != 0])


def test_regrow_of_none_or_one():
    L = _layer()
    nnz, before = L.nnz, L.W.toarray()
    out = regrow(L, 0, rng=np.random.default_rng(0))
    assert out.n_regrown == 0 and out.new_positions.size == 0
    np.testing.assert_array_equal(out.keep_index, np.arange(nnz))
    np.testing.assert_array_equal(L.W.toarray(), before)
    out = regrow(L, 1, rng=np.random.default_rng(0))
    assert out.n_regrown == 1 and L.nnz == nnz + 1
    assert ((L.W.toarray() != 0) & (before == 0)).sum() == 1


def test_regrow_errors_name_the_parameter_and_the_range():
    L = _layer()
    free = N_IN * N_OUT - L.nnz
    rng = np.random.default_rng(0)
    rx = rf"^The 'n' parameter of regrow must be an int in the range \[0, {free}\]. Got "
    for n in (-1, free + 1):
        with pytest.raises(ValueError, match=rx + rf"{n} instead.$"):
            regrow(L, n, rng=rng)
    with pytest.raises(TypeError, match=rx + r"2.5 instead.$"):
        regrow(L, 2.5, rng=rng)
    with pytest.raises(TypeError, match=r"^The 'original' parameter of regrow must be a bool. "
                                        r"Got 'yes' instead.$"):
        regrow(L, 1, rng=rng, original="yes")
    with pytest.raises(ValueError, match=r"^The 'init' parameter of regrow must be one of"):
        regrow(L, 1, rng=rng, init="bogus")
