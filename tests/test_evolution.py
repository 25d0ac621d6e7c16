"""Tests of sparsemlp.evolution.set against sort-based, loop-based and dense oracles."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from sparsemlp import _kernels
from sparsemlp._validation import check_csr
from sparsemlp.evolution import (
    EvolutionResult,
    evolve,
    evolve_original,
    importance_prune,
    removal_mask,
    set_thresholds,
)
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.topology import erdos_renyi

P_MIN = 1e-4
BACKENDS = _kernels.available()


# --------------------------------------------------------------------------------------------
# oracles, written straight from the original SET code (Mocanu et al. 2018): the removal
# thresholds, weightsEvolution_Amar, importance pruning and the SET-RBM's scalar regrowth


def oracle_thresholds(w, zeta):
    """The SET thresholds with a full sort, find_first_pos / find_last_pos as in the original."""
    values = np.sort(w)
    first = (np.abs(values - 0)).argmin()
    last = values.shape[0] - (np.abs(values - 0))[::-1].argmin()
    t_neg = values[int((1 - zeta) * first)]
    t_pos = values[int(min(values.shape[0] - 1, last + zeta * (values.shape[0] - last)))]
    return t_neg, t_pos


def oracle_keep(w, zeta):
    t_neg, t_pos = oracle_thresholds(w, zeta)
    return (w < t_neg) | (w > t_pos)


def coords(W):
    coo = W.tocoo()
    return list(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def cells_to_csr(cells, shape, dtype, idt):
    keys = sorted(cells)
    rows = np.array([k[0] for k in keys], dtype=np.int64)
    cols = np.array([k[1] for k in keys], dtype=idt)
    vals = np.array([cells[k] for k in keys], dtype=np.float64).astype(dtype)
    indptr = np.zeros(shape[0] + 1, dtype=idt)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return indptr, cols, vals


def amar_oracle(W, zeta, rs, std=0.1):
    """The original's weightsEvolution_Amar with Python sets and loops."""
    n, m = W.shape
    w = W.data
    t_neg, t_pos = oracle_thresholds(w, zeta)
    kept = {}
    for (i, j), v in zip(coords(W), w.tolist(), strict=True):
        if v < t_neg or v > t_pos:
            kept[(i, j)] = v
    r = len(w) - len(kept)
    vals = rs.randn(r) / (1.0 / std)
    occupied = set(kept)
    appended = []
    while len(kept) + len(appended) < len(w):
        need = len(w) - len(kept) - len(appended)
        ii = rs.randint(0, n, size=need, dtype=np.int32)
        jj = rs.randint(0, m, size=need, dtype=np.int32)
        for pair in sorted(set(zip(ii.tolist(), jj.tolist(), strict=True))):
            if pair not in occupied:
                occupied.add(pair)
                appended.append(pair)
    cells = dict(kept)
    for pair, v in zip(appended, vals.tolist(), strict=True):
        cells[pair] = v
    return cells


def original_oracle(W, zeta, rs, std):
    """The SET-RBM's original scalar loop: positions until free, then the value."""
    n, m = W.shape
    t_neg, t_pos = oracle_thresholds(W.data, zeta)
    cells = {p: v for p, v in zip(coords(W), W.data.tolist(), strict=True)
             if v < t_neg or v > t_pos}
    for _ in range(len(W.data) - len(cells)):
        i = rs.randint(0, n)
        j = rs.randint(0, m)
        while (i, j) in cells:
            i = rs.randint(0, n)
            j = rs.randint(0, m)
        cells[(i, j)] = rs.randn() / (1.0 / std)
    return cells


def make_layer(n, m, nnz, seed, dtype=np.float64, idt=np.int32, ties=False, kernels="numpy"):
    rng = np.random.default_rng(seed)
    W = erdos_renyi(n, m, nnz=nnz, rng=rng, dtype=dtype, index_dtype=idt)
    if ties:
        pool = np.array([-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.3])
        W.data[:] = rng.choice(pool, W.nnz).astype(dtype)
    return SparseLinear(W, kernels=kernels)


def snapshot(layer):
    W = layer.W
    return W.indptr.copy(), W.indices.copy(), W.data.copy()


def assert_layer_equal(a, b):
    for x, y in zip(snapshot(a), snapshot(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8))


def assert_index_fresh(layer):
    """The transposed index matches W: forward equals the dense product."""
    W = layer.W
    rng = np.random.default_rng(0)
    xt = rng.standard_normal((W.shape[0], 3)).astype(W.dtype)
    out = np.empty((W.shape[1], 3), W.dtype)
    layer.forward(xt, out)
    expect = W.toarray().T.astype(np.float64) @ xt.astype(np.float64)
    np.testing.assert_allclose(out, expect, rtol=1e-4, atol=1e-5)


