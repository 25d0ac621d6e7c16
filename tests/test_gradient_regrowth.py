"""Tests of sparsemlp.evolution.gradient against a dense brute-force oracle (small layers only)."""

import math
import tracemalloc
import warnings

import numpy as np
import pytest

from sparsemlp import _kernels
from sparsemlp._validation import check_csr
from sparsemlp.evolution import apply, evolve_gradient, evolve_gradient_sampled, gradient_topk, sampled_topk
from sparsemlp.evolution.thresholds import kept_positions
from sparsemlp.nn import SGD, Adam, SparseLinear
from sparsemlp.topology import erdos_renyi

BACKENDS = _kernels.available()


def dense_oracle(indptr, indices, n_out, xt, dyt, k):
    """Brute force: the dense |X^T dY| in float64, pattern excluded, best k by (-score, key)."""
    n_in = indptr.shape[0] - 1
    g = np.abs(xt.astype(np.float64) @ dyt.astype(np.float64).T).ravel()
    taken = np.zeros(n_in * n_out, dtype=bool)
    taken[np.repeat(np.arange(n_in), np.diff(indptr)) * n_out + indices] = True
    free = np.flatnonzero(~taken)
    order = np.lexsort((free, -g[free]))  # larger score first, then the smaller key
    return np.sort(free[order[:k]])


def signals(rng, n_in, n_out, B, dtype, ties):
    if ties:  # small integers: many equal scores, all exact in float32 too
        return (rng.integers(-2, 3, (n_in, B)).astype(dtype),
                rng.integers(-2, 3, (n_out, B)).astype(dtype))
    return rng.standard_normal((n_in, B)).astype(dtype), rng.standard_normal((n_out, B)).astype(dtype)


