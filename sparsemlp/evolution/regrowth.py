"""SET's regrowth samplers: new connections among the free positions of a kept pattern."""

import numpy as np

from ..topology.csr import (
    fill_values,
    in_pattern,
    isin_sorted,
    linear_keys,
    scalar_value_fn,
    sorted_unique,
)
from ..topology.laws import init_values
from ..topology.sampling import sample_distinct

__all__ = ["new_connections", "sample_free", "sample_free_amar", "sample_free_scalar"]


def new_connections(layer, indptr_k, ind_k, k, rng, *, init, normal_std, legacy,
                    original=False):
    """``k`` new connections of a layer: sorted linear keys and their values.

    Parameters
    ----------
    layer : SparseLinear
        The layer (its shape, value dtype and kernels); not modified.
    indptr_k, ind_k : ndarray
        The kept pattern (canonical CSR) the new connections avoid.
    k : int
        Number of new connections, at most the free positions.
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness.
    init : {"normal", "he_uniform", "xavier_uniform"}
        Law of the values.
    normal_std : float
        Standard deviation of the ``"normal"`` law.
    legacy : bool
        Whether ``rng`` is a RandomState.
    original : bool, default=False
        The original scalar loop (:func:`sample_free_scalar`) instead of :func:`sample_free`
        (Generator) or :func:`sample_free_amar` (RandomState).

    Returns
    -------
    keys : ndarray of int64, shape (k,)
        Sorted distinct keys ``row * n_out + col``, none in the kept pattern.
    values : ndarray of shape (k,)
        The value of each key, in the layer's dtype.

    Notes
    -----
    Arguments are trusted: the rules of :mod:`sparsemlp.evolution.set` validate them.
    """
    W = layer.W
    n_in, n_out = W.shape
    if original:
        return sample_free_scalar(indptr_k, ind_k, n_in, n_out, k, rng, init, normal_std,
                                  W.data.dtype)
    if legacy:
        return sample_free_amar(indptr_k, ind_k, n_in, n_out, k, rng, init, normal_std,
                                W.data.dtype)
    return sample_free(layer.kernels, indptr_k, ind_k, n_in, n_out, k, rng, init, normal_std,
                       W.data.dtype)


def sample_free(kernels, indptr_k, ind_k, n_in, n_out, k, rng, init, normal_std, dtype):
    """``k`` distinct positions uniform among the free ones, and their values (Generator).

    Parameters
    ----------
    kernels : KernelSet
        Backend (``empty_slots``).
    indptr_k, ind_k : ndarray
        The kept pattern (canonical CSR).
    n_in, n_out : int
        Shape of the layer.
    k : int
        Number of new connections.
    rng : numpy.random.Generator
        Randomness.
    init : {"normal", "he_uniform", "xavier_uniform"}
        Law of the values.
    normal_std : float
        Standard deviation of the ``"normal"`` law.
    dtype : numpy.dtype
        Dtype of the values.

    Returns
    -------
    keys : ndarray of int64, shape (k,)
        Sorted keys ``row * n_out + col`` of free positions.
    values : ndarray of shape (k,)
        Values of the law in row-major order of the keys.

    Notes
    -----
    Samples k distinct ranks among the ``n_empty = n_in * n_out - n_kept`` empty slots
    (already sorted: :func:`sparsemlp.topology.sampling.sample_distinct`) and maps each rank
    to its (row, column) with the backend's ``empty_slots`` kernel (one merge-like pass over
    the kept entries). O(nnz + k) time, no sort of random data, O(nnz) memory at any density.
    """
    n_empty = n_in * n_out - ind_k.shape[0]
    keys = sample_distinct(n_empty, k, rng)  # sorted ranks among the empty slots
    kernels.empty_slots(indptr_k, ind_k, n_out, keys)  # -> their linear positions
    vals = np.empty(k, dtype=dtype)  # float64 draws, cast chunk by chunk
    fill_values(vals, init, n_in, n_out, rng, normal_std, legacy=False)
    return keys, vals


