"""Tests of sparsemlp.approx.hodlr / hedlr / hmatrix: block trees, greedy rank allocation, recovery."""

import numpy as np
import pytest

from sparsemlp import approx
from sparsemlp.approx.blocktrees import allocate_ranks, hedlr_blocks, hmatrix_blocks, hodlr_blocks


def four_rank8_blocks(rng):
    W = np.zeros((100, 50))
    for r0 in (0, 50):
        for c0 in (0, 25):
            W[r0:r0 + 50, c0:c0 + 25] = rng.standard_normal((50, 8)) @ rng.standard_normal((8, 25))
    return W


def test_hodlr_recovers_four_rank8_blocks(seed):
    W = four_rank8_blocks(np.random.default_rng(seed))
    a = approx.hodlr(W, share=0.5)
    np.testing.assert_allclose(a.dense(), W, atol=1e-5)
    assert a.n_params == 4 * 8 * 75 <= 2500
    assert sorted(a.blocks[:, 4]) == [8, 8, 8, 8]


@pytest.mark.parametrize("shape", [(100, 50), (37, 91), (64, 64), (5, 3)])
@pytest.mark.parametrize("levels", [0, 1, 3])
def test_block_trees_tile_the_matrix(shape, levels):
    for leaves in (hodlr_blocks(*shape, levels), hedlr_blocks(*shape, levels),
                   hmatrix_blocks(*shape, 0.5, 4)):
        cover = np.zeros(shape, dtype=int)
        for r0, r1, c0, c1 in leaves:
            cover[r0:r1, c0:c1] += 1
        np.testing.assert_array_equal(cover, 1)
    assert len(hodlr_blocks(64, 64, levels)) == (1 if levels == 0 else 3 * 2 ** levels - 2)
    assert len(hedlr_blocks(64, 64, levels)) == 4 ** levels
    assert len(hedlr_blocks(5, 3, 3)) == 15  # blocks are halved down to single rows and columns


def test_hmatrix_leaves_admissible_or_small():
    m, n, eta, b = 120, 80, 0.5, 6
    leaves = hmatrix_blocks(m, n, eta, b)
    for r0, r1, c0, c1 in leaves:
        dist = max(0.0, c0 / n - r1 / m, r0 / m - c1 / n)
        small = r1 - r0 <= b or c1 - c0 <= b
        assert small or min((r1 - r0) / m, (c1 - c0) / n) <= eta * dist
    assert any(r1 - r0 > b and c1 - c0 > b for r0, r1, c0, c1 in leaves)  # some far field exists


def test_greedy_takes_best_gain_per_parameter():
    # leaf A 10x10 with singular values (10, 3); leaf B 2x2 with (2.5, 2).
    # per parameter: A1 = 100/20, B1 = 6.25/4, B2 is free (B becomes dense), A2 = 9/20.
    sizes, svals = [(10, 10), (2, 2)], [np.array([10.0, 3.0]), np.array([2.5, 2.0])]
    assert allocate_ranks(sizes, svals, 40) == ([1, 2], 24)  # A2 (20 more) no longer fits
    assert allocate_ranks(sizes, svals, 44) == ([2, 2], 44)
    assert allocate_ranks(sizes, svals, 23) == ([1, 0], 20)
    assert allocate_ranks(sizes, svals, 19) == ([0, 2], 4)


@pytest.mark.parametrize("kind", ["hodlr", "hedlr", "hmatrix"])
def test_error_matches_dropped_singular_values(kind):
    rng = np.random.default_rng(5)
    W = rng.standard_normal((48, 40)) * np.exp(-np.abs(np.subtract.outer(np.arange(48), np.arange(40))) / 8)
    a = getattr(approx, kind)(W, share=0.3)
    direct = np.linalg.norm(W - a.dense()) / np.linalg.norm(W)
    assert a.rel_error == pytest.approx(direct, rel=1e-9)
    assert a.n_params <= a.budget == int(0.3 * 48 * 40)
    lr = approx.low_rank(W, share=0.3)
    assert a.rel_error < lr.rel_error  # a banded matrix is far from low rank but blockwise low rank


def test_hodlr_level_search_keeps_best():
    noise = 0.01 * np.random.default_rng(2).standard_normal((100, 50))
    W = four_rank8_blocks(np.random.default_rng(1)) + noise
    best = approx.hodlr(W, share=0.5)
    fixed = [approx.hodlr(W, share=0.5, levels=k).rel_error for k in range(5)]
    assert best.rel_error == pytest.approx(min(fixed), rel=1e-9)
