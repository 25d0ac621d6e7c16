"""Block cluster trees (HODLR, HEDLR, H-matrix admissibility) and greedy rank allocation over their leaves."""

import heapq
import math

__all__ = ["hodlr_blocks", "hedlr_blocks", "hmatrix_blocks", "allocate_ranks", "leaf_cost"]


def _halves(a, b):
    mid = (a + b) // 2
    return (a, mid), (mid, b)


def hodlr_blocks(m, n, levels):
    """Leaves of a HODLR block tree: the diagonal blocks are bisected ``levels`` times.

    Parameters
    ----------
    m, n : int
        Matrix shape.
    levels : int
        Bisection depth (0: one block).

    Returns
    -------
    list of tuple of int
        Leaves ``(r0, r1, c0, c1)``; they tile the matrix.
    """
    out = []

    def rec(r, c, depth):
        if depth == levels or r[1] - r[0] < 2 or c[1] - c[0] < 2:
            out.append((*r, *c))
            return
        (ra, rb), (ca, cb) = _halves(*r), _halves(*c)
        rec(ra, ca, depth + 1)
        out.extend([(*ra, *cb), (*rb, *ca)])
        rec(rb, cb, depth + 1)

    rec((0, m), (0, n), 0)
    return out


def hedlr_blocks(m, n, levels):
    """Leaves of a HEDLR block tree: every block is bisected ``levels`` times (a uniform grid).

    Parameters
    ----------
    m, n : int
        Matrix shape.
    levels : int
        Bisection depth (0: one block).

    Returns
    -------
    list of tuple of int
        Leaves ``(r0, r1, c0, c1)``; they tile the matrix.
    """
    def cuts(size):
        parts = [(0, size)]
        for _ in range(levels):
            parts = [h for a, b in parts for h in (_halves(a, b) if b - a >= 2 else [(a, b)])]
        return parts

    return [(*r, *c) for r in cuts(m) for c in cuts(n)]


def hmatrix_blocks(m, n, eta=0.5, min_block=16):
    """Leaves of an H-matrix block tree with the standard admissibility condition.

    Row i and column j sit at ``i / m`` and ``j / n`` on [0, 1] (so the diagonal of a rectangular
    matrix is the line ``i / m = j / n``). A block whose row and column intervals satisfy
    ``min(diam_rows, diam_cols) <= eta * dist`` is an admissible (far-field) leaf; otherwise it is
    split 2 x 2 until a side has at most ``min_block`` indices (a near-field leaf).

    Parameters
    ----------
    m, n : int
        Matrix shape.
    eta : float, default=0.5
        Admissibility parameter (larger: coarser blocks).
    min_block : int, default=16
        Near-field leaf size.

    Returns
    -------
    list of tuple of int
        Leaves ``(r0, r1, c0, c1)``; they tile the matrix.
    """
    out = []

    def rec(r, c):
        dr, dc = (r[1] - r[0]) / m, (c[1] - c[0]) / n
        dist = max(0.0, c[0] / n - r[1] / m, r[0] / m - c[1] / n)
        if min(dr, dc) <= eta * dist or r[1] - r[0] <= min_block or c[1] - c[0] <= min_block:
            out.append((*r, *c))
            return
        for rh in _halves(*r):
            for ch in _halves(*c):
                rec(rh, ch)

    rec((0, m), (0, n))
    return out


def leaf_cost(r, p, q):
    """Parameters of a p x q leaf of rank r: two factors, or the dense block when that is cheaper.

    Parameters
    ----------
    r : int
        Rank.
    p, q : int
        Leaf shape.

    Returns
    -------
    int
        ``min(r (p + q), p q)``.
    """
    return min(r * (p + q), p * q)


def allocate_ranks(sizes, svals, budget, tol=0.0):
    """Greedily add the singular triplet with the largest error reduction per added parameter.

    Adding triplet r+1 of a p x q leaf removes ``s_{r+1}^2`` from the squared Frobenius error and costs
    ``min((r+1)(p+q), pq) - min(r(p+q), pq)`` parameters (a leaf stored densely takes its remaining
    triplets for free). Triplets that no longer fit the remaining budget end that leaf's growth.

    Parameters
    ----------
    sizes : list of tuple of int
        ``(p, q)`` per leaf.
    svals : list of ndarray
        Singular values of each leaf, descending.
    budget : int
        Parameter budget.
    tol : float, default=0.0
        Singular values ``<= tol`` are not worth adding.

    Returns
    -------
    ranks : list of int
        Rank per leaf (a leaf with ``leaf_cost(rank) == p * q`` is stored densely).
    used : int
        Parameters used.
    """
    ranks = [0] * len(sizes)
    used = 0
    heap = []

    def push(i):
        r, (p, q) = ranks[i], sizes[i]
        if r < len(svals[i]) and svals[i][r] > tol:
            delta = leaf_cost(r + 1, p, q) - leaf_cost(r, p, q)
            ratio = math.inf if delta == 0 else svals[i][r] ** 2 / delta
            heapq.heappush(heap, (-ratio, i))

    for i in range(len(sizes)):
        push(i)
    while heap:
        _, i = heapq.heappop(heap)
        p, q = sizes[i]
        delta = leaf_cost(ranks[i] + 1, p, q) - leaf_cost(ranks[i], p, q)
        if used + delta > budget:
            continue
        used += delta
        ranks[i] += 1
        push(i)
    return ranks, used
