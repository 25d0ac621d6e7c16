"""Erdős–Rényi sparse topologies and weight-initialisation laws, in O(nnz) time and memory."""

import math
import warnings

import numpy as np
import scipy.sparse as sp

from .. import _kernels
from .._validation import check_param

__all__ = ["INIT_LAWS", "ER_LAWS", "init_values", "erdos_renyi", "describe"]

INIT_LAWS = ("normal", "he_uniform", "xavier_uniform")
ER_LAWS = ("bernoulli", "draws")

# Law A warns when the drawn layer is at least this dense.
_DENSE_WARN = 0.9


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


def _sorted_unique(a):
    """Sorted distinct values of an integer array (in place sort of a copy).

    ``np.sort`` plus a neighbour comparison: with NumPy 2.4 this is ~10x faster than
    ``np.unique``, which hashes large integer arrays before sorting.
    """
    s = np.sort(a)
    if s.size < 2:
        return s
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    return s[new]


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


def init_values(init, n_in, n_out, size, rng, dtype=np.float32, *, normal_std=0.1):
    """Draw ``size`` initial weight values from an initialisation law.

    Parameters
    ----------
    init : {"normal", "he_uniform", "xavier_uniform"}
        ``"normal"``: ``z / (1.0 / normal_std)`` with z standard normal; with the default
        ``normal_std=0.1`` this is the original SET ``randn() / 10`` (RBM: ``normal_std=0.05``,
        ``randn() / 20``). ``"he_uniform"``: ``U(-sqrt(6 / n_in), +sqrt(6 / n_in))``.
        ``"xavier_uniform"``: ``U(-sqrt(6 / (n_in + n_out)), +sqrt(6 / (n_in + n_out)))``.
    n_in : int
        Fan-in of the layer (rows of W).
    n_out : int
        Fan-out of the layer (columns of W).
    size : int
        Number of values.
    rng : numpy.random.Generator or numpy.random.RandomState
        A Generator draws with ``standard_normal`` / ``uniform``; a legacy RandomState with
        ``randn(size)`` / ``uniform(lo, hi, size)``, as the original code did.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Dtype of the result; values are computed in float64 and then cast.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.

    Returns
    -------
    ndarray of shape (size,)
        The values, in draw order.

    Raises
    ------
    ValueError
        If ``init`` is unknown, a size is out of range or ``normal_std <= 0``.
    TypeError
        If ``rng`` is neither a Generator nor a RandomState.

    Notes
    -----
    O(size) time and memory. Zero-size draws consume no random numbers.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).
    """
    init = check_param("init", init, "str", options=INIT_LAWS, owner="init_values")
    n_in = check_param("n_in", n_in, "int", low=1, owner="init_values")
    n_out = check_param("n_out", n_out, "int", low=1, owner="init_values")
    size = check_param("size", size, "int", low=0, owner="init_values")
    normal_std = check_param("normal_std", normal_std, "float", low=0, low_open=True,
                             owner="init_values")
    legacy = _check_rng(rng, "init_values")
    dtype = _check_float_dtype(dtype, "init_values")
    out = np.empty(size, dtype=dtype)
    _fill_values(out, init, n_in, n_out, rng, normal_std, legacy)
    return out


def _fill_values(out, init, n_in, n_out, rng, normal_std, legacy=None):
    """Write ``out.size`` values of the law into ``out``, drawn in float64 chunks.

    Every law draws value by value from the stream (Generator ziggurat, legacy Box-Muller
    with its cached second value, ``lo + (hi - lo) * U``), so chunked draws equal one vector
    draw bit for bit; the float64 temporary is O(_CHUNK), not O(size).
    """
    if legacy is None:
        legacy = isinstance(rng, np.random.RandomState)
    size = out.shape[0]
    if init == "normal":
        scale = 1.0 / normal_std
        draw = rng.randn if legacy else rng.standard_normal
    else:
        fan = n_in if init == "he_uniform" else n_in + n_out
        lim = math.sqrt(6.0 / fan)
    for a in range(0, size, _CHUNK):
        b = min(size, a + _CHUNK)
        if init == "normal":
            v = draw(b - a)
            v /= scale
        else:
            v = rng.uniform(-lim, lim, b - a)
        out[a:b] = v