def check_result(old, layer, res, zeta):
    """Every invariant of one evolution step with regrowth."""
    old_indptr, old_indices, old_data = old
    W = layer.W
    nnz = old_data.shape[0]
    check_csr(W)
    assert W.indptr[-1] == nnz and W.data.shape == (nnz,)
    assert isinstance(res, EvolutionResult)
    keep_index, new_positions = res.keep_index, res.new_positions
    assert np.all(np.diff(keep_index) > 0) and np.all(np.diff(new_positions) > 0)
    assert res.n_removed == res.n_regrown == new_positions.size == nnz - keep_index.size
    # removed set = the dense-sort oracle
    if zeta == 0 or nnz == 0:
        np.testing.assert_array_equal(keep_index, np.arange(nnz))
    else:
        np.testing.assert_array_equal(keep_index, np.flatnonzero(oracle_keep(old_data, zeta)))
    fresh = np.zeros(nnz, bool)
    fresh[new_positions] = True
    # kept weights bitwise equal, same relative order, same coordinates
    np.testing.assert_array_equal(W.data[~fresh].view(np.uint8),
                                  old_data[keep_index].view(np.uint8))
    old_c = coords(sp.csr_array((old_data, old_indices, old_indptr), shape=W.shape))
    new_c = coords(W)
    kept_c = [old_c[t] for t in keep_index]
    assert [new_c[t] for t in np.flatnonzero(~fresh)] == kept_c
    regrown = {new_c[t] for t in new_positions}
    assert len(regrown) == new_positions.size  # distinct
    assert not regrown & set(kept_c)  # no regrown duplicate of a kept position
    assert_index_fresh(layer)


# --------------------------------------------------------------------------------------------
# thresholds


def test_tiny_worked_example():
    w = np.array([-0.9, -0.5, -0.3, -0.1, -0.05, 0.02, 0.04, 0.2, 0.6, 0.8, 1.0])
    rng = np.random.default_rng(0)
    for perm in (np.arange(w.size), rng.permutation(w.size)):
        t_neg, t_pos = set_thresholds(w[perm], 0.3)
        assert (t_neg, t_pos) == (-0.1, 0.2)
        removed = set(w[perm][~removal_mask(w[perm], 0.3)].tolist())
        assert removed == {-0.1, -0.05, 0.02, 0.04, 0.2}


@pytest.mark.parametrize("neg_closest,n_neg_removed,n_pos_removed",
                         [(True, 14981, 15020), (False, 14981, 15021)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_worked_example_1e5(neg_closest, n_neg_removed, n_pos_removed, dtype):
    """The thresholds on N = 10^5 values, zeta = 0.3, 49,934 negatives and 50,066 positives."""
    neg = -np.arange(1, 49935, dtype=np.float64)
    pos = np.arange(1, 50067, dtype=np.float64)
    if neg_closest:
        pos = pos + 0.5  # the largest negative (-1) is closest to zero
    else:
        neg = neg - 0.5  # the smallest positive (1) is closest to zero
    w = np.random.default_rng(7).permutation(np.concatenate([neg, pos])).astype(dtype)
    keep = removal_mask(w, 0.3)
    assert np.count_nonzero(~keep & (w < 0)) == n_neg_removed
    assert np.count_nonzero(~keep & (w > 0)) == n_pos_removed
    np.testing.assert_array_equal(keep, oracle_keep(w, 0.3))
    # through a layer: 10^5 connections at 50 % density, removed and regrown
    layer = SparseLinear(erdos_renyi(1000, 200, nnz=100000, rng=np.random.default_rng(1),
                                     dtype=dtype), kernels="numpy")
    layer.W.data[:] = w
    res = evolve(layer, zeta=0.3, rng=np.random.default_rng(2))
    assert res.n_removed == res.n_regrown == n_neg_removed + n_pos_removed
    assert layer.nnz == 100000
    check_csr(layer.W)


pool_values = st.sampled_from([-1.0, -0.5, -0.25, -0.0, 0.0, 0.25, 0.5, 1.0])


@settings(max_examples=300, deadline=None)
@given(w=st.lists(pool_values | st.floats(-10, 10, allow_nan=False, width=32), min_size=1,
                  max_size=60),
       zeta=st.sampled_from([0.0, 0.3, 0.5, 0.99]) | st.floats(0, 0.999),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_thresholds_match_sort_oracle(w, zeta, dtype):
    """Ties, zeros, one sign only, single elements: O(N) selection == full sort."""
    w = np.array(w, dtype=dtype)
    t_neg, t_pos = set_thresholds(w, zeta)
    o_neg, o_pos = oracle_thresholds(w, zeta)
    assert t_neg == o_neg and t_pos == o_pos
    np.testing.assert_array_equal(removal_mask(w, zeta), oracle_keep(w, zeta))


def test_thresholds_errors():
    with pytest.raises(ValueError, match=r"^values must be a non-empty 1-D array\. Got shape "
                                         r"\(0,\)\.$"):
        set_thresholds(np.array([]), 0.3)
    with pytest.raises(ValueError, match="non-empty 1-D array. Got shape \\(2, 1\\)"):
        set_thresholds(np.array([[0.1], [0.2]]), 0.3)
    with pytest.raises(ValueError, match=r"^values contain NaN; the SET thresholds are undefined\. "
                                         r"Stop training on non-finite weights \(lower the "
                                         r"learning rate\)\.$"):
        set_thresholds(np.array([0.1, np.nan]), 0.3)
    with pytest.raises(ValueError, match=r"'zeta' parameter of set_thresholds"):
        set_thresholds(np.array([0.1]), 1.0)


# --------------------------------------------------------------------------------------------
# evolve: properties over shapes, densities, zetas


@st.composite
def layer_specs(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 40))
    frac = draw(st.sampled_from([0.0, 0.02, 0.5, 0.98, 1.0]) | st.floats(0, 1))
    nnz = int(round(frac * n * m))
    return dict(n=n, m=m, nnz=nnz, seed=draw(st.integers(0, 2**32 - 1)),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                idt=draw(st.sampled_from([np.int32, np.int64])), ties=draw(st.booleans()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=layer_specs(), zeta=st.sampled_from([0.0, 0.3, 0.99]) | st.floats(0, 0.99))
def test_evolve_properties(spec, zeta):
    layer = make_layer(spec["n"], spec["m"], spec["nnz"], spec["seed"], spec["dtype"],
                       spec["idt"], spec["ties"])
    refs = (layer.W.indptr, layer.W.indices, layer.W.data)
    old = snapshot(layer)
    res = evolve(layer, zeta=zeta, rng=np.random.default_rng(spec["seed"] + 1))
    check_result(old, layer, res, zeta)
    now = (layer.W.indptr, layer.W.indices, layer.W.data)
    assert all(a is b for a, b in zip(refs, now, strict=True))
    assert layer.W.indices.dtype == spec["idt"] and layer.W.data.dtype == spec["dtype"]
    # same key, same topology
    twin = make_layer(spec["n"], spec["m"], spec["nnz"], spec["seed"], spec["dtype"],
                      spec["idt"], spec["ties"])
    evolve(twin, zeta=zeta, rng=np.random.default_rng(spec["seed"] + 1))
    assert_layer_equal(layer, twin)


# The fast paths switch on size (bracket selection, geometric gaps, binary-search row
# pointers, sparse-rank mapping); with every switch at its extreme the small hypothesis
# layers run each path, and the two settings must give the same thresholds and topology
# checks (the keyed results differ only through the sampler, see below).
_PATHS = {
    "small": dict(_SELECT_MIN=1 << 60, _GAPS_MIN=1 << 60, _SEARCH_RATIO=1 << 60,
                  _DENSE_SLOTS=1 << 60),
    "large": dict(_SELECT_MIN=1, _GAPS_MIN=1, _SEARCH_RATIO=0, _DENSE_SLOTS=0, _CHUNK=5,
                  CHUNK=5),
}


def _force_paths(monkeypatch, which):
    import sparsemlp._kernels._reference as reference
    import sparsemlp.evolution.thresholds as thresholds
    import sparsemlp.topology.csr as csr
    import sparsemlp.topology.sampling as sampling

    mods = (thresholds, csr, sampling, reference)
    for name, value in _PATHS[which].items():
        assert any(hasattr(mod, name) for mod in mods), f"path switch {name} no longer exists"
        for mod in mods:
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, value)


@pytest.mark.parametrize("which", ["small", "large"])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=layer_specs(), zeta=st.sampled_from([0.3, 0.99]) | st.floats(0, 0.99))
def test_evolve_properties_every_path(monkeypatch, which, spec, zeta):
    with monkeypatch.context() as mp:
        _force_paths(mp, which)
        layer = make_layer(spec["n"], spec["m"], spec["nnz"], spec["seed"], spec["dtype"],
                           spec["idt"], spec["ties"])
        old = snapshot(layer)
        res = evolve(layer, zeta=zeta, rng=np.random.default_rng(spec["seed"] + 1))
        check_result(old, layer, res, zeta)
        check_csr(layer.W)


@pytest.mark.parametrize("which", ["small", "large"])
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=st.lists(pool_values | st.floats(-10, 10, allow_nan=False, width=32), min_size=1,
                  max_size=300),
       zeta=st.sampled_from([0.0, 0.3, 0.5, 0.99]) | st.floats(0, 0.99))
