"""Contracts of sparsemlp.evolution.rewiring that mutation testing found unchecked."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp.evolution import evolve_degree_preserving, swap_rows
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.topology import regular

OWNER = "evolve_degree_preserving"


@pytest.mark.parametrize("kw,flipped", [
    (dict(), True),  # the default swaps=3.0: 3 rounds
    (dict(swaps=0.5), True), (dict(swaps=1.0), True), (dict(swaps=2.0), False),
    (dict(swaps=3.0), True), (dict(swaps=4.0), False), (dict(swaps=0.01), True),
    (dict(swaps=3.0, max_rounds=2), False), (dict(swaps=3.0, max_rounds=5), True),
    (dict(groups=np.array([1, 1])), True), (dict(groups=np.array([0, 1])), False),
])
def test_two_connections_swap_once_per_round(kw, flipped):
    """(0, 0) and (1, 1) of a 2 x 2 layer, nothing forbidden: every round pairs them and the
    swap to (1, 0), (0, 1) is always valid, so the pilot accepts a = 1 and the
    ceil(swaps * 2 / 2 / 1) = ceil(swaps) rounds (at most max_rounds) each flip the rows
    (hand computation); connections of different groups never swap."""
    rows = np.array([0, 1], np.int64)
    out = swap_rows(rows, np.array([0, 1], np.int64), 2, rng=np.random.default_rng(0), **kw)
    assert out is rows
    assert rows.tolist() == ([1, 0] if flipped else [0, 1])


@pytest.mark.parametrize("kw,flipped", [
    (dict(swaps=1.0), False),  # min(ceil(20 * 1), 21) = 20 rounds
    (dict(), False),  # swaps=3: min(60, 63) = 60 rounds
    (dict(swaps=1.0, max_rounds=21), True),  # 21 rounds
])
def test_default_round_cap_is_20_rounds_per_swap(kw, flipped):
    """42 connections on the diagonal of a 42 x 42 layer; only the first two share a group,
    so the pilot accepts a = 1 swap and ceil(swaps * 42 / 2 / 1) = 21 * swaps rounds are
    wanted, more than the default cap ceil(20 * swaps); each round flips the first two rows
    (hand computation). Without the groups, the pilot would accept 21 swaps (one round)."""
    rows = np.arange(42, dtype=np.int64)
    groups = np.r_[0, 0, np.arange(1, 41)]
    swap_rows(rows, np.arange(42, dtype=np.int64), 42, rng=np.random.default_rng(0),
              groups=groups, **kw)
    assert rows.tolist() == ([1, 0] if flipped else [0, 1]) + list(range(2, 42))


@pytest.mark.parametrize("seed", range(5))
def test_pairs_sharing_a_cell_sit_out(seed):
    """Groups force the pairs A = (0, 0), (1, 1) and B = (1, 2), (2, 0): both would move a
    connection onto the free cell (1, 0), so they share a cell of their grids and neither
    may swap, in any round (the documented rule; each alone would swap). Hand-built."""
    rows = np.array([0, 1, 1, 2], np.int64)
    swap_rows(rows, np.array([0, 1, 2, 0], np.int64), 3, rng=np.random.default_rng(seed),
              groups=np.array([0, 0, 1, 1]))
    assert rows.tolist() == [0, 1, 1, 2]
    rows = np.array([1, 2], np.int64)  # B alone: 3 rounds, each flips it
    swap_rows(rows, np.array([2, 0], np.int64), 3, rng=np.random.default_rng(seed))
    assert rows.tolist() == [2, 1]


class _CountingRng:
    """A Generator that counts the rounds: swap_rows draws one permutation per round."""

    def __init__(self, seed):
        self._g, self.calls = np.random.default_rng(seed), 0

    def permutation(self, k):
        self.calls += 1
        return self._g.permutation(k)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("groups,a", [([0, 0, 0, 1, 1, 1, 1], 3), ([2, 2, 2, 2, 0, 0, 0], 3),
                                      ([0, 1, 0, 1, 0, 1, 0], 3), ([0, 1, 2, 3, 4, 5, 6], 0),
                                      (None, 3)])
def test_pilot_pairs_each_group_completely(seed, groups, a):
    """Seven connections on the diagonal of a 7 x 7 layer: every swap is valid and no two
    pairs interact, so a round accepts floor(size / 2) swaps per group (a pairing within
    each group, hand computation): the pilot's a = 3 (0 for singletons, taken as 1) sets
    ceil(3 * 7 / 2 / a) rounds, one permutation each after the pilot's."""
    rng = _CountingRng(seed)
    rows = np.arange(7, dtype=np.int64)
    swap_rows(rows, np.arange(7, dtype=np.int64), 7, rng=rng, swaps=3.0,
              groups=None if groups is None else np.array(groups))
    assert rng.calls == 1 + math.ceil(3 * 7 / 2 / max(a, 1))
    if groups is not None:
        np.testing.assert_array_equal(np.array(groups)[rows], groups)  # rows keep their group


