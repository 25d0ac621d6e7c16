"""Degree- and bank-preserving SET rewiring: degrees, clash-freedom, the EvolutionResult contract."""

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from sparsemlp.evolution import evolve, evolve_degree_preserving, removal_mask, swap_rows
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.nn.optim import SGD
from sparsemlp.topology import clash_free, erdos_renyi, regular


def pairs(W):
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    return list(zip(rows.tolist(), W.indices.tolist()))


def degrees(W):
    return np.diff(W.indptr).tolist(), np.bincount(W.indices, minlength=W.shape[1]).tolist()


def brute_clash_free(W, s):
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    assert sorted(s.order.tolist()) == list(range(W.nnz))
    banks = (rows[s.order] % s.z).reshape(-1, s.z)
    return all(len(set(b.tolist())) == s.z for b in banks)


def check_contract(layer, old_data, old_pairs, res):
    """Canonical CSR, no duplicates, kept weights bitwise in order, fresh positions regrown."""
    W = layer.W
    nnz = W.nnz
    assert nnz == old_data.shape[0]
    for i in range(W.shape[0]):
        assert np.all(np.diff(W.indices[W.indptr[i]:W.indptr[i + 1]]) > 0)
    fresh = np.zeros(nnz, bool)
    fresh[res.new_positions] = True
    assert np.all(np.diff(res.keep_index) > 0) and np.all(np.diff(res.new_positions) > 0)
    assert res.n_removed == res.n_regrown == int(fresh.sum()) == nnz - res.keep_index.size
    np.testing.assert_array_equal(W.data[~fresh].view(np.uint8),
                                  old_data[res.keep_index].view(np.uint8))
    new_pairs = pairs(W)
    kept = [old_pairs[k] for k in res.keep_index]
    assert [p for p, f in zip(new_pairs, fresh) if not f] == kept
    # every kept connection survives the value rule, every removed one fails it
    keep = removal_mask(old_data, 0.3)
    assert np.flatnonzero(keep).tolist() == res.keep_index.tolist()


@pytest.mark.parametrize("shape", [(800, 100, 50), (40, 20, 5), (30, 10, 10), (12, 12, 3)])
def test_regular_stays_regular(shape, dtype, index_dtype):
    n_in, n_out, fo = shape
    rng = np.random.default_rng(0)
    layer = SparseLinear(regular(n_in, n_out, fo, rng=rng, dtype=dtype, index_dtype=index_dtype),
                         kernels="numpy")
    deg = degrees(layer.W)
    for epoch in range(4):
        old_data, old_pairs = layer.W.data.copy(), pairs(layer.W)
        res = evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(epoch))
        check_contract(layer, old_data, old_pairs, res)
        assert degrees(layer.W) == deg
        assert layer.W.indices.dtype == index_dtype and layer.W.data.dtype == dtype
        _, _, perm = layer.ensure_index()  # the transposed index follows the new pattern
        np.testing.assert_array_equal(layer.W.data[perm], layer.W.tocsc().data)
    if fo < n_out:  # a sparse layer actually rewires
        assert len(set(pairs(layer.W)) - set(old_pairs)) > 0.2 * res.n_removed


def test_plain_set_breaks_degrees_negative_control():
    layer = SparseLinear(regular(800, 100, 50, rng=np.random.default_rng(0)), kernels="numpy")
    deg = degrees(layer.W)
    evolve(layer, zeta=0.3, rng=np.random.default_rng(1))
    assert degrees(layer.W) != deg


@pytest.mark.parametrize("kind", [1, 2, 3])
@pytest.mark.parametrize("dither", [False, True])
@pytest.mark.parametrize("case", [(800, 100, 50, 200), (100, 10, 10, 5), (24, 10, 5, 6),
                                  (64, 40, 5, 16), (16, 8, 4, 1)])
def test_clash_free_stays_clash_free(kind, dither, case):
    p, n, fo, z = case
    W, s = clash_free(p, n, fo, z, kind=kind, dither=dither, rng=np.random.default_rng(2))
    layer = SparseLinear(W, kernels="numpy")
    layer.schedule = s
    deg = degrees(W)
    fi = p * fo // n
    rows = np.repeat(np.arange(p), np.diff(W.indptr))
    slot_banks = rows[s.order] % z
    moved = 0
    for epoch in range(3):
        old_data, old_pairs = layer.W.data.copy(), pairs(layer.W)
        res = evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(10 + epoch))
        check_contract(layer, old_data, old_pairs, res)
        assert degrees(layer.W) == deg
        assert layer.schedule is s and brute_clash_free(layer.W, s) and s.is_clash_free(layer.W)
        rows = np.repeat(np.arange(p), np.diff(layer.W.indptr))
        np.testing.assert_array_equal(rows[s.order] % z, slot_banks)  # each slot keeps its bank
        np.testing.assert_array_equal(layer.W.indices[s.order], np.arange(W.nnz) // fi)
        moved += len(set(pairs(layer.W)) - set(old_pairs))
    if fo < n and p // z > 1:
        assert moved > 0


def test_optimizer_state_follows_the_remap():
    rng = np.random.default_rng(0)
    W, s = clash_free(64, 40, 5, 16, rng=rng, dtype=np.float64)
    layer = SparseLinear(W, kernels="numpy")
    layer.schedule = s
    b = np.zeros(40)
    opt = SGD([layer.W.data, b], lr=0.1, momentum=0.9)
    vel = rng.standard_normal(W.nnz)
    opt.state["velocity"][0][:] = vel
    old_pairs = pairs(layer.W)
    res = evolve_degree_preserving(layer, zeta=0.3, rng=rng)
    opt.remap(0, res.keep_index, res.new_positions, new_param=layer.W.data)
    new_v = opt.state["velocity"][0]
    assert (new_v[res.new_positions] == 0).all()
    by_pair = dict(zip(old_pairs, vel))
    fresh = np.zeros(W.nnz, bool)
    fresh[res.new_positions] = True
    for p, v, f in zip(pairs(layer.W), new_v, fresh):
        if not f:
            assert v == by_pair[p]


def test_same_key_same_topology_and_zeta_zero():
    def run(seed):
        layer = SparseLinear(regular(60, 30, 6, rng=np.random.default_rng(0)), kernels="numpy")
        evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(seed))
        return layer.W

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.indices, c.indices)
    layer = SparseLinear(regular(60, 30, 6, rng=np.random.default_rng(0)), kernels="numpy")
    before = layer.W.indices.copy(), layer.W.data.copy()
    res = evolve_degree_preserving(layer, zeta=0.0, rng=np.random.default_rng(0))
    assert res.n_removed == 0 and res.keep_index.size == layer.nnz
    np.testing.assert_array_equal(layer.W.indices, before[0])
    np.testing.assert_array_equal(layer.W.data, before[1])


