"""Contracts of sparsemlp.evolution.gradient that mutation testing found unchecked."""

import math
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import _kernels
from sparsemlp.evolution.gradient import (
    ENTRY_BYTES,
    block_columns,
    evolve_gradient,
    evolve_gradient_sampled,
    gradient_topk,
    sampled_topk,
    top_k,
)
from sparsemlp.nn import SparseLinear
from sparsemlp.topology import erdos_renyi

EPS = 2.0 ** -30  # lost when 1 + EPS is rounded to float32, exact in float64


def _layer(n_in=20, n_out=20, seed=0, dtype=np.float32):
    W = erdos_renyi(n_in, n_out, epsilon=3, rng=np.random.default_rng(seed), dtype=dtype)
    return SparseLinear(W, kernels="numpy")


def test_block_columns_is_the_documented_formula():
    assert block_columns(100, 50, ENTRY_BYTES * 100 * 7) == 7
    assert block_columns(100, 5, 1 << 30) == 5
    assert block_columns(100, 50, 1) == 1  # at least one column
    assert block_columns(10, 1, 1) == 1  # and never more than n_out


def test_top_k_of_zero_is_empty():
    s, k = top_k(np.array([3.0, 1.0, 2.0]), np.array([5, 6, 7], np.int64), 0)
    assert s.shape == (0,) and k.shape == (0,)


@pytest.mark.parametrize("layer_dtype,want_free", [(np.float32, 0), (np.float64, 1)])
@pytest.mark.parametrize("side", ["xt", "dyt"])
def test_scores_are_computed_in_the_layers_dtype(layer_dtype, want_free, side):
    """Two free positions whose scores are 0 and 2**-30 in float64 but both 0 once the signals
    are rounded to float32 (hand computation) compete for the last of two slots (the other
    goes to a score of 10): a float32 layer ties them and takes the smaller key (the
    documented tie rule), a float64 layer the larger score. float64 signals either way."""
    # SET's rule with zeta=0.1 on the values 0.5, 1, 2 removes 0.5 and 1, keeps 2
    vals, ptr = np.array([0.5, 1.0, 2.0], layer_dtype), np.array([0, 3], np.int32)
    big, tie = np.array([5.0, 5.0]), np.array([[1.0, -1.0], [1.0 + EPS, -1.0]])
    if side == "dyt":  # a 1 x 4 layer: connections (0, 1), (0, 2), (0, 3)
        W = sp.csr_array((vals, np.array([1, 2, 3], np.int32), ptr), shape=(1, 4))
        xt, dyt = np.ones((1, 2)), np.vstack([tie, big, big])
    else:  # the transpose: a 4 x 1 layer
        W = sp.csr_array((vals, np.zeros(3, np.int32), np.array([0, 0, 1, 2, 3], np.int32)),
                         shape=(4, 1))
        xt, dyt = np.vstack([tie, big, big]), np.ones((1, 2))
    layer = SparseLinear(W, kernels="numpy")
    res = evolve_gradient(layer, zeta=0.1, xt=xt, dyt=dyt)
    assert res.n_removed == res.n_regrown == 2
    Wd = layer.W.toarray().ravel()
    assert np.flatnonzero(Wd).tolist() == [3]  # the kept 2.0; the new ones are zeros
    keys = layer.W.indices if side == "dyt" else np.repeat(np.arange(4), np.diff(layer.W.indptr))
    assert keys.tolist() == [want_free, 2, 3]