def test_thresholds_every_path(monkeypatch, which, w, zeta):
    with monkeypatch.context() as mp:
        _force_paths(mp, which)
        w = np.array(w, dtype=np.float32)
        assert set_thresholds(w, zeta) == oracle_thresholds(w, zeta)


@pytest.mark.parametrize("order", ["random", "sorted", "reversed", "blocks"])
def test_thresholds_bracket_large_and_adversarial(order):
    """Bracket selection on 10^5 values, including orders that defeat a strided sample."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(100_000).astype(np.float32)
    w[:5000] = 0.25  # a big tie
    if order == "sorted":
        w.sort()
    elif order == "reversed":
        w = np.sort(w)[::-1].copy()
    elif order == "blocks":  # every 16th value (the sample) far from the rest
        w[::16] = np.linspace(-50, 50, w[::16].size, dtype=np.float32)
    for zeta in (0.0, 0.1, 0.3, 0.9):
        assert set_thresholds(w, zeta) == oracle_thresholds(w, zeta)


def test_thresholds_of_more_than_a_quarter_million_values():
    """Above 16384 * 16 values the sample stride grows with n (one value in n // 16384)."""
    w = np.random.default_rng(1).standard_normal(300_001)
    for zeta in (0.05, 0.3):
        assert set_thresholds(w, zeta) == oracle_thresholds(w, zeta)


def test_evolve_large_layer_matches_oracle_selection():
    """Real sizes (bracket, gaps, binary-search paths): kept set is the oracle's keep mask."""
    layer = SparseLinear(erdos_renyi(3000, 3000, epsilon=20, rng=np.random.default_rng(0)),
                         kernels="numpy")
    old = snapshot(layer)
    res = evolve(layer, zeta=0.3, rng=np.random.default_rng(1))
    check_result(old, layer, res, 0.3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=layer_specs(), zeta=st.sampled_from([0.3, 0.5]) | st.floats(0.01, 0.99))
def test_evolve_legacy_matches_amar_oracle(spec, zeta):
    layer = make_layer(spec["n"], spec["m"], spec["nnz"], spec["seed"], spec["dtype"],
                       spec["idt"], spec["ties"])
    old = snapshot(layer)
    w_old = layer.W.copy()
    rs, ro = np.random.RandomState(spec["seed"]), np.random.RandomState(spec["seed"])
    res = evolve(layer, zeta=zeta, rng=rs)
    check_result(old, layer, res, zeta)
    if w_old.nnz:
        ip, ind, val = cells_to_csr(amar_oracle(w_old, zeta, ro), w_old.shape, spec["dtype"],
                                    spec["idt"])
        np.testing.assert_array_equal(layer.W.indptr, ip)
        np.testing.assert_array_equal(layer.W.indices, ind)
        np.testing.assert_array_equal(layer.W.data.view(np.uint8), val.view(np.uint8))
    assert rs.randint(0, 2**31 - 1) == ro.randint(0, 2**31 - 1)  # same stream position


@pytest.mark.parametrize("shape,eps", [((30, 20), 3), ((60, 5), 20), ((8, 8), 3)])
def test_evolve_legacy_epochs_match_amar_oracle(shape, eps, seed):
    """Several epochs in one RandomState stream (ER init, then evolutions), float64."""
    rs, ro = np.random.RandomState(seed), np.random.RandomState(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        W = erdos_renyi(*shape, epsilon=eps, law="draws", rng=rs, dtype=np.float64)
        W_o = erdos_renyi(*shape, epsilon=eps, law="draws", rng=ro, dtype=np.float64)
    layer = SparseLinear(W, kernels="numpy")
    for epoch in range(4):
        layer.W.data[:] += np.random.default_rng(epoch).standard_normal(layer.nnz) * 0.05
        W_o.data[:] = layer.W.data  # "training" changed the weights identically
        evolve(layer, zeta=0.3, rng=rs)
        ip, ind, val = cells_to_csr(amar_oracle(W_o, 0.3, ro), shape, np.float64, np.int32)
        np.testing.assert_array_equal(layer.W.indices, ind)
        np.testing.assert_array_equal(layer.W.indptr, ip)
        np.testing.assert_array_equal(layer.W.data, val)
        W_o = sp.csr_array((val, ind, ip), shape=shape)


def test_evolve_legacy_other_init_and_std():
    layer = make_layer(12, 9, 60, 3)
    w_old = layer.W.copy()
    evolve(layer, zeta=0.4, rng=np.random.RandomState(5), normal_std=0.05)
    ip, ind, val = cells_to_csr(amar_oracle(w_old, 0.4, np.random.RandomState(5), std=0.05),
                                (12, 9), np.float64, np.int32)
    np.testing.assert_array_equal(layer.W.indices, ind)
    np.testing.assert_array_equal(layer.W.data, val)
    layer = make_layer(12, 9, 60, 3)
    res = evolve(layer, zeta=0.4, rng=np.random.RandomState(5), init="xavier_uniform")
    assert np.all(np.abs(layer.W.data[res.new_positions]) <= math.sqrt(6 / 21))


# --------------------------------------------------------------------------------------------
# evolve: distribution of the regrown positions


def test_regrowth_uniform_over_subsets():
    """All C(7, 5) sets of regrown slots are equally likely (Generator path)."""
    w = np.array([-0.9, -0.5, -0.1, 0.05, 0.6, 0.8])  # zeta 0.5 keeps only -0.9
    base = sp.csr_array((w, np.array([0, 1, 3, 0, 2, 3]), np.array([0, 3, 6])), shape=(2, 4))
    counts = {}
    for s in range(3000):
        layer = SparseLinear(base.copy(), kernels="numpy")
        res = evolve(layer, zeta=0.5, rng=np.random.default_rng(s))
        assert res.n_removed == 5
        fresh = tuple(sorted(coords(layer.W)[t] for t in res.new_positions))
        counts[fresh] = counts.get(fresh, 0) + 1
    assert len(counts) == math.comb(7, 5)
    assert all((0, 0) not in k for k in counts)  # the kept slot is never regrown
    assert stats.chisquare(np.array(list(counts.values()))).pvalue > P_MIN


@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_regrowth_uniform_over_slots(rng_kind):
    """Chi-square of regrown slots over the non-kept slots of a 6x7 layer."""
    base = make_layer(6, 7, 25, 9, ties=False).W
    keep = oracle_keep(base.data, 0.3)
    kept = {c for c, k in zip(coords(base), keep, strict=True) if k}
    hits = np.zeros((6, 7))
    mk = np.random.default_rng if rng_kind == "generator" else np.random.RandomState
    for s in range(600):
        layer = SparseLinear(base.copy(), kernels="numpy")
        res = evolve(layer, zeta=0.3, rng=mk(s))
        c = coords(layer.W)
        for t in res.new_positions:
            hits[c[t]] += 1
    free = np.array([(i, j) not in kept for i in range(6) for j in range(7)]).reshape(6, 7)
    assert hits[~free].sum() == 0
    assert stats.chisquare(hits[free]).pvalue > P_MIN


def test_dense_output_layer_regrowth():
    """A 98 %-dense 3000x5 layer: exact, and removed positions come back."""
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match="effectively dense"):
        W = erdos_renyi(3000, 5, epsilon=20, law="draws", rng=rng)
    layer = SparseLinear(W, kernels="numpy")
    old = snapshot(layer)
    old_c = coords(layer.W)
    res = evolve(layer, zeta=0.3, rng=rng)
    check_result(old, layer, res, 0.3)
    removed = set(old_c) - {old_c[t] for t in res.keep_index}
    new_c = coords(layer.W)
    regrown = {new_c[t] for t in res.new_positions}
    assert len(regrown & removed) > 0.5 * len(regrown)  # most empty slots were just removed
    assert len(regrown - removed) > 0  # and the few long-empty slots get filled too


def test_fully_dense_layer_comes_back():
    layer = make_layer(30, 5, 150, 1)
    full = coords(layer.W)
    res = evolve(layer, zeta=0.3, rng=np.random.default_rng(0))
    assert res.n_removed > 0 and coords(layer.W) == full  # every removed slot regrown


def test_huge_sparse_layer_no_dense_allocation():
    """10^6 x 10^6 slots: anything O(n_in * n_out) would fail here."""
    layer = SparseLinear(erdos_renyi(10**6, 10**6, nnz=20000, rng=np.random.default_rng(0)),
                         kernels="numpy")
    res = evolve(layer, zeta=0.3, rng=np.random.default_rng(1))
    assert layer.nnz == 20000 and res.n_regrown > 0
    check_csr(layer.W)


# --------------------------------------------------------------------------------------------
# evolve: special cases, backends, errors


@pytest.mark.parametrize("fn", [evolve, evolve_original])
def test_zeta_zero_changes_nothing_and_draws_nothing(fn):
    layer = make_layer(20, 10, 80, 0)
    old = snapshot(layer)
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    res = fn(layer, zeta=0.0, rng=rng, normal_std=0.1)
    assert res.keep_index.dtype == np.int64 and res.new_positions.dtype == np.int64
    assert rng.bit_generator.state == state
    assert res.n_removed == res.n_regrown == 0 and res.new_positions.size == 0
    np.testing.assert_array_equal(res.keep_index, np.arange(80))
    for a, b in zip(old, snapshot(layer), strict=True):
        np.testing.assert_array_equal(a, b)


def test_empty_layer():
    layer = make_layer(5, 5, 0, 0)
    res = evolve(layer, zeta=0.3, rng=np.random.default_rng(0))
    assert res.n_removed == 0 and layer.nnz == 0


@pytest.mark.parametrize("fn", ["evolve", "evolve_original"])
def test_regrow_false_removes_only(fn):
    layer = make_layer(20, 15, 120, 2, ties=True)
    old_indptr, old_indices, old_data = snapshot(layer)
    W_obj = layer.W
    kw = dict(normal_std=0.1) if fn == "evolve_original" else {}
    res = {"evolve": evolve, "evolve_original": evolve_original}[fn](
        layer, zeta=0.3, rng=np.random.default_rng(0), regrow=False, **kw)
    keep = oracle_keep(old_data, 0.3)
    np.testing.assert_array_equal(res.keep_index, np.flatnonzero(keep))
    assert res.n_regrown == 0 and res.new_positions.size == 0
    assert res.new_positions.dtype == np.int64 and res.keep_index.dtype == np.int64
    assert layer.W is W_obj and layer.nnz == 120 - res.n_removed == keep.sum()
    check_csr(layer.W)
    np.testing.assert_array_equal(layer.W.data, old_data[keep])
    old = sp.csr_array((old_data, old_indices, old_indptr), shape=(20, 15))
    assert coords(layer.W) == [c for c, k in zip(coords(old), keep, strict=True) if k]
    assert layer.perm.shape == (layer.nnz,)
    assert_index_fresh(layer)


@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_backends_identical(rng_kind, seed):
    mk = np.random.default_rng if rng_kind == "generator" else np.random.RandomState
    ref = None
    for name in BACKENDS:
        layer = make_layer(50, 30, 300, seed, dtype=np.float32, kernels=name)
        old = snapshot(layer)
        res = evolve(layer, zeta=0.3, rng=mk(seed))
        check_result(old, layer, res, 0.3)
        if ref is None:
            ref = layer
        else:
            assert_layer_equal(layer, ref)


class _Corrupting:
    """A KernelSet stand-in whose ``kernel`` swaps two neighbours in the first row with two
    or more entries of its output pattern: a non-canonical CSR (unsorted columns)."""

    def __init__(self, kernel):
        self._ks = _kernels.get("numpy")
        self._kernel = kernel

    def __getattr__(self, name):
        fn = getattr(self._ks, name)
        if name != self._kernel:
            return fn

        def corrupt(*args):
            fn(*args)
            indptr, indices = {"csr_merge": (args[4], args[5]),
                               "csr_compact": (args[4], args[5])}[name]
            r = int(np.flatnonzero(np.diff(indptr) >= 2)[0])
            k = int(indptr[r])
            indices[k], indices[k + 1] = indices[k + 1], indices[k]
        return corrupt


@pytest.mark.parametrize("fn", [evolve, evolve_original])
@pytest.mark.parametrize("kernel,regrow", [("csr_merge", True), ("csr_compact", False)])
@pytest.mark.parametrize("debug", ["1", "0", None])
def test_debug_mode_checks(monkeypatch, fn, kernel, regrow, debug):
    """SPARSEMLP_DEBUG=1 makes evolution check W after every change of its pattern: a kernel
    that leaves unsorted columns is caught at once; without debug mode it goes unnoticed."""
    if debug is None:
        monkeypatch.delenv("SPARSEMLP_DEBUG", raising=False)
    else:
        monkeypatch.setenv("SPARSEMLP_DEBUG", debug)
    layer = make_layer(20, 10, 80, 0)
    layer.kernels = _Corrupting(kernel)
    run = lambda: fn(layer, zeta=0.3, rng=np.random.default_rng(0), normal_std=0.1,  # noqa: E731
                     regrow=regrow)
    if debug == "1":
        with pytest.raises(ValueError, match="must be canonical CSR"):
            run()
    else:
        run()  # silently corrupt: only the explicit check below sees it
        with pytest.raises(ValueError, match="must be canonical CSR"):
            check_csr(layer.W)


def test_debug_mode_checks_kernel_arguments(monkeypatch):
    """SPARSEMLP_DEBUG=1 wraps every kernel with an argument check (read when a backend's
    KernelSet is built); without it a non-contiguous argument reaches the kernel."""
    from sparsemlp._kernels import _kernel_set, _reference

    w = np.ones(8)[::2]  # not C-contiguous
    args = (w, np.zeros(4), np.ones(4), 0.1, 0.0, 0.0, 1.0, 0, 0)
    monkeypatch.setenv("SPARSEMLP_DEBUG", "1")
    with pytest.raises(ValueError, match="sgd_update: argument 0 is not C-contiguous"):
        _kernel_set("numpy", _reference).sgd_update(*args)
    monkeypatch.setenv("SPARSEMLP_DEBUG", "0")
    _kernel_set("numpy", _reference).sgd_update(*args)
    np.testing.assert_allclose(w, 0.9)  # the reference kernel updated the strided view


@pytest.mark.parametrize("kw,exc,match", [
    (dict(zeta=1.5), ValueError,
     r"^The 'zeta' parameter of evolve must be a float in the range \[0, 1\)\. Got 1\.5 "
     r"instead\.$"),
    (dict(zeta=1.0), ValueError, r"'zeta' parameter of evolve"),
    (dict(zeta=-0.1), ValueError, r"'zeta' parameter of evolve"),
    (dict(zeta="0.3"), TypeError, r"'zeta' parameter of evolve must be a float"),
    (dict(init="randn"), ValueError, r"'init' parameter of evolve must be one of 'normal'"),
    (dict(rng=42), TypeError, r"'rng' parameter of evolve must be a numpy\.random\.Generator"),
    (dict(normal_std=-1.0), ValueError, r"'normal_std' parameter of evolve"),
    (dict(normal_std=0.0), ValueError,
     r"^The 'normal_std' parameter of evolve must be a float in the range \(0, inf\)\. Got 0\.0"),
    (dict(regrow=1), TypeError, r"'regrow' parameter of evolve must be a bool"),
])
@pytest.mark.parametrize("fn", [evolve, evolve_original])
def test_evolve_errors(kw, exc, match, fn):
    layer = make_layer(10, 10, 30, 0)
    args = dict(zeta=0.3, rng=np.random.default_rng(0), normal_std=0.1)
    args.update(kw)
    with pytest.raises(exc, match=match.replace("of evolve", f"of {fn.__name__}")):
        fn(layer, **args)


def test_evolve_rejects_non_layer():
    with pytest.raises(TypeError, match="^evolve needs a SparseLinear layer. Got ndarray.$"):
        evolve(np.zeros(3), zeta=0.3, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="^evolve_original needs a SparseLinear layer"):
        evolve_original(np.zeros(3), zeta=0.3, rng=np.random.default_rng(0), normal_std=0.1)

    class HasW:  # a W but no transposed index to refresh
        W = make_layer(5, 5, 10, 0).W

    with pytest.raises(TypeError, match="^evolve needs a SparseLinear layer. Got HasW.$"):
        evolve(HasW(), zeta=0.3, rng=np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# evolve_original (SET-RBM scalar routine)


@pytest.mark.parametrize("n,m,nnz,std", [(30, 20, 100, 0.05), (10, 4, 38, 0.1), (1, 7, 3, 0.05)])
def test_evolve_original_matches_scalar_oracle(n, m, nnz, std, seed):
    layer = make_layer(n, m, nnz, seed)
    w_old = layer.W.copy()
    old = snapshot(layer)
    rs, ro = np.random.RandomState(seed), np.random.RandomState(seed)
    res = evolve_original(layer, zeta=0.3, rng=rs, normal_std=std)
    check_result(old, layer, res, 0.3)
    ip, ind, val = cells_to_csr(original_oracle(w_old, 0.3, ro, std), (n, m), np.float64,
                                np.int32)
    np.testing.assert_array_equal(layer.W.indptr, ip)
    np.testing.assert_array_equal(layer.W.indices, ind)
    np.testing.assert_array_equal(layer.W.data, val)
    assert rs.randint(0, 2**31 - 1) == ro.randint(0, 2**31 - 1)


def generator_oracle(W, zeta, g, init, std):
    """evolve_original with a Generator, as documented: integers() for i then j until free,
    then one scalar value (standard_normal() * std, or uniform(-lim, lim) with He's or
    Glorot's limit)."""
    n, m = W.shape
    t_neg, t_pos = oracle_thresholds(W.data, zeta)
    cells = {p: v for p, v in zip(coords(W), W.data.tolist(), strict=True)
             if v < t_neg or v > t_pos}
    lim = math.sqrt(6 / (n if init == "he_uniform" else n + m))
    for _ in range(len(W.data) - len(cells)):
        i, j = int(g.integers(0, n)), int(g.integers(0, m))
        while (i, j) in cells:
            i, j = int(g.integers(0, n)), int(g.integers(0, m))
        cells[(i, j)] = g.standard_normal() * std if init == "normal" else g.uniform(-lim, lim)
    return cells


@pytest.mark.parametrize("init", ["normal", "he_uniform", "xavier_uniform"])
@pytest.mark.parametrize("legacy", [False, True])
def test_evolve_original_every_init_law_matches_oracle(init, legacy):
    n, m = 30, 7  # n_in != n_out: He and Glorot limits differ
    layer = make_layer(n, m, 90, 5)
    w_old = layer.W.copy()
    mk = np.random.RandomState if legacy else np.random.default_rng
    res = evolve_original(layer, zeta=0.3, rng=mk(8), normal_std=0.05, init=init)
    check_result((w_old.indptr, w_old.indices, w_old.data), layer, res, 0.3)
    if legacy:
        lim = math.sqrt(6 / (n if init == "he_uniform" else n + m))
        rs = np.random.RandomState(8)
        t_neg, t_pos = oracle_thresholds(w_old.data, 0.3)
        cells = {p: v for p, v in zip(coords(w_old), w_old.data.tolist(), strict=True)
                 if v < t_neg or v > t_pos}
        for _ in range(len(w_old.data) - len(cells)):
            i, j = rs.randint(0, n), rs.randint(0, m)
            while (i, j) in cells:
                i, j = rs.randint(0, n), rs.randint(0, m)
            cells[(i, j)] = rs.randn() / (1 / 0.05) if init == "normal" else rs.uniform(-lim, lim)
    else:
        cells = generator_oracle(w_old, 0.3, np.random.default_rng(8), init, 0.05)
    ip, ind, val = cells_to_csr(cells, (n, m), np.float64, np.int32)
    np.testing.assert_array_equal(layer.W.indptr, ip)
    np.testing.assert_array_equal(layer.W.indices, ind)
    np.testing.assert_allclose(layer.W.data, val, rtol=1e-15)


@pytest.mark.parametrize("init", ["normal", "he_uniform", "xavier_uniform"])
def test_evolve_regrown_values_follow_the_law(init):
    """The regrown values of evolve (Generator) follow the chosen law: N(0, std) with its
    tails, or U(-lim, lim) with He's sqrt(6 / n_in) or Glorot's sqrt(6 / (n_in + n_out))."""
    n, m = 300, 100
    layer = make_layer(n, m, 12000, 1, kernels="numpy")
    res = evolve(layer, zeta=0.5, rng=np.random.default_rng(2), init=init, normal_std=0.05)
    v = layer.W.data[res.new_positions].astype(np.float64)
    assert v.size > 4000
    if init == "normal":
        assert abs(v.std() - 0.05) < 0.003 and abs(v.mean()) < 0.003
        assert 0.005 < np.mean(np.abs(v) > 2.5 * 0.05) < 0.02  # Gaussian tails (1.2 %)
    else:
        lim = math.sqrt(6 / (n if init == "he_uniform" else n + m))
        assert np.abs(v).max() <= lim and np.abs(v).max() > 0.99 * lim
        assert abs(v.std() - lim / math.sqrt(3)) < 0.03 * lim


def test_select_in_bracket_reports_a_miss_just_above():
    """_select_in_bracket returns the idx-th smallest value when the bracket [lo, hi] of the
    sample holds it, and None when the rank falls just above it (the caller then partitions
    the whole array; indexing past the bracket would crash)."""
    from sparsemlp.evolution.thresholds import _select_in_bracket

    v = np.random.default_rng(0).permutation(2000).astype(np.float64)
    # n = 2000, m = 1000: for idx 500 the bracket is s[187] .. s[313]
    s = np.concatenate([np.linspace(0, 100, 188), np.linspace(101, 499, 126),
                        np.linspace(500, 1999, 686)])
    assert s[187] == 100 and s[313] == 499
    assert _select_in_bracket(v, s, 500) is None  # rank 500 is the value 500, just above hi
    assert _select_in_bracket(v, s, 499) == 499  # the last rank inside [lo, hi]


def test_evolve_original_generator():
    layer = make_layer(30, 20, 100, 0)
    old = snapshot(layer)
    res = evolve_original(layer, zeta=0.3, rng=np.random.default_rng(0), normal_std=0.05,
                          init="he_uniform")
    check_result(old, layer, res, 0.3)
    assert np.all(np.abs(layer.W.data[res.new_positions]) <= math.sqrt(6 / 30))


# --------------------------------------------------------------------------------------------
# importance pruning


@pytest.mark.parametrize("percentile", [0, 10, 20, 50, 100])
def test_importance_prune_matches_dense_oracle(percentile, seed):
    layer = make_layer(40, 25, 300, seed, ties=False)
    W0 = layer.W.copy()
    dense = W0.toarray()
    present = np.zeros(dense.shape, bool)
    r, c = W0.tocoo().row, W0.tocoo().col
    present[r, c] = True
    s = np.abs(dense).sum(axis=0)
    t = np.percentile(s, percentile)
    present[:, s <= t] = False
    keep_index = importance_prune(layer, percentile)
    check_csr(layer.W)
    assert coords(layer.W) == list(zip(*np.nonzero(present), strict=True))
    expect_keep = [k for k, (i, j) in enumerate(coords(W0)) if present[i, j]]
    np.testing.assert_array_equal(keep_index, expect_keep)
    np.testing.assert_array_equal(layer.W.data, W0.data[keep_index])
    assert layer.perm.shape == (layer.nnz,)
    assert_index_fresh(layer)


def test_importance_prune_removes_whole_neurons():
    layer = make_layer(40, 25, 600, 3)
    importance_prune(layer, 20)
    in_deg = np.bincount(layer.W.indices, minlength=25)
    assert (in_deg == 0).sum() >= 5  # 20 % of 25 output neurons lose everything


def test_importance_prune_counts_empty_neurons_and_leaves_w_alone_when_nothing_goes():
    """Neurons without connections count in the percentile (importance 0); when only they
    fall at or below it, nothing is removed and W keeps its very arrays."""
    rng = np.random.default_rng(0)
    dense = np.zeros((6, 10))
    dense[:, :5] = rng.uniform(0.5, 1.0, (6, 5))  # the last 5 outputs have no input
    layer = SparseLinear(sp.csr_array(dense), kernels="numpy")
    arrays = snapshot(layer)
    objs = (layer.W.indptr, layer.W.indices, layer.W.data)
    keep = importance_prune(layer, 50)  # t = median of [s_0..s_4, 0, 0, 0, 0, 0] = 0
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, np.arange(30))
    assert all(a is b for a, b in zip(objs, (layer.W.indptr, layer.W.indices, layer.W.data)))
    for a, b in zip(arrays, snapshot(layer), strict=True):
        np.testing.assert_array_equal(a, b)
    keep = importance_prune(layer, 60)  # t = mean of 0 and the smallest s: one neuron goes
    assert keep.dtype == np.int64 and layer.nnz == 24
    assert np.bincount(layer.W.indices, minlength=10)[:5].tolist().count(0) == 1


def test_importance_prune_errors():
    with pytest.raises(ValueError, match=r"'percentile' parameter of importance_prune must be "
                                         r"a float in the range \[0, 100\]\. Got 101"):
        importance_prune(make_layer(5, 5, 10, 0), 101)


# --------------------------------------------------------------------------------------------
# apply: every rule with the optimizer's state carried along (the one remap)


@pytest.mark.parametrize("rule, params", [
    ("set", dict(zeta=0.3)),
    ("set-original", dict(zeta=0.3, normal_std=0.05)),
    ("degree-preserving", dict(zeta=0.3)),
    ("set", dict(zeta=0.3, regrow=False)),
    ("regrow", dict(n=37)),
    ("importance", dict(percentile=30)),
])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_apply_remaps_the_optimizer_state_of_every_rule(rule, params, optimizer):
    """Per connection (tracked by its coordinates, not its position), the state after the
    change is the state before for a connection that stays, and zero for a new one; the
    optimizer points at the new W.data; other parameters are untouched."""
    from sparsemlp.evolution import apply
    from sparsemlp.nn.optim import make_optimizer

    layer = make_layer(30, 20, 200, 5)
    b = np.zeros(20)
    opt = make_optimizer(optimizer, [layer.W.data, b], lr=0.1, kernels="numpy")
    for arrays in opt.state.values():
        arrays[0][:] = np.arange(1, layer.nnz + 1)  # a recognisable state per connection
        arrays[1][:] = -1.0
    old_state = {name: dict(zip(coords(layer.W), arrays[0].tolist(), strict=True))
                 for name, arrays in opt.state.items()}
    nnz0 = layer.nnz
    if "zeta" in params or "n" in params:
        params = dict(params, rng=np.random.default_rng(3))
    res = apply(layer, rule, optimizer=opt, param_index=0, **params)
    assert isinstance(res, EvolutionResult)
    assert layer.nnz == nnz0 - res.n_removed + res.n_regrown and res.n_removed + res.n_regrown > 0
    assert opt.params[0] is layer.W.data and opt.params[1] is b
    fresh = set(res.new_positions.tolist())
    for name, arrays in opt.state.items():
        assert arrays[0].shape == (layer.nnz,)
        want = [0.0 if t in fresh else old_state[name][c] for t, c in enumerate(coords(layer.W))]
        np.testing.assert_array_equal(arrays[0], want)
        assert np.all(arrays[1] == -1.0)


def test_apply_errors():
    from sparsemlp.evolution import apply

    with pytest.raises(ValueError, match=r"'rule' parameter of apply must be one of 'set', "
                                         r"'set-original', 'degree-preserving', 'regrow', "
                                         r"'importance'\. Got 'prune'"):
        apply(make_layer(5, 5, 10, 0), "prune", zeta=0.3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="'zeta' parameter of evolve"):
        apply(make_layer(5, 5, 10, 0), "set", zeta=1.0, rng=np.random.default_rng(0))


@pytest.mark.parametrize("call", ["evolve", "evolve_original", "evolve_degree_preserving",
                                  "set_thresholds", "removal_mask", "kept_positions", "apply"])
def test_zeta_is_validated_once_per_call(monkeypatch, call):
    import sparsemlp.evolution as ev
    import sparsemlp.evolution.thresholds as thresholds

    seen = []
    real = thresholds.check_zeta
    monkeypatch.setattr(thresholds, "check_zeta", lambda z, owner: seen.append(owner) or real(z, owner))
    layer = make_layer(20, 10, 60, 1)
    rng = np.random.default_rng(0)
    if call in ("set_thresholds", "removal_mask", "kept_positions"):
        getattr(ev, call)(layer.W.data, 0.3)
    elif call == "apply":
        ev.apply(layer, "set", zeta=0.3, rng=rng)
    else:
        kw = dict(normal_std=0.1) if call == "evolve_original" else {}
        getattr(ev, call)(layer, zeta=0.3, rng=rng, **kw)
    assert len(seen) == 1, seen