def _scalar_value_fn(init, n_in, n_out, rng, normal_std):
    """One value per call with the legacy scalar draw of each law (``randn() / 10`` etc.)."""
    if init == "normal":
        randn = rng.randn
        scale = 1.0 / normal_std
        return lambda: randn() / scale
    fan = n_in if init == "he_uniform" else n_in + n_out
    lim = math.sqrt(6.0 / fan)
    uniform = rng.uniform
    return lambda: uniform(-lim, lim)


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


def erdos_renyi(n_in, n_out, *, epsilon=None, density=None, nnz=None, law="bernoulli",
                init="normal", rng, dtype=np.float32, index_dtype=None, saturate=False,
                normal_std=0.1):
    """Random sparse layer with an Erdős–Rényi topology, as a canonical CSR array.

    Parameters
    ----------
    n_in : int
        Number of inputs (rows of W).
    n_out : int
        Number of outputs (columns of W).
    epsilon : float, optional
        SET's density parameter: ``p = epsilon * (n_in + n_out) / (n_in * n_out)`` for
        ``law="bernoulli"``, ``round(epsilon * (n_in + n_out))`` draws for ``law="draws"``.
    density : float, optional
        Probability in [0, 1] that an entry is present (Bernoulli).
    nnz : int, optional
        Exact number of connections, placed uniformly at distinct positions.
    law : {"bernoulli", "draws"}, default="bernoulli"
        How ``epsilon`` is turned into a topology. ``"bernoulli"`` (REFERENCE Law B): every
        entry present independently with probability p. ``"draws"`` (Law A, the original
        SET-MLP / SET-RBM): draws with replacement, last write wins, so
        ``E[nnz] = n m (1 - (1 - 1/(n m))^T)``. Only used with ``epsilon``.
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the values, see :func:`init_values`.
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness (keyword-only, required). With a legacy RandomState and
        ``law="draws"`` the original's exact order of scalar draws is reproduced.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Dtype of the values.
    index_dtype : {numpy.int32, numpy.int64}, optional
        Dtype of ``indices`` and ``indptr``; by default int32 while the sizes allow it.
    saturate : bool, default=False
        With ``law="bernoulli"``, clip ``p > 1`` to 1 (a fully dense layer) with a warning
        instead of raising.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law (0.05 for the original SET-RBM).

    Returns
    -------
    scipy.sparse.csr_array of shape (n_in, n_out)
        Canonical CSR (sorted, unique column indices per row).

    Raises
    ------
    ValueError
        If a size or parameter is out of range, not exactly one of ``epsilon``, ``density``,
        ``nnz`` is given, ``law="draws"`` is combined with ``density`` or ``nnz``, or
        ``epsilon`` gives ``p > 1`` under ``law="bernoulli"`` without ``saturate=True``.
    TypeError
        If ``rng`` has the wrong type or a parameter has the wrong type.

    Warns
    -----
    UserWarning
        When ``saturate=True`` clips ``p`` to 1, or when ``epsilon`` gives density >= 0.9
        (expected density under ``"bernoulli"``, drawn density under ``"draws"``).

    See Also
    --------
    init_values : The value laws.
    describe : Degree statistics of the result.

    Notes
    -----
    ``"bernoulli"`` lists the present slots directly in row-major order from geometric gaps
    between them (``1 + floor(E / -log1p(-p))``, E standard exponential; for ``p > 0.5`` the
    absent slots, complemented), so the count is ``Binomial(n_in * n_out, p)`` and nothing is
    sorted; then the values, in row-major order. O(nnz) time and memory at any density: no
    ``n_in x n_out`` array is built (the originals used a dense ``rand(n, m)``). ``nnz=``
    takes a uniform subset of exactly that size (:func:`_sample_distinct`).
    ``"draws"`` with a Generator draws the ``T`` linear positions first (``integers(0,
    n_in * n_out)``), then one value per occupied slot in row-major order: the law of the
    original (a slot's value is its last draw's, and values are i.i.d.), not its numbers;
    with a RandomState it calls, per draw, ``v = randn() / 10`` (the law's scalar draw),
    ``i = randint(0, n_in)``, ``j = randint(0, n_out)`` exactly as the original, which is
    O(T) Python calls (~1 us each).
    Memory: O(T) for ``T = round(epsilon * (n_in + n_out))`` draws. Temporaries (measured,
    float32/int32): Law B about 8 bytes per connection (the int64 positions) plus O(2**18)
    chunk buffers; values are drawn in float64 chunks. Bytes per connection of the result: value
    + column index (8 B in float32/int32) plus ``indptr``.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).

    Examples
    --------
    >>> import numpy as np
    >>> W = erdos_renyi(100, 50, epsilon=5, rng=np.random.default_rng(0))
    >>> W.shape
    (100, 50)
    """
    owner = "erdos_renyi"
    n_in = check_param("n_in", n_in, "int", low=1, owner=owner)
    n_out = check_param("n_out", n_out, "int", low=1, owner=owner)
    law = check_param("law", law, "str", options=ER_LAWS, owner=owner)
    init = check_param("init", init, "str", options=INIT_LAWS, owner=owner)
    saturate = check_param("saturate", saturate, "bool", owner=owner)
    normal_std = check_param("normal_std", normal_std, "float", low=0, low_open=True,
                             owner=owner)
    legacy = _check_rng(rng, owner)
    dtype = _check_float_dtype(dtype, owner)
    given = [name for name, v in (("epsilon", epsilon), ("density", density), ("nnz", nnz))
             if v is not None]
    if len(given) != 1:
        raise ValueError(
            f"erdos_renyi needs exactly one of 'epsilon', 'density' or 'nnz'. Got "
            f"{', '.join(given) if given else 'none'}. Pass e.g. epsilon=20 (SET's default)."
        )
    slots = n_in * n_out
    if slots >= 2**62:
        raise ValueError(f"The {_shape_str(n_in, n_out)} layer has too many slots for int64 "
                         "linear indices. Use smaller layers.")
    shape = _shape_str(n_in, n_out)
    if law == "draws" and epsilon is None:
        raise ValueError(
            f"law='draws' counts draws from 'epsilon'; it cannot be combined with "
            f"{given[0]!r}. Pass epsilon=..., or use the default law='bernoulli'."
        )

    if epsilon is not None:
        epsilon = check_param("epsilon", epsilon, "float", low=0, low_open=True, owner=owner)
        if law == "bernoulli":
            p = epsilon * (n_in + n_out) / slots
            if p > 1.0:
                if not saturate:
                    emax = math.floor(slots / (n_in + n_out) * 1000) / 1000
                    raise ValueError(
                        f"epsilon={epsilon:g} gives density {p:.2g} for the {shape} layer "
                        f"(law='bernoulli' needs at most 1). Lower epsilon to at most "
                        f"{emax:g}, pass density=1.0, or law='draws' (draws with "
                        "replacement, the original SET law); saturate=True clips to fully "
                        "dense."
                    )
                warnings.warn(
                    f"epsilon={epsilon:g} gives density {p:.2g} for the {shape} layer; it is "
                    "fully dense",
                    UserWarning,
                    stacklevel=2,
                )
                p = 1.0
            elif p >= _DENSE_WARN:
                warnings.warn(
                    f"epsilon={epsilon:g} gives density {p:.2g} for the {shape} layer; it is "
                    "effectively dense. Lower epsilon, or accept a dense layer.",
                    UserWarning,
                    stacklevel=2,
                )
            return _bernoulli(n_in, n_out, p, init, rng, dtype, index_dtype, normal_std)
        n_draws = int(round(epsilon * (n_in + n_out)))
        if legacy:
            keys, vals = _draws_legacy(n_in, n_out, n_draws, init, rng, normal_std)
        else:
            keys, vals = _draws_vector(n_in, n_out, n_draws, init, rng, normal_std, dtype)
        dens = keys.size / slots
        if dens >= _DENSE_WARN:
            warnings.warn(
                f"epsilon={epsilon:g} gives density {dens:.2g} for the {shape} layer; it is "
                "effectively dense. Lower epsilon, or accept a dense layer.",
                UserWarning,
                stacklevel=2,
            )
        idt = _index_dtype(index_dtype, n_in, n_out, keys.size, owner)
        return _csr_from_keys(keys, vals.astype(dtype, copy=False), n_in, n_out, idt)

    if density is not None:
        p = check_param("density", density, "float", low=0, high=1, owner=owner)
        return _bernoulli(n_in, n_out, p, init, rng, dtype, index_dtype, normal_std)

    k = check_param("nnz", nnz, "int", low=0, high=slots, owner=owner)
    keys = _sample_distinct(slots, k, rng)
    vals = init_values(init, n_in, n_out, k, rng, dtype, normal_std=normal_std)
    idt = _index_dtype(index_dtype, n_in, n_out, k, owner)
    return _csr_from_keys(keys, vals, n_in, n_out, idt)


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


