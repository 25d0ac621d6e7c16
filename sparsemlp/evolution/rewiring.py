"""Degree- and bank-preserving SET rewiring of fixed-degree layers (regular, clash-free)."""

import math

import numpy as np

from .._validation import check_param
from ..topology.csr import fill_values, isin_sorted, linear_keys
from .steps import EvolutionResult, check_rule_args, compact, merge_new
from .thresholds import kept_positions

__all__ = ["evolve_degree_preserving", "swap_rows"]


def swap_rows(rows, cols, n_out, *, rng, forbidden=None, groups=None, swaps=3.0,
              max_rounds=None):
    """Mix connections by double-edge swaps that keep every row and column degree.

    Each round pairs the connections at random (within the same group, if given) and swaps
    the rows of a pair, ``(r_a, c_a), (r_b, c_b) -> (r_b, c_a), (r_a, c_b)``, when neither
    new connection exists already (among the connections or in ``forbidden``). Pairs that
    share a cell of their 2 x 2 (rows x columns) grids with another pair of the round sit the
    round out, so the accepted swaps are independent and reversible: the chain is symmetric
    and its stationary law is uniform over the configurations it can reach.

    Parameters
    ----------
    rows, cols : ndarray of int64, shape (k,)
        The connections; ``rows`` is overwritten with the result, ``cols`` is unchanged
        (every connection keeps its column, so it can keep its slot in a schedule).
    n_out : int
        Number of columns (for the linear keys ``row * n_out + col``).
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness (keyword-only).
    forbidden : ndarray of int64, optional
        Sorted linear keys that no connection may move onto (the kept connections).
    groups : ndarray of int, shape (k,), optional
        Group of each connection's row; rows are only exchanged within a group (the bank
        ``row % z`` of a clash-free layer). A row keeps its group, so groups are stable.
    swaps : float, default=3.0
        Accepted swaps per connection wanted, on average (each swap moves two): the number
        of rounds is ``ceil(swaps * k / 2 / a)`` with ``a`` the swaps a pilot round would
        accept on the initial configuration (not applied), so about ``swaps`` rounds on a
        sparse layer, where nearly every proposal is accepted, more on a dense one (``a``
        is taken as at least 1).
    max_rounds : int, optional
        Upper bound on the rounds; default ``ceil(20 * swaps)``.

    Returns
    -------
    ndarray of int64
        ``rows`` (permuted within groups). The multiset of rows, every column and every
        group of each connection are unchanged, and no two connections coincide if none
        did before. With fewer than two connections or ``swaps=0``, ``rows`` is returned
        unchanged and ``rng`` is not used.

    Notes
    -----
    A round is vectorised: one random pairing, an argsort of the pairs' 2k grid cells to find
    interacting pairs, and binary searches of the sorted proposals in ``forbidden`` and in
    the current keys. O(k log(k + len(forbidden))) time and O(k) memory per round. Each swap
    keeps every invariant, so nothing is ever repaired. The chain starts from the given
    configuration and runs a finite number of rounds, so its law is close to, not exactly,
    uniform; on a tight 6 x 6 toy (8 moving, 6 kept connections) it is indistinguishable
    from uniform from ``swaps=5`` (chi-square, tested). Accepting every valid swap of a
    round without the grid rule, or stopping after a count of accepted swaps, biases the
    law (measured: some configurations 2-5x more frequent than others at any length).
    """
    k = rows.shape[0]
    if k < 2 or swaps <= 0:
        return rows
    forbidden = np.empty(0, np.int64) if forbidden is None else forbidden
    max_rounds = math.ceil(20 * swaps) if max_rounds is None else max_rounds
    # The number of rounds must not depend on the chain's path (stopping once enough swaps
    # were accepted weights the states by their acceptance rate: measured biased), so it is
    # fixed up front from a pilot round evaluated on the initial state and not applied.
    pilot = _swap_round(rows, cols, n_out, rng, forbidden, groups, apply=False)
    n_rounds = min(max_rounds, math.ceil(swaps * k / 2 / max(pilot, 1)))
    for _ in range(n_rounds):
        _swap_round(rows, cols, n_out, rng, forbidden, groups, apply=True)
    return rows


