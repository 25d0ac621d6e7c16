"""Erdős–Rényi sparse topologies and weight-initialisation laws, in O(nnz) time and memory."""

import math
import warnings

import numpy as np
import scipy.sparse as sp

from . import _kernels
from ._validation import check_param

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
    While ``2k < population``: draw k values with replacement, ``np.unique`` them and redraw
    only the shortfall until k distinct values are held. Each round draws exactly the shortfall,
    so the result is the first k distinct values of one i.i.d. uniform stream, a uniform
    k-subset; the expected number of rounds is O(log k) and the shortfall shrinks by at least
    half per round. Otherwise the complement (``population - k <= k`` elements) is sampled the
    same way and removed from a boolean array of size ``population <= 2k``.
    O(k log k) time and O(k) memory in both cases; an array of size ``population`` is never
    built unless ``population <= 2k``.
    """
    population = int(population)
    k = int(k)
    if k < 0 or k > population:
        raise ValueError(f"cannot draw {k} distinct values from a population of {population}.")
    if k == 0:
        return np.empty(0, np.int64)
    if 2 * k < population:
        return _distinct_by_rejection(population, k, rng)
    m = population - k
    mask = np.ones(population, dtype=bool)
    if m:
        mask[_distinct_by_rejection(population, m, rng)] = False
    return np.flatnonzero(mask).astype(np.int64, copy=False)


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
    if init == "normal":
        z = rng.randn(size) if legacy else rng.standard_normal(size)
        v = z / (1.0 / normal_std)
    else:
        fan = n_in if init == "he_uniform" else n_in + n_out
        lim = math.sqrt(6.0 / fan)
        v = rng.uniform(-lim, lim, size)
    return np.asarray(v, dtype=np.float64).astype(dtype, copy=False)


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


def _csr_from_keys(keys, values, n_in, n_out, idt):
    """Canonical csr_array from sorted distinct linear keys ``i * n_out + j`` and their values."""
    rows = keys // n_out
    cols = (keys - rows * n_out).astype(idt)
    indptr = np.zeros(n_in + 1, dtype=idt)
    if keys.size:
        np.cumsum(np.bincount(rows, minlength=n_in), out=indptr[1:])
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
    ``"bernoulli"`` draws the count from ``Binomial(n_in * n_out, p)`` and then that many
    distinct uniform linear positions (:func:`_sample_distinct`); positions first, values next,
    in row-major order. O(nnz log nnz) time and O(nnz) memory at any density: no
    ``n_in x n_out`` array is built (the originals used a dense ``rand(n, m)``).
    ``"draws"`` with a Generator draws values, rows and columns as three vectors (same
    distribution as the original, not the same numbers); with a RandomState it calls, per
    draw, ``v = randn() / 10`` (the law's scalar draw), ``i = randint(0, n_in)``,
    ``j = randint(0, n_out)`` exactly as the original, which is O(T) Python calls (~1 us each).
    Memory: O(T) for ``T = round(epsilon * (n_in + n_out))`` draws; Law B peaks at about 36
    bytes per connection of temporaries (measured). Bytes per connection of the result: value
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
            keys, vals = _draws_vector(n_in, n_out, n_draws, init, rng, normal_std)
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
    """Law B in O(nnz): count ~ Binomial(n_in*n_out, p), then distinct uniform positions."""
    slots = n_in * n_out
    count = int(rng.binomial(slots, p)) if 0.0 < p < 1.0 else (slots if p >= 1.0 else 0)
    keys = _sample_distinct(slots, count, rng)
    vals = init_values(init, n_in, n_out, count, rng, dtype, normal_std=normal_std)
    idt = _index_dtype(index_dtype, n_in, n_out, count, "erdos_renyi")
    return _csr_from_keys(keys, vals, n_in, n_out, idt)


def _draws_vector(n_in, n_out, n_draws, init, rng, normal_std):
    """Law A with a Generator: vectors of values, rows, columns; last write wins."""
    vals = init_values(init, n_in, n_out, n_draws, rng, np.float64, normal_std=normal_std)
    rows = rng.integers(0, n_in, size=n_draws, dtype=np.int64)
    cols = rng.integers(0, n_out, size=n_draws, dtype=np.int64)
    keys = rows * n_out + cols
    slots = n_in * n_out
    if slots <= 2 * n_draws:
        # dense regime: index of the last draw per slot in an O(n_draws) array (10x faster
        # than sorting; ufunc.at applies every draw, so the maximum is the last write)
        last_draw = np.full(slots, -1, dtype=np.int64)
        np.maximum.at(last_draw, keys, np.arange(n_draws, dtype=np.int64))
        keys_u = np.flatnonzero(last_draw >= 0)
        return keys_u, vals[last_draw[keys_u]]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    last = np.empty(keys.size, dtype=bool)  # last of each run of equal keys = the last write
    if keys.size:
        last[-1] = True
        np.not_equal(keys[1:], keys[:-1], out=last[:-1])
    return keys[last], vals[order[last]]


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