def test_er_layer_keeps_its_degrees_and_legacy_rng():
    layer = SparseLinear(erdos_renyi(200, 150, epsilon=10, rng=np.random.default_rng(0)),
                         kernels="numpy")
    deg = degrees(layer.W)
    evolve_degree_preserving(layer, zeta=0.5, rng=np.random.RandomState(0))
    assert degrees(layer.W) == deg


def test_schedule_mismatch_is_an_error():
    W, s = clash_free(16, 8, 4, 4, rng=np.random.default_rng(0))
    layer = SparseLinear(regular(16, 8, 2, rng=np.random.default_rng(0)), kernels="numpy")
    layer.schedule = s
    with pytest.raises(ValueError, match="schedule"):
        evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(0))


def test_swap_rows_invariants_brute_force():
    rng = np.random.default_rng(5)
    for trial in range(30):
        n_in, n_out = rng.integers(2, 12, size=2)
        k = int(rng.integers(2, n_in * n_out // 2 + 2))
        keys = np.sort(rng.choice(n_in * n_out, size=min(k + 10, n_in * n_out), replace=False))
        pick = rng.permutation(keys.size)
        moving, forbidden = np.sort(keys[pick[:k]]), np.sort(keys[pick[k:]])
        rows, cols = moving // n_out, moving % n_out
        groups = rows % 3 if trial % 2 else None
        r0 = rows.copy()
        swap_rows(rows, cols, int(n_out), rng=rng, forbidden=forbidden, groups=groups, swaps=2)
        new = rows * n_out + cols
        assert np.unique(new).size == k and not np.isin(new, forbidden).any()
        assert sorted(rows.tolist()) == sorted(r0.tolist())  # row degrees
        if groups is not None:
            np.testing.assert_array_equal(rows % 3, r0 % 3)


@pytest.mark.parametrize("groups", [False, True])
def test_swap_rows_law_is_uniform(groups):
    """The rewirings of a tight 6 x 6 configuration (8 moving connections among 6 kept ones)
    are valid row assignments (brute-force enumeration as the oracle) and are reached
    equally often: the chain is symmetric, so uniform on the states it connects (all of
    them without groups; with groups the forbidden cells leave some unreachable by swaps).
    Applying every valid swap of a round without the grid rule, or stopping after a count
    of accepted swaps, fails this test."""
    rng = np.random.default_rng(0)
    n_out = 6
    keys = np.sort(rng.choice(36, 14, replace=False))
    pick = rng.permutation(14)
    moving, forbidden = np.sort(keys[pick[:8]]), np.sort(keys[pick[8:]])
    r0, c0 = moving // n_out, moving % n_out
    g0 = r0 % 2 if groups else None
    valid = set()
    for perm in set(itertools.permutations(r0.tolist())):
        r = np.array(perm)
        k = r * n_out + c0
        if (np.unique(k).size == 8 and not np.isin(k, forbidden).any()
                and (not groups or np.array_equal(r % 2, g0))):
            valid.add(tuple(sorted(k.tolist())))
    assert len(valid) > 5
    g = np.random.default_rng(1)
    seen = Counter()
    for _ in range(100 * len(valid)):
        rows = r0.copy()
        swap_rows(rows, c0, n_out, rng=g, forbidden=forbidden, groups=g0, swaps=8)
        seen[tuple(sorted((rows * n_out + c0).tolist()))] += 1
    assert set(seen) <= valid
    if not groups:
        assert set(seen) == valid
    assert len(seen) > (5 if not groups else 1)
    assert stats.chisquare(np.array([seen[v] for v in sorted(seen)])).pvalue > 1e-4


def test_every_backend_gives_the_same_rewiring(backend):
    W, s = clash_free(64, 40, 5, 16, kind=2, rng=np.random.default_rng(4))
    ref = SparseLinear(W.copy(), kernels="numpy")
    ref.schedule = s.copy()
    layer = SparseLinear(W.copy(), kernels=backend)
    layer.schedule = s.copy()
    for e in range(3):
        evolve_degree_preserving(ref, zeta=0.3, rng=np.random.default_rng(e))
        evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(e))
    np.testing.assert_array_equal(ref.W.indices, layer.W.indices)
    np.testing.assert_array_equal(ref.W.data, layer.W.data)
    np.testing.assert_array_equal(ref.schedule.order, layer.schedule.order)
    assert layer.schedule.is_clash_free(layer.W)