def _swap_round(rows, cols, n_out, rng, forbidden, groups, *, apply):
    """One round of :func:`swap_rows`; returns the number of accepted swaps."""
    k = rows.shape[0]
    perm = rng.permutation(k)
    if groups is None:
        a, b = perm[0:k - 1:2], perm[1:k:2]
    else:
        perm = perm[np.argsort(groups[perm], kind="stable")]  # random order within groups
        g = groups[perm]
        start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        rank = np.arange(k) - np.repeat(start, np.diff(np.r_[start, k]))
        first = np.flatnonzero((rank % 2 == 0)[:-1] & (g[1:] == g[:-1]))
        a, b = perm[first], perm[first + 1]
    keep = (rows[a] != rows[b]) & (cols[a] != cols[b])  # other pairs are no-ops
    a, b = a[keep], b[keep]
    m = a.shape[0]
    if m == 0:
        return 0
    ra, rb, ca, cb = rows[a], rows[b], cols[a], cols[b]
    # a pair's grid {ra, rb} x {ca, cb} is the same before and after its swap; pairs whose
    # grids share a cell could interact, so they sit this round out (a symmetric rule)
    cells = np.concatenate([ra * n_out + ca, ra * n_out + cb, rb * n_out + ca, rb * n_out + cb])
    shared = _repeated_mask(cells)
    idx = np.flatnonzero(~(shared[:m] | shared[m:2 * m] | shared[2 * m:3 * m] | shared[3 * m:]))
    # the proposed connections of the free pairs, tested in sorted order (binary searches of
    # sorted queries walk the arrays in order: ~6x faster than random queries here)
    n = idx.shape[0]
    prop = np.concatenate([rb[idx] * n_out + ca[idx], ra[idx] * n_out + cb[idx]])
    order = np.argsort(prop)
    ps = prop[order]
    taken = isin_sorted(ps, forbidden)
    taken |= isin_sorted(ps, np.sort(rows * n_out + cols))
    bad = np.empty(2 * n, dtype=bool)
    bad[order] = taken
    acc = idx[~(bad[:n] | bad[n:])]
    if apply:
        rows[a[acc]], rows[b[acc]] = rb[acc], ra[acc]
    return acc.shape[0]


def _repeated_mask(a):
    """Boolean mask of the entries of ``a`` whose value occurs more than once."""
    order = np.argsort(a)
    s = a[order]
    same = s[1:] == s[:-1]
    rep_s = np.zeros(a.shape[0], dtype=bool)
    rep_s[1:] |= same
    rep_s[:-1] |= same
    out = np.empty(a.shape[0], dtype=bool)
    out[order] = rep_s
    return out


