"""Sequential Optimal Brain Surgeon per output neuron, with inverse-Hessian downdates.

Removing weight q of a neuron with weights ``w`` and inverse Hessian ``G = H_S⁻¹`` over its
remaining coordinates S changes the weights by ``δ = -(w_q / G_qq) G e_q`` (which sets
``w_q`` to zero and minimises ``½ δᵀ H δ`` under that constraint) and costs
``w_q² / (2 G_qq)``; the inverse over ``S \\ {q}`` is ``G - G e_q e_qᵀ G / G_qq`` (Hassibi &
Stork 1993). Repeating the cheapest removal is the greedy layer-wise OBS of OBC (Frantar &
Alistarh 2022). O(|S|²) per removal and O(|S|²) memory per neuron.
"""

import numpy as np
from threadpoolctl import threadpool_limits

from .columns import coordinates, groups

__all__ = ["obs_path", "obs_paths", "merge_paths", "SEQUENTIAL_FLOPS"]

#: Work above which the sequential OBS of one layer is refused (multiply-adds).
SEQUENTIAL_FLOPS = 2e11


def _saliency(criterion, w, g, hdiag):
    if criterion == "magnitude":
        return np.abs(w)
    if criterion == "obd":
        return 0.5 * w * w * hdiag
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * w * w / g


def _run(w, G, hdiag, removable, steps, criterion):
    """Greedy removals on a batch: w (B, s), G (B, s, s), removable (B, s) -> order, costs.

    ``w`` and ``G`` are updated in place; ``order[b, t]`` is the coordinate removed at step t
    (-1 once column b has nothing left) and ``cost[b, t]`` its saliency (inf then).
    """
    B, s = w.shape
    ar = np.arange(B)
    order = np.full((B, steps), -1, np.int64)
    cost = np.full((B, steps), np.inf)
    for t in range(steps):
        g = np.diagonal(G, axis1=1, axis2=2)
        sal = _saliency(criterion, w, g, hdiag)
        sal[~removable] = np.inf
        q = np.argmin(sal, axis=1)
        c = sal[ar, q]
        live = np.isfinite(c)
        if not live.any():
            break
        order[live, t] = q[live]
        cost[live, t] = c[live]
        gq = G[ar, :, q]  # column q of each inverse, (B, s)
        gqq = np.where(live, gq[ar, q], 1.0)
        f = np.where(live, w[ar, q] / gqq, 0.0)
        w -= f[:, None] * gq
        w[ar[live], q[live]] = 0.0
        G -= (gq * np.where(live, 1.0 / gqq, 0.0)[:, None])[:, :, None] * gq[:, None, :]
        G[ar[live], q[live], :] = 0.0
        G[ar[live], :, q[live]] = 0.0
        removable[ar[live], q[live]] = False
    return order, cost


def obs_path(w, H, steps, *, criterion="obs", removable=None):
    """Remove ``steps`` weights of one neuron greedily with OBS updates.

    Parameters
    ----------
    w : array-like of shape (s,)
        Weights over the coordinates of ``H`` (the bias included, if any).
    H : array-like of shape (s, s)
        Hessian of the neuron's output error over those coordinates.
    steps : int
        Removals.
    criterion : {"obs", "magnitude", "obd"}, default="obs"
        Which weight goes at each step (of the updated weights).
    removable : array-like of bool, shape (s,), optional
        Coordinates that may go (default: all; pass False for the bias).

    Returns
    -------
    w : ndarray of shape (s,)
        Weights after the removals (removed ones exactly 0).
    order : ndarray of int
        Coordinates removed, in order.
    cost : ndarray
        Saliency of each removal (for ``obs``: the increase of ``½ δᵀ H δ``).
    """
    w = np.array(w, dtype=np.float64)[None, :]
    H = np.asarray(H, dtype=np.float64)
    G = np.linalg.inv(H)[None]
    rem = np.ones(w.shape, bool) if removable is None else np.array(removable, bool)[None]
    order, cost = _run(w, G, np.diag(H)[None], rem, int(steps), criterion)  # obd: H's diagonal
    ok = order[0] >= 0
    return w[0], order[0][ok], cost[0][ok]