def _bernoulli(n_in, n_out, p, init, rng, dtype, index_dtype, normal_std):
    """Law B in O(nnz): Bernoulli(p) slots by geometric gaps, then the values, row-major."""
    slots = n_in * n_out
    if slots <= _GAPS_MAX_POPULATION:
        keys = _bernoulli_positions(slots, p, rng)
    else:
        count = int(rng.binomial(slots, p)) if 0.0 < p < 1.0 else (slots if p >= 1.0 else 0)
        keys = _sample_distinct(slots, count, rng)
    count = keys.shape[0]
    vals = init_values(init, n_in, n_out, count, rng, dtype, normal_std=normal_std)
    idt = _index_dtype(index_dtype, n_in, n_out, count, "erdos_renyi")
    return _csr_from_keys(keys, vals, n_in, n_out, idt)


def _draws_vector(n_in, n_out, n_draws, init, rng, normal_std, dtype):
    """Law A with a Generator: positions of the draws, then one value per occupied slot.

    The stored value of a slot is its last draw's value; values are i.i.d. and independent
    of the positions, so drawing ``n_draws`` linear positions first and then one value per
    occupied slot (row-major) has the same law at a quarter of the random numbers on a
    98 %-dense layer (4 draws per slot there). Positions are drawn in chunks of _CHUNK.
    """
    slots = n_in * n_out
    if slots <= 2 * n_draws:
        occupied = np.zeros(slots, dtype=bool)  # dense regime: O(slots) <= O(2 n_draws)
        for a in range(0, n_draws, _CHUNK):
            occupied[rng.integers(0, slots, size=min(_CHUNK, n_draws - a), dtype=np.int64)] = True
        keys = np.flatnonzero(occupied).astype(np.int64, copy=False)
    else:
        keys = _sorted_unique(rng.integers(0, slots, size=n_draws, dtype=np.int64))
    vals = init_values(init, n_in, n_out, keys.shape[0], rng, dtype, normal_std=normal_std)
    return keys, vals