def evolve_degree_preserving(layer, *, zeta, rng, init="normal", normal_std=0.1, swaps=3.0):
    """One SET step that keeps every degree (and, with a schedule, clash-freedom).

    Parameters
    ----------
    layer : SparseLinear
        The layer; its ``W`` (and ``layer.schedule``, if set) is modified in place and its
        transposed index refreshed.
    zeta : float
        Fraction in [0, 1) removed per sign, with SET's rule (:func:`sparsemlp.evolution.evolve`).
        ``zeta=0`` leaves the layer untouched and draws nothing.
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness.
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the regrown values.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.
    swaps : float, default=3.0
        Accepted swaps per removed connection, on average, among the removed connections
        (:func:`swap_rows`); 0 regrows every removed connection where it was.

    Returns
    -------
    EvolutionResult
        ``keep_index``, ``new_positions`` (ascending, for
        :func:`~sparsemlp.evolution.remap_optimizer`),
        ``n_removed`` and ``n_regrown`` (equal).

    Raises
    ------
    ValueError
        If ``zeta`` is out of range, the weights hold NaN, or ``layer.schedule`` does not fit
        the layer.
    TypeError
        If ``rng`` or ``layer`` has the wrong type.

    See Also
    --------
    sparsemlp.evolution.evolve : Plain SET (degrees drift).
    sparsemlp.evolution.apply : This step and the optimizer's state carried along.
    swap_rows : The degree-preserving shuffle.

    Notes
    -----
    Remove as SET does, then regrow the removed connections' columns with their rows
    shuffled by double-edge swaps (:func:`swap_rows`) that avoid every kept connection: every
    row (input) and column (output) regains exactly what it lost, so a ``regular`` or
    ``clash_free`` layer stays regular. A removed connection may come back where it was, as
    in SET (always so on a fully dense layer, where no swap exists); every regrown
    connection gets a fresh value. The swaps draw first, then the values, one per new
    connection in row-major order; with ``swaps=0`` or on a fully dense layer only the
    values are drawn.

    With ``layer.schedule`` (a :class:`sparsemlp.topology.ClashFreeSchedule`), rows are only
    exchanged between inputs of the same bank (``row % z``) and each connection keeps its
    schedule slot (cycle, lane) and output, so every cycle still reads z different banks;
    ``schedule.order`` is rewritten with the new positions. O(nnz + k log nnz) time per round
    for ``k = n_removed``, O(nnz) memory (the kept keys, int64); about ten times the cost per
    connection of :func:`sparsemlp.evolve` (timings in benchmarks/README.md).

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018);
    Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware
    Acceleration", IEEE JETCAS 9(2):332-345 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp.nn.layers import SparseLinear
    >>> from sparsemlp.topology import regular
    >>> rng = np.random.default_rng(0)
    >>> layer = SparseLinear(regular(40, 20, 5, rng=rng), kernels="numpy")
    >>> res = evolve_degree_preserving(layer, zeta=0.3, rng=rng)
    >>> np.diff(layer.W.indptr).tolist() == [5] * 40, np.bincount(layer.W.indices).tolist() == [10] * 20
    (True, True)
    """
    owner = "evolve_degree_preserving"
    init, normal_std, legacy = check_rule_args(layer, rng, init, normal_std, owner)
    swaps = check_param("swaps", swaps, "float", low=0, owner=owner)
    W = layer.W
    n_in, n_out = W.shape
    nnz = int(W.indptr[-1])
    schedule = getattr(layer, "schedule", None)
    if schedule is not None and schedule.order.shape[0] != nnz:
        raise ValueError(f"layer.schedule has {schedule.order.shape[0]} connections but the layer "
                         f"has {nnz}. Set layer.schedule = None or rebuild the layer.")
    keep_index = kept_positions(W.data[:nnz], zeta, owner=owner)  # validates zeta
    if keep_index is None:
        return EvolutionResult.unchanged(nnz)
    removed = np.ones(nnz, dtype=bool)
    removed[keep_index] = False
    removed = np.flatnonzero(removed)
    k = removed.shape[0]
    rows = np.searchsorted(W.indptr, removed, side="right") - 1
    cols = W.indices[removed].astype(np.int64)
    indptr_k, ind_k, data_k = compact(W, keep_index, layer.kernels)
    kept = linear_keys(indptr_k, ind_k, n_out)
    groups = None if schedule is None else rows % schedule.z
    if nnz < n_in * n_out:  # a fully dense layer has no swap
        swap_rows(rows, cols, n_out, rng=rng, forbidden=kept, groups=groups, swaps=swaps)
    del kept
    keys = rows * n_out + cols
    srt = np.argsort(keys)
    keys = keys[srt]
    vals = np.empty(k, dtype=W.data.dtype)
    fill_values(vals, init, n_in, n_out, rng, normal_std, legacy=legacy)
    if schedule is not None:
        slot_of = np.empty(nnz, dtype=np.int64)
        slot_of[schedule.order] = np.arange(nnz, dtype=np.int64)
    new_positions = merge_new(layer, indptr_k, ind_k, data_k, keys, vals)
    if schedule is not None:
        fresh = np.zeros(nnz, dtype=bool)
        fresh[new_positions] = True
        order = schedule.order
        order[slot_of[keep_index]] = np.flatnonzero(~fresh)
        order[slot_of[removed[srt]]] = new_positions
    return EvolutionResult(keep_index, new_positions, k, k)
