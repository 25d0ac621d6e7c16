"""Hierarchical low-rank block structures (HODLR, HEDLR, H-matrices) with greedy rank allocation."""

import math

import numpy as np

from .._validation import check_param
from .base import Approximation, get
from .blocktrees import allocate_ranks, hedlr_blocks, hmatrix_blocks, hodlr_blocks, leaf_cost
from .common import as_matrix, budget_for, check_on_failure, finish, infeasible, one_blas_thread_calls

__all__ = ["BlockLowRank", "HODLR", "HEDLR", "HMatrix", "hodlr", "hedlr", "hmatrix"]


class BlockLowRank(Approximation):
    """A matrix tiled by blocks, each stored as two low-rank factors or densely (zero blocks omitted).

    Block ``(r0, r1, c0, c1, rank)``: ``W[r0:r1, c0:c1] ~ U @ V`` with U (p, rank), V (rank, q), or a
    dense p x q block when ``rank == -1``. ``values`` concatenates U then V (row-major) or the dense
    block, leaf after leaf, so a trainable layer can view every factor inside one flat buffer.

    Parameter count: ``sum over leaves of min(rank (p + q), p q)``; a product with a vector costs
    ``n_params`` multiply-adds.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``.
    blocks : array_like of int, shape (n_leaves, 5)
        ``r0, r1, c0, c1, rank`` per stored leaf; leaves must not overlap.
    values : array_like of float, shape (n_params,)
        The flat parameter buffer.
    **meta
        ``budget``, ``rel_error``, ``failed``, ``message`` of `Approximation`.
    """

    kind = "block_low_rank"

    def __init__(self, shape, blocks, values, **meta):
        super().__init__(shape, **meta)
        m, n = self.shape
        self.blocks = np.asarray(blocks, dtype=np.int64).reshape(-1, 5)
        self.values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        r0, r1, c0, c1, rk = self.blocks.T
        if (np.any(r0 < 0) or np.any(r1 > m) or np.any(c0 < 0) or np.any(c1 > n) or np.any(r1 <= r0)
                or np.any(c1 <= c0) or np.any(rk < -1) or np.any(rk == 0)):
            raise ValueError(f"{type(self).__name__}: a block lies outside the {m} x {n} matrix or has "
                             "rank 0 (store ranks >= 1, or -1 for a dense block).")
        cover = np.zeros(self.shape, dtype=np.int8) if m * n <= 2**26 else None
        self.leaves, off = [], 0
        for a, b, c, d, r in self.blocks:
            p, q = b - a, d - c
            if r == -1:
                U, V = self.values[off:off + p * q].reshape(p, q), None
                off += p * q
            else:
                U = self.values[off:off + p * r].reshape(p, r)
                V = self.values[off + p * r:off + r * (p + q)].reshape(r, q)
                off += r * (p + q)
            if cover is not None:
                cover[a:b, c:d] += 1
            self.leaves.append((a, b, c, d, U, V))
        if off != self.values.size:
            raise ValueError(f"{type(self).__name__}: the blocks need {off} values, but {self.values.size} "
                             "were given.")
        if cover is not None and cover.max(initial=0) > 1:
            raise ValueError(f"{type(self).__name__}: blocks overlap.")

    def _param_arrays(self):
        return [self.values]

    def _matmat(self, X):
        Y = np.zeros((self.shape[0], X.shape[1]))
        for a, b, c, d, U, V in self.leaves:
            Y[a:b] += U @ X[c:d] if V is None else U @ (V @ X[c:d])
        return Y

    def _rmatmat(self, Y):
        Z = np.zeros((self.shape[1], Y.shape[1]))
        for a, b, c, d, U, V in self.leaves:
            Z[c:d] += U.T @ Y[a:b] if V is None else V.T @ (U.T @ Y[a:b])
        return Z

    def _dense(self):
        T = np.zeros(self.shape)
        for a, b, c, d, U, V in self.leaves:
            T[a:b, c:d] = U if V is None else np.einsum("ik,kj->ij", U, V)
        return T

    def _arrays(self):
        return {"blocks": self.blocks, "values": self.values}

    @classmethod
    def _from_arrays(cls, arrays, meta):
        blocks = get(arrays, "blocks", 2, cls.kind, np.int64)
        if blocks.shape[1:] != (5,):
            raise ValueError(f"from_arrays: {cls.kind} 'blocks' must have 5 columns. Got {blocks.shape}.")
        return cls(meta.pop("shape"), blocks, get(arrays, "values", 1, cls.kind), **meta)