def _draws_legacy(n_in, n_out, n_draws, init, rng, normal_std):
    """Law A with a RandomState, the original order: value, row, column per draw."""
    value = _scalar_value_fn(init, n_in, n_out, rng, normal_std)
    randint = rng.randint
    cells = {}
    for _ in range(n_draws):
        v = value()
        i = randint(0, n_in)
        j = randint(0, n_out)
        cells[i * n_out + j] = v
    keys = np.fromiter(cells.keys(), dtype=np.int64, count=len(cells))
    vals = np.fromiter(cells.values(), dtype=np.float64, count=len(cells))
    order = np.argsort(keys)
    return keys[order], vals[order]


def describe(W):
    """Size, density, degree statistics and storage cost of a CSR weight matrix.

    Parameters
    ----------
    W : scipy.sparse.csr_array of shape (n_in, n_out)
        Weights; rows are inputs, columns outputs.

    Returns
    -------
    dict
        ``n_in``, ``n_out``, ``nnz``, ``density``; ``in_degree`` (connections into each
        output neuron, i.e. per column) and ``out_degree`` (out of each input neuron, per row),
        each a dict with ``min``, ``mean``, ``max`` and ``n_zero`` (neurons without any
        connection); ``bytes_per_connection`` of ``data + indices + indptr``; ``dtype`` and
        ``index_dtype`` as strings. Plain Python types, JSON-serialisable.

    Notes
    -----
    O(nnz + n_in + n_out) time, O(n_in + n_out) extra memory.
    """
    n_in, n_out = W.shape
    nnz = int(W.indptr[-1])
    out_deg = np.diff(W.indptr)
    in_deg = np.bincount(W.indices[:nnz], minlength=n_out)

    def stats(d):
        if d.size == 0:
            return {"min": 0, "mean": 0.0, "max": 0, "n_zero": 0}
        return {"min": int(d.min()), "mean": float(d.mean()), "max": int(d.max()),
                "n_zero": int(np.count_nonzero(d == 0))}

    nbytes = W.data.nbytes + W.indices.nbytes + W.indptr.nbytes
    return {
        "n_in": int(n_in),
        "n_out": int(n_out),
        "nnz": nnz,
        "density": nnz / (n_in * n_out) if n_in * n_out else 0.0,
        "in_degree": stats(in_deg),
        "out_degree": stats(out_deg),
        "bytes_per_connection": nbytes / nnz if nnz else float("nan"),
        "dtype": str(W.data.dtype),
        "index_dtype": str(W.indices.dtype),
    }