def pattern(rng, n_in, n_out, eps, idt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small layers may saturate: fully dense is a case too
        W = erdos_renyi(n_in, n_out, epsilon=eps, rng=rng, saturate=True)
    return W.indptr.astype(idt), W.indices.astype(idt)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_topk_equals_dense_oracle(backend, ties, dtype):
    ks = _kernels.get(backend)
    for s in range(25):
        rng = np.random.default_rng(s)
        n_in, n_out = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        indptr, ind = pattern(rng, n_in, n_out, float(rng.uniform(0.5, 6)), np.int32)
        n_free = n_in * n_out - ind.shape[0]
        xt, dyt = signals(rng, n_in, n_out, int(rng.integers(1, 9)), dtype, ties)
        for k in {0, 1, n_free // 3, n_free}:
            want = dense_oracle(indptr, ind, n_out, xt, dyt, k)
            for block in (1, 2, 5, n_out, 3 * n_out):
                got, sc = gradient_topk(ks, indptr, ind, n_out, xt, dyt, k, block=block)
                assert got.dtype == np.int64 and np.array_equal(got, want), (s, k, block)
                exact = np.abs(np.einsum("kb,kb->k", xt[got // n_out].astype(np.float64),
                                         dyt[got % n_out].astype(np.float64)))
                np.testing.assert_allclose(sc, exact, rtol=1e-4, atol=1e-5)
            got, _ = gradient_topk(ks, indptr, ind, n_out, xt, dyt, k, max_bytes=1)
            assert np.array_equal(got, want)


def test_tie_rule_is_documented_order():
    """All scores equal: the k smallest free keys (row-major) win."""
    ks = _kernels.get("numpy")
    indptr = np.array([0, 1, 1], np.int32)
    ind = np.array([0], np.int32)  # (0, 0) taken in a 2x3 layer
    xt = np.ones((2, 1))
    dyt = np.ones((3, 1))
    got, _ = gradient_topk(ks, indptr, ind, 3, xt, dyt, 3, block=1)
    assert got.tolist() == [1, 2, 3]


def test_blocked_topk_peak_memory_far_below_dense():
    """A 4000 x 6000 layer: the dense gradient alone is 192 MB in float64; peak stays < 12 MB."""
    rng = np.random.default_rng(0)
    n_in, n_out, B = 4000, 6000, 4
    layer = SparseLinear(erdos_renyi(n_in, n_out, epsilon=5, rng=rng), kernels="numpy")
    xt, dyt = signals(rng, n_in, n_out, B, np.float32, False)
    nnz = layer.nnz
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        res = evolve_gradient(layer, zeta=0.3, xt=xt, dyt=dyt, max_bytes=2 << 20)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    dense = n_in * n_out * 8
    # budget: 2 MB of block temporaries (x2 for the merge), ~60 bytes per connection
    bound = 3 * (2 << 20) + 60 * nnz
    assert res.n_regrown > 0 and layer.nnz == nnz
    print(f"peak {peak / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB, dense {dense / 2**20:.0f} MiB")
    assert peak < bound < dense / 10, (peak, bound, dense)
    check_csr(layer.W)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ties", [False, True])
def test_sampled_with_every_candidate_equals_blocked(backend, ties):
    ks = _kernels.get(backend)
    for s in range(15):
        rng = np.random.default_rng(100 + s)
        n_in, n_out = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        indptr, ind = pattern(rng, n_in, n_out, 3, np.int32)
        n_free = n_in * n_out - ind.shape[0]
        xt, dyt = signals(rng, n_in, n_out, 3, np.float64, ties)
        for k in {1, n_free // 4, n_free} - {0}:
            want, _ = gradient_topk(ks, indptr, ind, n_out, xt, dyt, k)
            got, _ = sampled_topk(ks, indptr, ind, n_in, n_out, xt, dyt, k,
                                  math.ceil(n_free / k), rng)
            assert np.array_equal(got, want)


class _Spy:
    """A kernel set that records the candidate patterns passed to sddmm."""

    def __init__(self, ks):
        self._ks, self.keys = ks, []

    def __getattr__(self, name):
        return getattr(self._ks, name)

    def sddmm(self, indptr, indices, xt, dyt, out):
        rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
        self.keys.append(rows * self.n_out + indices.astype(np.int64))
        self._ks.sddmm(indptr, indices, xt, dyt, out)


@pytest.mark.parametrize("c", [1.0, 2.5, 7.0])
def test_sampled_candidates_are_free_distinct_and_counted(c, monkeypatch):
    import sparsemlp.evolution.gradient as g
    monkeypatch.setattr(g, "SAMPLED_CHUNK", 37)  # several chunks
    rng = np.random.default_rng(3)
    n_in, n_out = 60, 50
    indptr, ind = pattern(rng, n_in, n_out, 8, np.int32)
    taken = set((np.repeat(np.arange(n_in), np.diff(indptr)) * n_out + ind).tolist())
    xt, dyt = signals(rng, n_in, n_out, 4, np.float64, False)
    k = 41  # 2.5 * 41 is not a whole number: ceil counts
    spy = _Spy(_kernels.get("numpy"))
    spy.n_out = n_out
    got, sc = sampled_topk(spy, indptr, ind, n_in, n_out, xt, dyt, k, c, rng)
    cand = np.concatenate(spy.keys)
    assert cand.shape[0] == math.ceil(c * k)
    assert np.unique(cand).shape[0] == cand.shape[0]  # no duplicates
    assert not taken.intersection(cand.tolist())  # no existing connection
    # the k kept are the k best of the candidates by the dense scores (oracle)
    dense = np.abs(xt @ dyt.T).ravel()
    order = np.lexsort((cand, -dense[cand]))
    assert np.array_equal(got, np.sort(cand[order[:k]]))
    np.testing.assert_allclose(sc, dense[got])


def test_sampled_candidates_uniform_over_free_positions():
    """Every free position is a candidate equally often (chi-square on 4000 draws)."""
    from scipy import stats
    ks = _kernels.get("numpy")
    n_in, n_out = 6, 5
    indptr = np.array([0, 2, 2, 3, 3, 5, 5], np.int32)
    ind = np.array([0, 4, 2, 1, 3], np.int32)
    xt, dyt = np.ones((n_in, 1)), np.ones((n_out, 1))
    spy = _Spy(ks)
    spy.n_out = n_out
    rng = np.random.default_rng(0)
    for _ in range(4000):
        sampled_topk(spy, indptr, ind, n_in, n_out, xt, dyt, 1, 3, rng)
    counts = np.bincount(np.concatenate(spy.keys), minlength=n_in * n_out)
    free = counts[counts > 0]
    assert free.shape[0] == n_in * n_out - 5
    assert stats.chisquare(free).pvalue > 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule", ["gradient", "gradient-sampled"])
def test_evolve_gradient_step(backend, rule):
    rng = np.random.default_rng(7)
    W = erdos_renyi(40, 30, epsilon=4, rng=rng)
    layer = SparseLinear(W, kernels=backend)
    old = layer.W.copy()
    xt, dyt = signals(rng, 40, 30, 6, np.float32, False)
    opt = Adam([layer.W.data, layer.b], lr=0.01, kernels=backend)
    opt.state["m"][0][:] = 1.0
    keep = kept_positions(old.data, 0.3)
    kept_keys = (np.repeat(np.arange(40), np.diff(old.indptr)) * 30 + old.indices)[keep]
    kw = dict(rng=np.random.default_rng(1), candidates=1e6) if rule == "gradient-sampled" else {}
    res = apply(layer, rule, zeta=0.3, xt=xt, dyt=dyt, optimizer=opt, **kw)
    check_csr(layer.W)
    assert layer.nnz == old.nnz and res.n_regrown == res.n_removed == old.nnz - keep.shape[0]
    fresh = np.zeros(layer.nnz, bool)
    fresh[res.new_positions] = True
    assert (layer.W.data[fresh] == 0).all()  # RigL: new weights start at zero
    np.testing.assert_array_equal(layer.W.data[~fresh], old.data[keep])  # kept bit for bit
    keys = np.repeat(np.arange(40), np.diff(layer.W.indptr)) * 30 + layer.W.indices
    ip = np.zeros(41, np.int64)
    np.cumsum(np.bincount(kept_keys // 30, minlength=40), out=ip[1:])
    want = dense_oracle(ip, kept_keys % 30, 30, xt, dyt, res.n_regrown)
    np.testing.assert_array_equal(np.sort(keys[fresh]), want)
    assert (opt.state["m"][0][fresh] == 0).all() and (opt.state["m"][0][~fresh] == 1).all()
    assert opt.params[0] is layer.W.data


def test_evolve_gradient_init_law_and_zeta_zero():
    rng = np.random.default_rng(2)
    layer = SparseLinear(erdos_renyi(20, 20, epsilon=3, rng=rng), kernels="numpy")
    xt, dyt = signals(rng, 20, 20, 3, np.float32, False)
    before = layer.W.copy()
    res = evolve_gradient(layer, zeta=0.0, xt=xt, dyt=dyt)
    assert res.n_removed == 0 and np.array_equal(layer.W.data, before.data)
    res = evolve_gradient(layer, zeta=0.3, xt=xt, dyt=dyt, init="normal",
                          rng=np.random.default_rng(0))
    assert (layer.W.data[res.new_positions] != 0).all()


@pytest.mark.parametrize("kw,match", [
    (dict(xt=np.ones((19, 2)), dyt=np.ones((20, 2))), r"xt must be an array of shape \(20"),
    (dict(xt=np.ones((20, 2)), dyt=np.ones((20, 3))), "same batch size"),
    (dict(xt=np.full((20, 2), np.nan), dyt=np.ones((20, 2))), "NaN"),
    (dict(xt=np.ones((20, 2)), dyt=np.ones((20, 2)), init="normal"), "needs rng"),
    (dict(xt=np.ones((20, 2)), dyt=np.ones((20, 2)), zeta=1.5), "zeta"),
    (dict(xt=np.ones((20, 2)), dyt=np.ones((20, 2)), block=0), "block"),
])
def test_evolve_gradient_errors(kw, match):
    layer = SparseLinear(erdos_renyi(20, 20, epsilon=3, rng=np.random.default_rng(0)),
                         kernels="numpy")
    kw = dict(dict(zeta=0.3), **kw)
    with pytest.raises(ValueError, match=match):
        evolve_gradient(layer, **kw)


def test_evolve_gradient_sampled_errors():
    layer = SparseLinear(erdos_renyi(20, 20, epsilon=3, rng=np.random.default_rng(0)),
                         kernels="numpy")
    ones = np.ones((20, 2))
    with pytest.raises(ValueError, match="candidates"):
        evolve_gradient_sampled(layer, zeta=0.3, xt=ones, dyt=ones, candidates=0.5,
                                rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        evolve_gradient_sampled(layer, zeta=0.3, xt=ones, dyt=ones, rng=3)


def test_sgd_remap_after_gradient_step():
    rng = np.random.default_rng(4)
    layer = SparseLinear(erdos_renyi(30, 20, epsilon=4, rng=rng), kernels="numpy")
    opt = SGD([layer.W.data, layer.b], lr=0.1, momentum=0.9, kernels="numpy")
    opt.state["velocity"][0][:] = 2.0
    xt, dyt = signals(rng, 30, 20, 4, np.float32, False)
    res = apply(layer, "gradient", zeta=0.3, xt=xt, dyt=dyt, optimizer=opt)
    v = opt.state["velocity"][0]
    assert (v[res.new_positions] == 0).all() and (np.delete(v, res.new_positions) == 2).all()