@pytest.mark.parametrize("block", [None, 2])
def test_scores_keep_the_signals_dtype(block):
    """float32 signals give float32 scores, for k = 0 too, and with candidates from a last
    block narrower than the others (17 columns in blocks of 2); the scores are the dense
    |xt @ dyt.T| (oracle)."""
    rng = np.random.default_rng(1)
    layer = _layer(30, 17, seed=1)
    W = layer.W
    xt = rng.standard_normal((30, 3)).astype(np.float32)
    dyt = rng.standard_normal((17, 3)).astype(np.float32)
    ks = _kernels.get("numpy")
    n_free = 30 * 17 - W.nnz  # every position a candidate: the last block's too
    for k in (0, 5, n_free):
        keys, sc = gradient_topk(ks, W.indptr, W.indices, 17, xt, dyt, k, block=block)
        assert sc.dtype == np.float32 and keys.dtype == np.int64 and keys.shape == (k,)
        dense = np.abs(xt.astype(np.float64) @ dyt.astype(np.float64).T).ravel()
        np.testing.assert_allclose(sc, dense[keys], rtol=1e-5)
    keys, sc = sampled_topk(ks, W.indptr, W.indices, 30, 17, xt, dyt, 5, 3.0, rng)
    assert sc.dtype == np.float32 and keys.shape == (5,)