def sample_free_amar(indptr_k, ind_k, n_in, n_out, k, rng, init, normal_std, dtype):
    """The fast regrowth of the original SET code (``weightsEvolution_Amar``), RNG-exact.

    Parameters
    ----------
    indptr_k, ind_k : ndarray
        The kept pattern (canonical CSR).
    n_in, n_out : int
        Shape of the layer.
    k : int
        Number of new connections.
    rng : numpy.random.RandomState
        The legacy stream, consumed in the original's order.
    init : {"normal", "he_uniform", "xavier_uniform"}
        Law of the values.
    normal_std : float
        Standard deviation of the ``"normal"`` law.
    dtype : numpy.dtype
        Dtype of the values (drawn in float64 and cast, as the original).

    Returns
    -------
    keys : ndarray of int64, shape (k,)
        Sorted keys of the new positions.
    values : ndarray of shape (k,)
        Value ``t`` of the draw goes to the ``t``-th new position found.

    Notes
    -----
    All values first (one vector call), then rounds of ``randint(0, n_in, need, int32)``,
    ``randint(0, n_out, need, int32)``, unique pairs sorted row-major, minus the occupied
    ones, until k positions. ``found`` carries the discovery index beside the sorted keys,
    so no list of rounds, concatenation or argsort is kept, and the kept pattern is never
    expanded to int64 keys (:func:`sparsemlp.topology.csr.in_pattern`).
    O(rounds * (need log nnz + k)) time.
    """
    vals = init_values(init, n_in, n_out, k, rng, dtype, normal_std=normal_std)
    added = np.empty(0, dtype=np.int64)  # sorted keys found so far
    found = np.empty(0, dtype=np.int32 if k < 2**31 else np.int64)  # discovery index of each
    need = k
    while need > 0:
        cand = rng.randint(0, n_in, size=need, dtype=np.int32).astype(np.int64)
        cand *= n_out
        cand += rng.randint(0, n_out, size=need, dtype=np.int32)
        cand = sorted_unique(cand, inplace=True)  # unique (row, col), row-major
        taken = in_pattern(cand, indptr_k, ind_k, n_out)
        taken |= isin_sorted(cand, added)
        new = cand[~taken]
        del cand, taken
        if added.size == 0:  # first round (nearly all of k on sparse layers): no insert copies
            added = new
            found = np.arange(new.size, dtype=found.dtype)
            need -= new.size
        elif new.size:
            pos = np.searchsorted(added, new)
            added = np.insert(added, pos, new)
            found = np.insert(found, pos, np.arange(k - need, k - need + new.size,
                                                    dtype=found.dtype))
            need -= new.size
    return added, vals[found]


def sample_free_scalar(indptr_k, ind_k, n_in, n_out, k, rng, init, normal_std, dtype):
    """The original scalar regrowth loop of the SET-RBM (and the first SET-MLP code).

    Parameters
    ----------
    indptr_k, ind_k : ndarray
        The kept pattern (canonical CSR).
    n_in, n_out : int
        Shape of the layer.
    k : int
        Number of new connections.
    rng : numpy.random.RandomState or numpy.random.Generator
        Randomness; a RandomState gives the original's numbers, a Generator draws with
        ``integers`` / ``standard_normal`` in the same order.
    init : {"normal", "he_uniform", "xavier_uniform"}
        Law of the values (the uniform laws draw one scalar ``uniform(-lim, lim)``).
    normal_std : float
        Standard deviation of the ``"normal"`` law.
    dtype : numpy.dtype
        Dtype of the values.

    Returns
    -------
    keys : ndarray of int64, shape (k,)
        Sorted keys of the new positions.
    values : ndarray of shape (k,)
        Their values.

    Notes
    -----
    Per new connection: ``i = randint(0, n_in)``, ``j = randint(0, n_out)`` (scalar calls)
    until ``(i, j)`` is neither kept nor already regrown, then the value
    ``randn() / (1 / normal_std)``. Expected O(k / (1 - density)) Python-level calls and
    O(nnz) memory for a Python set of the occupied keys.
    """
    value = scalar_value_fn(init, n_in, n_out, rng, normal_std)
    if isinstance(rng, np.random.RandomState):
        randint = rng.randint
    else:
        def randint(lo, hi):
            return int(rng.integers(lo, hi))

    occupied = set(linear_keys(indptr_k, ind_k, n_out).tolist())
    keys = []
    vals = []
    for _ in range(k):
        i = randint(0, n_in)
        j = randint(0, n_out)
        while i * n_out + j in occupied:
            i = randint(0, n_in)
            j = randint(0, n_out)
        key = i * n_out + j
        occupied.add(key)
        keys.append(key)
        vals.append(value())
    keys = np.asarray(keys, dtype=np.int64)
    order = np.argsort(keys)
    keys = keys[order]
    vals = np.asarray(vals, dtype=np.float64)[order].astype(dtype)
    return keys, vals