@pytest.mark.parametrize("rows,swaps", [([0, 1, 2], 0.0), ([0, 1], 0.0), ([2], 3.0), ([], 3.0)])
def test_nothing_to_swap_draws_nothing(rows, swaps):
    rows = np.array(rows, np.int64)
    cols = np.arange(rows.shape[0], dtype=np.int64)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert swap_rows(rows.copy(), cols, 3, rng=rng, swaps=swaps).tolist() == rows.tolist()
    assert rng.bit_generator.state == state


def _pairs(W):
    return np.repeat(np.arange(W.shape[0]), np.diff(W.indptr)) * W.shape[1] + W.indices


def _law(init, k, n_in, n_out, seed, normal_std=0.1):
    """The first k draws of a law from a fresh Generator (published scales)."""
    ref = np.random.default_rng(seed)
    if init == "normal":
        return normal_std * ref.standard_normal(k)
    lim = math.sqrt(6.0 / (n_in if init == "he_uniform" else n_in + n_out))
    return ref.uniform(-lim, lim, k)


@pytest.mark.parametrize("init", ["normal", "he_uniform", "xavier_uniform"])
@pytest.mark.parametrize("dense", [False, True])
def test_without_swaps_connections_come_back_with_the_laws_first_draws(init, dense):
    """``swaps=0``, or a fully dense layer (whatever ``swaps``): every removed connection is
    regrown where it was and nothing but the values is drawn, so they are the law's first k
    draws in row-major order (a fresh Generator of the same seed is the oracle)."""
    n_in, n_out = (6, 4) if dense else (40, 20)
    if dense:
        rng = np.random.default_rng(3)
        W = sp.csr_array(rng.standard_normal((n_in, n_out)).astype(np.float32))
        kw = {}
    else:
        W = regular(n_in, n_out, 5, rng=np.random.default_rng(3))
        kw = dict(swaps=0)
    layer = SparseLinear(W, kernels="numpy")
    before = _pairs(layer.W)
    res = evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(7), init=init,
                                   **kw)
    assert res.n_regrown > 0
    np.testing.assert_array_equal(_pairs(layer.W), before)
    np.testing.assert_allclose(layer.W.data[res.new_positions],
                               _law(init, res.n_regrown, n_in, n_out, 7), rtol=1e-6)


def test_defaults_are_the_documented_ones():
    """swaps=3.0 and normal_std=0.1 by default: the same step as passing them; 4.0 and 0.2
    give another."""
    def step(**kw):
        layer = SparseLinear(regular(60, 30, 6, rng=np.random.default_rng(0)), kernels="numpy")
        res = evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(1), **kw)
        return layer.W.indices.copy(), layer.W.data[res.new_positions]

    ind, vals = step()
    ind_x, vals_x = step(swaps=3.0, normal_std=0.1)
    np.testing.assert_array_equal(ind, ind_x)
    np.testing.assert_array_equal(vals, vals_x)
    assert not np.array_equal(step(swaps=4.0)[0], ind)
    assert not np.array_equal(step(normal_std=0.2)[1], vals)


def test_fractional_swaps_below_one_are_valid():
    layer = SparseLinear(regular(40, 20, 5, rng=np.random.default_rng(0)), kernels="numpy")
    res = evolve_degree_preserving(layer, zeta=0.3, rng=np.random.default_rng(0), swaps=0.5)
    assert res.n_regrown == res.n_removed > 0
    assert np.diff(layer.W.indptr).tolist() == [5] * 40


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(swaps=-1), ValueError, r"^The 'swaps' parameter of evolve_degree_preserving must be "
                                 r"a float in the range \[0, inf\)\. Got -1 instead\.$"),
    (dict(zeta=1.5), ValueError, r"^The 'zeta' parameter of evolve_degree_preserving must be a "
                                 r"float in the range \[0, 1\)\. Got 1\.5 instead\.$"),
    (dict(init="zero"), ValueError, r"^The 'init' parameter of evolve_degree_preserving must be "
                                    r"one of 'normal', "),
    (dict(normal_std=0), ValueError, r"^The 'normal_std' parameter of evolve_degree_preserving"),
    (dict(rng=3), TypeError, r"^The 'rng' parameter of evolve_degree_preserving must be"),
])
def test_errors_name_the_function(kw, exc, msg):
    layer = SparseLinear(regular(12, 12, 3, rng=np.random.default_rng(0)), kernels="numpy")
    kw = dict(dict(zeta=0.3, rng=np.random.default_rng(0)), **kw)
    with pytest.raises(exc, match=msg):
        evolve_degree_preserving(layer, **kw)