def test_block_bounds_the_scored_columns():
    """``block=1`` scores one column at a time: far below the 8 MB that the default budget's
    block (1016 columns of 2000 float32 scores) would take."""
    rng = np.random.default_rng(0)
    n = 2000
    layer = SparseLinear(erdos_renyi(n, n, epsilon=2, rng=rng), kernels="numpy")
    xt = rng.standard_normal((n, 2)).astype(np.float32)
    dyt = rng.standard_normal((n, 2)).astype(np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        res = evolve_gradient(layer, zeta=0.3, xt=xt, dyt=dyt, block=1)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert res.n_regrown > 0
    assert peak < 2 << 20, peak


@pytest.mark.parametrize("init", ["normal", "he_uniform", "xavier_uniform"])
def test_drawn_values_follow_the_law_in_row_major_order(init):
    """evolve_gradient draws nothing but the values: the k first draws of the law (NumPy
    Generator, scales from the published formulas), one per new position, in order."""
    layer = _layer(24, 15, seed=3)
    rng = np.random.default_rng(1)
    xt, dyt = rng.standard_normal((24, 3)), rng.standard_normal((15, 3))
    res = evolve_gradient(layer, zeta=0.3, xt=xt, dyt=dyt, init=init,
                          rng=np.random.default_rng(5))
    k = res.n_regrown
    ref = np.random.default_rng(5)
    if init == "normal":
        want = 0.1 * ref.standard_normal(k)  # the default normal_std
    else:
        lim = math.sqrt(6.0 / (24 if init == "he_uniform" else 24 + 15))
        want = ref.uniform(-lim, lim, k)
    np.testing.assert_allclose(layer.W.data[res.new_positions], want, rtol=1e-6)


def test_sampled_defaults_are_the_documented_ones():
    """The defaults (candidates=10, normal_std=0.1) equal passing them explicitly; other
    values change the step. A layer with far more free positions than 11 * k."""
    rng = np.random.default_rng(2)
    xt, dyt = rng.standard_normal((60, 3)), rng.standard_normal((50, 3))

    def step(**kw):
        layer = _layer(60, 50, seed=4)
        res = evolve_gradient_sampled(layer, zeta=0.2, xt=xt, dyt=dyt, init="normal",
                                      rng=np.random.default_rng(9), **kw)
        return layer.W.indices.copy(), layer.W.data[res.new_positions]

    ind, vals = step()
    ind_x, vals_x = step(candidates=10.0, normal_std=0.1)
    np.testing.assert_array_equal(ind, ind_x)
    np.testing.assert_array_equal(vals, vals_x)
    assert not np.array_equal(step(candidates=11.0)[0], ind)
    assert not np.array_equal(step(normal_std=0.2)[1], vals)


def test_sampled_candidates_one_and_a_batch_of_one():
    """``candidates=1`` (the lower bound) and batches of one sample are valid."""
    rng = np.random.default_rng(3)
    layer = _layer()
    res = evolve_gradient_sampled(layer, zeta=0.3, xt=rng.standard_normal((20, 1)),
                                  dyt=rng.standard_normal((20, 1)), candidates=1.0, rng=rng)
    assert res.n_regrown == res.n_removed > 0
    res = evolve_gradient(layer, zeta=0.3, xt=np.ones((20, 1)), dyt=np.ones((20, 1)), block=1)
    assert res.n_regrown == res.n_removed > 0


class _WOnly:
    def __init__(self, W):
        self.W = W


ONES = np.ones((20, 2))
G, S = "evolve_gradient", "evolve_gradient_sampled"


ERRORS = [
    (dict(init="bogus"), ValueError, "The 'init' parameter of {o} must be one of 'zero', "
                                     "'normal', "),
    (dict(normal_std=0.0), ValueError, r"The 'normal_std' parameter of {o} must be a float in "
                                       r"the range \(0, inf\)\. Got 0\.0 instead\.$"),
    (dict(init="normal", rng=None), ValueError, r"^{o}: init='normal' draws the new values and "
                                                r"needs rng\. Pass rng or use init='zero'\.$"),
    (dict(rng=3), TypeError, "^The 'rng' parameter of {o} must be"),
    (dict(layer=_WOnly(sp.csr_array(np.eye(20)))), TypeError,
     r"^{o} needs a SparseLinear layer\. Got _WOnly\.$"),
    (dict(xt=np.ones((19, 2))), ValueError,
     r"^{o}: xt must be an array of shape \(20, batch\) for a 20x20 layer\. Got \(19, 2\)\.$"),
    (dict(dyt=np.ones((20, 0))), ValueError,
     r"^{o}: dyt must be an array of shape \(20, batch\) for a 20x20 layer\. Got \(20, 0\)\.$"),
    (dict(xt=[[1.0, 2.0]] * 20), ValueError, r"^{o}: xt must be an array .* Got list\.$"),
    (dict(dyt=np.full((20, 2), np.inf)), ValueError,
     r"^{o}: dyt holds NaN or infinite values; the gradient scores are undefined\. Lower the "
     r"learning rate\.$"),
    (dict(zeta=1.5), ValueError, r"^The 'zeta' parameter of {o} must be a float in the range "
                                 r"\[0, 1\)\."),
]


# the sampled rule always needs rng (checked first): no "needs rng" case for it
@pytest.mark.parametrize("owner,kw,exc,msg", [(o, *e) for o in (G, S) for e in ERRORS
                                              if o == G or e[0].get("rng", 0) is not None])
def test_errors_name_the_function_and_the_fix(owner, kw, exc, msg):
    kw = dict(dict(layer=_layer(), zeta=0.3, xt=ONES, dyt=ONES), **kw)
    if owner == S:
        kw.setdefault("rng", np.random.default_rng(0))
    with pytest.raises(exc, match=msg.format(o=owner)):
        (evolve_gradient if owner == G else evolve_gradient_sampled)(**kw)


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(block=2.5), TypeError, r"^The 'block' parameter of evolve_gradient must be an int in "
                                 r"the range \[1, inf\)\. Got 2\.5 instead\.$"),
    (dict(block=0), ValueError, r"^The 'block' parameter of evolve_gradient must be an int"),
])
def test_block_errors(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        evolve_gradient(_layer(), zeta=0.3, xt=ONES, dyt=ONES, **kw)


def test_sampled_errors_name_the_function():
    kw = dict(zeta=0.3, xt=ONES, dyt=ONES)
    with pytest.raises(ValueError, match=r"^The 'candidates' parameter of "
                                         r"evolve_gradient_sampled must be a float in the range "
                                         r"\[1, inf\)\. Got 0\.5 instead\.$"):
        evolve_gradient_sampled(_layer(), candidates=0.5, rng=np.random.default_rng(0), **kw)
    with pytest.raises(TypeError, match="^The 'rng' parameter of evolve_gradient_sampled must"):
        evolve_gradient_sampled(_layer(), rng=None, **kw)