def obs_paths(H, cols, columns, steps, criterion, *, hdiag=None, bias=True, tick=None):
    """Greedy OBS removal sequences of many neurons of a layer.

    Parameters
    ----------
    H : ndarray
        The layer's Hessian (bias coordinate last when ``bias``).
    cols : LayerColumns
        The layer.
    columns : ndarray of int
        Neurons to process.
    steps : int
        Removals per neuron at most (fewer when it has fewer weights).
    criterion : {"obs", "magnitude", "obd"}
        Which weight goes at each step.
    hdiag : ndarray of shape (n_in,), optional
        ``Σ_x x_q²`` per input (``obd``).
    bias : bool, default=True
        ``H`` has the bias coordinate (never removed, always updated).
    tick : callable, optional
        Progress callback (columns done).

    Returns
    -------
    pos : ndarray of shape (len(columns), steps)
        Entry position (in ``cols.rows``) removed at each step, -1 past the end.
    cost : ndarray of shape (len(columns), steps)
        Its saliency at that step (inf past the end).
    """
    columns = np.asarray(columns, np.int64)
    where = {c: r for r, c in enumerate(columns)}
    pos_out = np.full((columns.size, steps), -1, np.int64)
    cost_out = np.full((columns.size, steps), np.inf)
    counts = cols.counts
    with threadpool_limits(1):
        for s, batch in groups(counts, columns[counts[columns] > 0], extra=int(bias)):
            idx, pos = coordinates(cols, batch, s, bias=bias)
            G = np.linalg.inv(H[idx[:, :, None], idx[:, None, :]])
            w = cols.vals[pos]
            if bias:
                w = np.concatenate([w, cols.bias[batch][:, None]], axis=1)
            hd = None if hdiag is None else np.append(hdiag, 0.0)[idx]
            rem = np.ones(idx.shape, bool)
            if bias:
                rem[:, -1] = False
            n = min(steps, s)
            order, cost = _run(w, G, hd, rem, n, criterion)
            rows = np.array([where[c] for c in batch])
            ok = order >= 0
            got = np.where(ok, pos[np.arange(batch.size)[:, None], np.where(ok, order, 0)], -1)
            pos_out[rows, :n] = got
            cost_out[rows, :n] = cost
            if tick:
                tick(batch.size)
    return pos_out, cost_out


def merge_paths(pos, cost, k):
    """The ``k`` cheapest removals over neurons, each neuron's removals a prefix of its path.

    Costs along a path are made non-decreasing (running maximum) and the smallest are taken,
    ties by step, so that a neuron's later removal never comes before its earlier one.

    Parameters
    ----------
    pos : ndarray of shape (n, steps)
        Entry removed at each step of each path (-1 past the end).
    cost : ndarray of shape (n, steps)
        Its saliency.
    k : int
        Removals wanted (at most the number of path steps).

    Returns
    -------
    ndarray of int
        Entry positions removed.
    """
    c = np.maximum.accumulate(cost, axis=1).ravel()
    t = np.broadcast_to(np.arange(cost.shape[1]), cost.shape).ravel()
    order = np.lexsort((t, c))
    p = pos.ravel()[order]
    p = p[p >= 0]
    return p[:k]


def sequential_work(counts, steps):
    """Multiply-adds of greedy OBS on neurons with ``counts`` weights, ``steps`` removals each.

    Parameters
    ----------
    counts : ndarray of int
        Weights per neuron.
    steps : int
        Removals per neuron at most.

    Returns
    -------
    float
        ``Σ (s³ + min(s, steps)·s²)`` (the inverse, then one downdate per removal).
    """
    s = counts.astype(np.float64) + 1
    return float(np.sum(s ** 3 + np.minimum(s, steps) * s * s))
