"""O(k) samplers of distinct positions (uniform k-subsets, Bernoulli trials); the rng check."""

import math

import numpy as np

from . import csr
from .csr import isin_sorted, sorted_unique

__all__ = ["check_rng", "sample_distinct", "bernoulli_positions"]


def check_rng(rng, owner):
    """Check a random source: a ``Generator``, or a legacy ``RandomState`` (reference mode).

    Parameters
    ----------
    rng : object
        The value passed as ``rng``.
    owner : str
        Function named in the error message.

    Returns
    -------
    bool
        True for a ``RandomState``, False for a ``Generator``.

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(rng, np.random.Generator):
        return False
    if isinstance(rng, np.random.RandomState):
        return True
    raise TypeError(
        f"The 'rng' parameter of {owner} must be a numpy.random.Generator "
        "(e.g. np.random.default_rng(0)) or, in reference mode, a numpy.random.RandomState. "
        f"Got {type(rng).__name__} instead."
    )


def _draw_ints(rng, high, size):
    """``size`` int64 draws uniform on [0, high) from a Generator or a RandomState."""
    if isinstance(rng, np.random.Generator):
        return rng.integers(0, high, size=size, dtype=np.int64)
    return rng.randint(0, high, size=size, dtype=np.int64)


def _distinct_by_rejection(population, k, rng):
    """k sorted distinct int64 in [0, population) by rejection rounds (2k < population)."""
    out = sorted_unique(_draw_ints(rng, population, k))
    while out.size < k:
        extra = sorted_unique(_draw_ints(rng, population, k - out.size))
        pos = np.searchsorted(out, extra)
        pos_c = np.minimum(pos, out.size - 1)
        fresh = out[pos_c] != extra if out.size else np.ones(extra.size, bool)
        out = np.insert(out, pos[fresh], extra[fresh])
    return out


# Below this many elements a k-subset is drawn by sorting rejection rounds; above it by
# geometric gaps (no sort of random data, which costs 40-60 ns per element on the 2-core
# reference machine).
_GAPS_MIN = 1024
# Geometric gaps are computed in float64: exact integers up to 2**53.
_GAPS_MAX_POPULATION = 1 << 53


def bernoulli_positions(population, p, rng):
    """Sorted positions of independent Bernoulli(p) trials over ``range(population)``.

    Parameters
    ----------
    population : int
        Number of trials.
    p : float
        Success probability.
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness (``standard_exponential``).

    Returns
    -------
    ndarray of int64
        The successes, ascending; their count is Binomial(population, p).

    Notes
    -----
    Gaps between successive successes are geometric: ``1 + floor(E / -log1p(-p))`` with E
    standard exponential (P(gap > g) = (1 - p)^g). Their running sum lists the successes in
    increasing order, so nothing is sorted. For ``p > 0.5`` the failures are drawn this way
    and complemented in a boolean array of ``population <= 2 * E[count]`` entries.
    Exponentials are drawn in chunks whose sizes depend only on ``(population, p)`` and the
    counts so far, so the result is a function of the stream. O(count) time, O(count) memory
    (the result) plus O(CHUNK) temporaries.
    """
    population = int(population)
    if p <= 0.0 or population == 0:
        return np.empty(0, np.int64)
    if p >= 1.0:
        return np.arange(population, dtype=np.int64)
    if p > 0.5:
        mask = np.ones(population, dtype=bool)
        mask[bernoulli_positions(population, 1.0 - p, rng)] = False
        return np.flatnonzero(mask).astype(np.int64, copy=False)
    inv = -1.0 / math.log1p(-p)
    mean = population * p
    cap = int(mean + 6.0 * math.sqrt(mean) + 16)  # first allocation; grown if ever exceeded
    out = np.empty(cap, dtype=np.int64)
    n = 0
    last = -1  # position of the last success so far
    while last < population:
        rest = population - 1 - last
        size = min(csr.CHUNK, int(rest * p + 4.0 * math.sqrt(rest * p) + 16))
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


def sample_distinct(population, k, rng):
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
    population`` by geometric gaps (:func:`bernoulli_positions`, already sorted), then a
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
    """:func:`sample_distinct` for ``1 <= k``, ``2k <= population``."""
    if k < _GAPS_MIN or population > _GAPS_MAX_POPULATION:
        return _distinct_by_rejection(population, k, rng)
    # a rate slightly above k / population makes a surplus (deleted: O(count)) far more
    # likely than a shortfall (inserted by rejection rounds, slower); exactness does not
    # depend on the rate
    rate = min(0.5, (k + 4.0 * math.sqrt(k) + 16.0) / population)
    out = bernoulli_positions(population, rate, rng)
    c = out.size
    if c > k:
        return _delete_sorted(out, sample_distinct(c, c - k, rng))
    if c < k:
        out = _add_distinct(out, population, k - c, rng)
    return out


def _delete_sorted(a, drop):
    """``np.delete(a, drop)`` for sorted distinct ``drop``, compacting ``a`` in place.

    Returns a view of ``a``'s buffer; chunked, so no second array of ``a``'s size is made.
    """
    w = 0
    for lo in range(0, a.shape[0], csr.CHUNK):
        hi = min(a.shape[0], lo + csr.CHUNK)
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
        cand = sorted_unique(_draw_ints(rng, population, r - added.size))
        taken = isin_sorted(cand, out)
        taken |= isin_sorted(cand, added)
        new = cand[~taken]
        added = np.insert(added, np.searchsorted(added, new), new)
    return np.insert(out, np.searchsorted(out, added), added)
