"""O(nnz) samplers of distinct positions and the conversion of sorted linear keys to CSR."""

import math

import numpy as np
import scipy.sparse as sp

from .. import _kernels


def _check_rng(rng, owner):
    """Return True for a legacy RandomState, False for a Generator; TypeError otherwise."""
    if isinstance(rng, np.random.Generator):
        return False
    if isinstance(rng, np.random.RandomState):
        return True
    raise TypeError(
        f"The 'rng' parameter of {owner} must be a numpy.random.Generator "
        "(e.g. np.random.default_rng(0)) or, in reference mode, a numpy.random.RandomState. "
        f"Got {type(rng).__name__} instead."
    )


def _check_float_dtype(dtype, owner):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(
            f"The 'dtype' parameter of {owner} must be float32 or float64. Got {dt} instead."
        )
    return dt


def _draw_ints(rng, high, size):
    """``size`` int64 draws uniform on [0, high) from a Generator or a RandomState."""
    if isinstance(rng, np.random.Generator):
        return rng.integers(0, high, size=size, dtype=np.int64)
    return rng.randint(0, high, size=size, dtype=np.int64)


def _sorted_unique(a, *, inplace=False):
    """Sorted distinct values of an integer array (of a sorted copy, or of ``a`` itself).

    ``np.sort`` plus a neighbour comparison: with NumPy 2.4 this is ~10x faster than
    ``np.unique``, which hashes large integer arrays before sorting. ``inplace=True`` sorts
    ``a`` and returns a compacted view of its buffer (no second array of its size is kept).
    """
    if inplace:
        a.sort()
        s = a
    else:
        s = np.sort(a)
    if s.size < 2:
        return s
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    if not inplace:
        return s[new]
    n_u = int(np.count_nonzero(new))
    s[:n_u] = s[new]
    return s[:n_u]


def _distinct_by_rejection(population, k, rng):
    """k sorted distinct int64 in [0, population) by rejection rounds (2k < population)."""
    out = _sorted_unique(_draw_ints(rng, population, k))
    while out.size < k:
        extra = _sorted_unique(_draw_ints(rng, population, k - out.size))
        pos = np.searchsorted(out, extra)
        pos_c = np.minimum(pos, out.size - 1)
        fresh = out[pos_c] != extra if out.size else np.ones(extra.size, bool)
        out = np.insert(out, pos[fresh], extra[fresh])
    return out


# Below this many elements a k-subset is drawn by sorting rejection rounds; above it by
# geometric gaps (no sort of random data, which costs 40-60 ns per element on the 2-core
# reference machine).
_GAPS_MIN = 1024
# Chunk length of the gap, value and key-conversion loops: bounds the float64 / int64
# temporaries to a few MiB at any layer size.
_CHUNK = 1 << 18
# Row pointers come from one binary search per row while rows are fewer than nnz / this
# (O(n_in log nnz), no per-entry temporary), else from counting (O(nnz + n_in)).
_SEARCH_RATIO = 16
# Geometric gaps are computed in float64: exact integers up to 2**53.
_GAPS_MAX_POPULATION = 1 << 53