class HODLR(BlockLowRank):
    """Hierarchically off-diagonal low-rank matrix (`BlockLowRank` on `hodlr_blocks`)."""

    kind = "hodlr"


class HEDLR(BlockLowRank):
    """Hierarchically equally distributed low-rank matrix (`BlockLowRank` on `hedlr_blocks`)."""

    kind = "hedlr"


class HMatrix(BlockLowRank):
    """H-matrix with standard admissibility (`BlockLowRank` on `hmatrix_blocks`)."""

    kind = "hmatrix"


def _plan(W, leaves, budget, cache):
    """Singular values of every leaf (cached across partitions) and the greedy allocation.

    Returns ``(squared error, leaves, ranks, used)``.
    """
    for a, b, c, d in leaves:
        if (a, b, c, d) not in cache:
            cache[a, b, c, d] = np.linalg.svd(W[a:b, c:d], compute_uv=False)
    svals = [cache[leaf] for leaf in leaves]
    smax = max(s[0] for s in svals)
    tol = smax * max(W.shape) * np.finfo(np.float64).eps
    ranks, used = allocate_ranks([(b - a, d - c) for a, b, c, d in leaves], svals, budget, tol)
    err2 = 0.0  # dense leaves are exact; low-rank leaves lose their dropped triplets
    for (a, b, c, d), s, r in zip(leaves, svals, ranks):
        if leaf_cost(r, b - a, d - c) < (b - a) * (d - c):
            err2 += float(np.sum(s[r:] ** 2))
    return err2, leaves, ranks, used


def _build(cls, W, plan, budget, on_failure):
    _, leaves, ranks, _ = plan
    blocks, vals = [], []
    for (a, b, c, d), r in zip(leaves, ranks):
        if r == 0:
            continue
        if leaf_cost(r, b - a, d - c) == (b - a) * (d - c):  # dense leaf: the block itself, exact
            blocks.append((a, b, c, d, -1))
            vals.append(W[a:b, c:d].ravel())
        else:
            U, s, Vt = np.linalg.svd(W[a:b, c:d], full_matrices=False)
            root = np.sqrt(s[:r])
            blocks.append((a, b, c, d, r))
            vals.extend([(U[:, :r] * root).ravel(), (root[:, None] * Vt[:r]).ravel()])
    values = np.concatenate(vals) if vals else np.zeros(0)
    return finish(cls(W.shape, blocks, values, budget=budget), W, on_failure)


def _search(cls, W, share, partitions, on_failure):
    budget = budget_for(W.shape, share)
    cheapest = min(leaf_cost(1, b - a, d - c) for leaves in partitions for a, b, c, d in leaves)
    if cheapest > budget:
        raise infeasible(cls.kind, W.shape, share, budget, f"the cheapest block triplet needs {cheapest:,}",
                         cheapest, "or allow more levels")
    best, cache = None, {}
    for leaves in partitions:
        plan = _plan(W, leaves, budget, cache)
        if plan[3] > 0 and (best is None or plan[0] < best[0]):
            best = plan
    return _build(cls, W, best, budget, on_failure)


def _levels(W, max_levels):
    max_levels = check_param("max_levels", max_levels, "int", low=0, high=30)
    return range(min(max_levels, int(math.log2(max(min(W.shape), 1)))) + 1)