def _bernoulli_positions(population, p, rng):
    """Sorted positions of independent Bernoulli(p) trials over ``range(population)``, int64.

    Gaps between successive successes are geometric: ``1 + floor(E / -log1p(-p))`` with E
    standard exponential (P(gap > g) = (1 - p)^g). Their running sum lists the successes in
    increasing order, so nothing is sorted. For ``p > 0.5`` the failures are drawn this way
    and complemented in a boolean array of ``population <= 2 * E[count]`` entries.
    Exponentials are drawn in chunks whose sizes depend only on ``(population, p)`` and the
    counts so far, so the result is a function of the stream. O(count) time, O(count) memory
    (the result) plus O(_CHUNK) temporaries.
    """
    population = int(population)
    if p <= 0.0 or population == 0:
        return np.empty(0, np.int64)
    if p >= 1.0:
        return np.arange(population, dtype=np.int64)
    if p > 0.5:
        mask = np.ones(population, dtype=bool)
        mask[_bernoulli_positions(population, 1.0 - p, rng)] = False
        return np.flatnonzero(mask).astype(np.int64, copy=False)
    inv = -1.0 / math.log1p(-p)
    mean = population * p
    cap = int(mean + 6.0 * math.sqrt(mean) + 16)  # first allocation; grown if ever exceeded
    out = np.empty(cap, dtype=np.int64)
    n = 0
    last = -1  # position of the last success so far
    while last < population:
        rest = population - 1 - last
        size = min(_CHUNK, int(rest * p + 4.0 * math.sqrt(rest * p) + 16))
        e = rng.standard_exponential(size)
        e *= inv
        np.minimum(e, population, out=e)  # a gap past the end is as good as any larger one
        np.floor(e, out=e)
        g = e.astype(np.int64)
        g[0] += last + 1
        g[1:] += 1
        np.cumsum(g, out=g)
        if g[-1] >= population:
            g = g[:int(np.searchsorted(g, population))]
            last = population
        else:
            last = int(g[-1])
        if n + g.size > out.size:
            out = np.concatenate([out[:n], np.empty(max(g.size, out.size // 2), np.int64)])
        out[n:n + g.size] = g
        n += g.size
    return out[:n]


def _sample_distinct(population, k, rng):
    """A uniformly random k-subset of ``range(population)``, sorted, as int64.

    Parameters
    ----------
    population : int
        Size of the set sampled from (may be far larger than memory allows to hold).
    k : int
        Number of distinct elements, ``0 <= k <= population``.
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness.

    Returns
    -------
    ndarray of int64, shape (k,)
        Sorted distinct values.

    Notes
    -----
    If ``2k >= population`` the complement (``population - k <= k`` elements) is sampled
    and removed from a boolean array of size ``population <= 2k``. Otherwise, for
    ``k < _GAPS_MIN``: draw k values with replacement, sort and deduplicate them, redraw the
    shortfall until k distinct values are held (the first k distinct values of one i.i.d.
    uniform stream). For larger k: Bernoulli trials at rate ``(k + 4 sqrt(k) + 16) /
    population`` by geometric gaps (:func:`_bernoulli_positions`, already sorted), then a
    uniformly random subset of the surplus is deleted, or (rarely) the shortfall is added by
    rejection rounds from the complement.
    A Bernoulli set is a uniform subset given its size, so either fix-up leaves a uniform
    k-subset; the fix-up is O(sqrt(k)) elements. O(k) time (no sort of k random values) and
    O(k) memory; an array of size ``population`` is never built unless ``population <= 2k``.
    """
    population = int(population)
    k = int(k)
    if k < 0 or k > population:
        raise ValueError(f"cannot draw {k} distinct values from a population of {population}.")
    if k == 0:
        return np.empty(0, np.int64)
    if 2 * k >= population:
        m = population - k
        mask = np.ones(population, dtype=bool)
        if m:
            mask[_sample_sparse(population, m, rng)] = False
        return np.flatnonzero(mask).astype(np.int64, copy=False)
    return _sample_sparse(population, k, rng)


def _sample_sparse(population, k, rng):
    """:func:`_sample_distinct` for ``1 <= k``, ``2k <= population``."""
    if k < _GAPS_MIN or population > _GAPS_MAX_POPULATION:
        return _distinct_by_rejection(population, k, rng)
    # a rate slightly above k / population makes a surplus (deleted: O(count)) far more
    # likely than a shortfall (inserted by rejection rounds, slower); exactness does not
    # depend on the rate
    rate = min(0.5, (k + 4.0 * math.sqrt(k) + 16.0) / population)
    out = _bernoulli_positions(population, rate, rng)
    c = out.size
    if c > k:
        return _delete_sorted(out, _sample_distinct(c, c - k, rng))
    if c < k:
        out = _add_distinct(out, population, k - c, rng)
    return out


def _delete_sorted(a, drop):
    """``np.delete(a, drop)`` for sorted distinct ``drop``, compacting ``a`` in place.

    Returns a view of ``a``'s buffer; chunked, so no second array of ``a``'s size is made.
    """
    w = 0
    for lo in range(0, a.shape[0], _CHUNK):
        hi = min(a.shape[0], lo + _CHUNK)
        d0, d1 = np.searchsorted(drop, [lo, hi])
        keep = np.ones(hi - lo, dtype=bool)
        keep[drop[d0:d1] - lo] = False
        seg = a[lo:hi][keep]
        a[w:w + seg.shape[0]] = seg
        w += seg.shape[0]
    return a[:w]


def _add_distinct(out, population, r, rng):
    """Insert r uniform distinct values of ``range(population)`` not in sorted ``out``."""
    added = np.empty(0, dtype=np.int64)
    while added.size < r:
        cand = _sorted_unique(_draw_ints(rng, population, r - added.size))
        taken = _isin_sorted(cand, out)
        taken |= _isin_sorted(cand, added)
        new = cand[~taken]
        added = np.insert(added, np.searchsorted(added, new), new)
    return np.insert(out, np.searchsorted(out, added), added)


def _isin_sorted(a, b):
    """``np.isin(a, b)`` for sorted unique int64 ``b``, by binary search: O(len(a) log len(b))."""
    if b.size == 0:
        return np.zeros(a.shape[0], dtype=bool)
    pos = np.searchsorted(b, a)
    np.minimum(pos, b.size - 1, out=pos)
    return b[pos] == a

def _keys_to_csr(keys, n_in, n_out, idt):
    """Row pointer and column indices (dtype ``idt``) of sorted distinct linear keys.

    The row pointer comes from one binary search per row boundary (O(n_in log nnz)) and the
    columns from chunked ``key - (key // n_out) * n_out``: no int64 temporary of size nnz.
    """
    nnz = keys.shape[0]
    counting = n_in * _SEARCH_RATIO > nnz  # narrow layer: as many rows as entries
    if counting:
        indptr = np.zeros(n_in + 1, dtype=idt)
    else:
        bounds = np.arange(n_in + 1, dtype=np.int64)
        bounds *= n_out
        indptr = np.searchsorted(keys, bounds).astype(idt)
        del bounds
    cols = np.empty(nnz, dtype=idt)
    for a in range(0, nnz, _CHUNK):
        k = keys[a:a + _CHUNK]
        r = k // n_out
        if counting:
            indptr[1:] += np.bincount(r, minlength=n_in).astype(idt, copy=False)
        r *= n_out
        np.subtract(k, r, out=r)
        cols[a:a + _CHUNK] = r
    if counting:
        np.cumsum(indptr, out=indptr)
    return indptr, cols


def _csr_from_keys(keys, values, n_in, n_out, idt):
    """Canonical csr_array from sorted distinct linear keys ``i * n_out + j`` and their values."""
    indptr, cols = _keys_to_csr(keys, n_in, n_out, idt)
    W = sp.csr_array((values, cols, indptr), shape=(n_in, n_out), copy=False)
    if W.indices.dtype != idt:  # scipy may choose another index dtype; force the requested one
        W.indices = cols
        W.indptr = indptr
    W.has_sorted_indices = True
    W.has_canonical_format = True
    return W


def _shape_str(n_in, n_out):
    return f"{n_in}x{n_out}"


def _index_dtype(index_dtype, n_in, n_out, nnz, owner):
    need = _kernels.index_dtype(n_in, n_out, nnz)
    if index_dtype is None:
        return need
    idt = np.dtype(index_dtype)
    if idt not in (np.int32, np.int64):
        raise ValueError(
            f"The 'index_dtype' parameter of {owner} must be int32 or int64. Got {idt} instead."
        )
    if idt.itemsize < need.itemsize:
        raise ValueError(
            f"The 'index_dtype' parameter of {owner} is int32, but the {_shape_str(n_in, n_out)} "
            f"layer with {nnz} connections needs int64 indices. Pass index_dtype=np.int64 or None."
        )
    return idt