@one_blas_thread_calls
def hodlr(W, *, share, levels=None, max_levels=4, on_failure="raise"):
    """Approximate W by a HODLR matrix: off-diagonal blocks of a recursive bisection are low rank.

    Every leaf of the block tree (off-diagonal blocks of each level and the diagonal blocks of the
    last one) gets a rank by `allocate_ranks`: the greedy choice of the singular triplet with the
    largest error reduction per added parameter, until the budget ``floor(share * m * n)`` is used
    (a leaf is stored densely once that is cheaper). Without ``levels``, every depth 0 ..
    ``max_levels`` is tried and the smallest error kept.

    Parameter count: ``n_params = sum over leaves of min(r (p + q), p q) <= budget``.

    Parameters
    ----------
    W : array_like or scipy.sparse matrix of shape (m, n)
        The matrix (sparse inputs are densified, size-guarded).
    share : float
        Parameter budget as a fraction of ``m * n``, in (0, 1].
    levels : int, optional
        Bisection depth; default: searched.
    max_levels : int, default=4
        Deepest level tried by the search.
    on_failure : {"raise", "flag"}, default="raise"
        What a non-finite result does: raise, or return it with ``failed=True``.

    Returns
    -------
    HODLR
        The approximation.

    Raises
    ------
    InfeasibleBudgetError
        If not even one singular triplet of the smallest leaf fits the budget.

    References
    ----------
    W. Hackbusch, *Hierarchical Matrices: Algorithms and Analysis*, Springer, 2015.
    S. Ambikasaran and E. Darve, "An O(N log N) fast direct solver for partial hierarchically
    semi-separable matrices", J. Sci. Comput. 57:477-501, 2013.
    """
    on_failure = check_on_failure(on_failure, "hodlr")
    W = as_matrix(W, "hodlr")
    depths = _levels(W, max_levels) if levels is None else [check_param("levels", levels, "int", low=0)]
    return _search(HODLR, W, share, [hodlr_blocks(*W.shape, k) for k in depths], on_failure)


@one_blas_thread_calls
def hedlr(W, *, share, levels=None, max_levels=4, on_failure="raise"):
    """Approximate W by a HEDLR matrix: a uniform 2^L x 2^L grid of low-rank blocks.

    Ranks are allocated greedily as in `hodlr` (largest error reduction per added parameter);
    without ``levels`` every L = 0 .. ``max_levels`` is tried and the smallest error kept.

    Parameter count: ``n_params = sum over blocks of min(r (p + q), p q) <= budget``.

    Parameters
    ----------
    W : array_like or scipy.sparse matrix of shape (m, n)
        The matrix (sparse inputs are densified, size-guarded).
    share : float
        Parameter budget as a fraction of ``m * n``, in (0, 1].
    levels : int, optional
        Bisection depth L; default: searched.
    max_levels : int, default=4
        Deepest level tried by the search.
    on_failure : {"raise", "flag"}, default="raise"
        What a non-finite result does: raise, or return it with ``failed=True``.

    Returns
    -------
    HEDLR
        The approximation.

    Raises
    ------
    InfeasibleBudgetError
        If not even one singular triplet of the smallest block fits the budget.

    References
    ----------
    M. Kissel and K. Diepold, "Structured matrices and their application in neural networks: a
    survey", New Generation Computing 41:697-722, 2023.
    """
    on_failure = check_on_failure(on_failure, "hedlr")
    W = as_matrix(W, "hedlr")
    depths = _levels(W, max_levels) if levels is None else [check_param("levels", levels, "int", low=0)]
    return _search(HEDLR, W, share, [hedlr_blocks(*W.shape, k) for k in depths], on_failure)


@one_blas_thread_calls
def hmatrix(W, *, share, eta=0.5, min_block=16, on_failure="raise"):
    """Approximate W by an H-matrix: admissible blocks low rank, near-field blocks small.

    The block tree is `hmatrix_blocks` (standard admissibility ``min(diam) <= eta * dist`` on the
    index positions); ranks are allocated greedily over all leaves as in `hodlr`.

    Parameter count: ``n_params = sum over leaves of min(r (p + q), p q) <= budget``.

    Parameters
    ----------
    W : array_like or scipy.sparse matrix of shape (m, n)
        The matrix (sparse inputs are densified, size-guarded).
    share : float
        Parameter budget as a fraction of ``m * n``, in (0, 1].
    eta : float, default=0.5
        Admissibility parameter, > 0.
    min_block : int, default=16
        Near-field leaf size, >= 1.
    on_failure : {"raise", "flag"}, default="raise"
        What a non-finite result does: raise, or return it with ``failed=True``.

    Returns
    -------
    HMatrix
        The approximation.

    Raises
    ------
    InfeasibleBudgetError
        If not even one singular triplet of the smallest leaf fits the budget.

    References
    ----------
    W. Hackbusch, *Hierarchical Matrices: Algorithms and Analysis*, Springer, 2015.
    """
    on_failure = check_on_failure(on_failure, "hmatrix")
    eta = check_param("eta", eta, "float", low=0.0, low_open=True, owner="hmatrix")
    min_block = check_param("min_block", min_block, "int", low=1, owner="hmatrix")
    W = as_matrix(W, "hmatrix")
    return _search(HMatrix, W, share, [hmatrix_blocks(*W.shape, eta, min_block)], on_failure)
