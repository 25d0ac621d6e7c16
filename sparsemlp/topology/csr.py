"""Shared helpers of canonical CSR patterns: index dtypes, sorted linear keys, membership, values."""

import math

import numpy as np
import scipy.sparse as sp

from .. import _kernels

__all__ = [
    "CHUNK",
    "choose_index_dtype",
    "check_float_dtype",
    "canonical_csr",
    "sorted_unique",
    "isin_sorted",
    "linear_keys",
    "keys_to_csr",
    "csr_from_keys",
    "in_pattern",
    "fill_values",
    "scalar_value_fn",
]

#: Chunk length of the loops over connections (values, keys, masks): bounds their float64 /
#: int64 temporaries to a few MiB at any layer size. Results never depend on it.
CHUNK = 1 << 18

# Row pointers come from one binary search per row while rows are fewer than nnz / this
# (O(n_in log nnz), no per-entry temporary), else from counting (O(nnz + n_in)).
_SEARCH_RATIO = 16


def _shape_str(n_in, n_out):
    return f"{n_in}x{n_out}"


def choose_index_dtype(index_dtype, n_in, n_out, nnz, owner="choose_index_dtype"):
    """The index dtype of an ``n_in x n_out`` CSR array with ``nnz`` entries.

    Parameters
    ----------
    index_dtype : {numpy.int32, numpy.int64} or None
        Requested dtype; None picks the smallest that represents every size.
    n_in, n_out : int
        Shape of the array.
    nnz : int
        Number of stored entries.
    owner : str, default="choose_index_dtype"
        Function named in error messages.

    Returns
    -------
    numpy.dtype
        ``int32`` while every size is below ``2**31 - 1``, else ``int64`` (never ``intp``).

    Raises
    ------
    ValueError
        If ``index_dtype`` is neither int32 nor int64, or is int32 and too small.
    """
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


def check_float_dtype(dtype, owner):
    """A value dtype of the kernels: float32 or float64.

    Parameters
    ----------
    dtype : dtype-like
        Requested dtype.
    owner : str
        Function named in error messages.

    Returns
    -------
    numpy.dtype
        The dtype.

    Raises
    ------
    ValueError
        If it is another dtype.
    """
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(
            f"The 'dtype' parameter of {owner} must be float32 or float64. Got {dt} instead."
        )
    return dt


def canonical_csr(indptr, indices, values, n_in, n_out, index_dtype):
    """A ``csr_array`` over arrays already in canonical order, with the given index dtype.

    Parameters
    ----------
    indptr : ndarray of int, shape (n_in + 1,)
        Row pointer.
    indices : ndarray of int, shape (nnz,)
        Column indices, sorted and distinct within each row.
    values : ndarray of shape (nnz,)
        Values (not copied).
    n_in, n_out : int
        Shape.
    index_dtype : numpy.dtype
        Dtype of ``indices`` and ``indptr`` in the result (SciPy may pick another on its
        own; this one is kept).

    Returns
    -------
    scipy.sparse.csr_array of shape (n_in, n_out)
        Marked canonical (sorted, unique indices), sharing the given arrays where their dtype
        already fits.
    """
    indptr = indptr.astype(index_dtype, copy=False)
    indices = indices.astype(index_dtype, copy=False)
    W = sp.csr_array((values, indices, indptr), shape=(n_in, n_out), copy=False)
    if W.indices.dtype != index_dtype:
        W.indices, W.indptr = indices, indptr
    W.has_sorted_indices = True
    W.has_canonical_format = True
    return W


def sorted_unique(a, *, inplace=False):
    """Sorted distinct values of an integer array.

    Parameters
    ----------
    a : ndarray of int, shape (n,)
        Values (any order, repeats allowed).
    inplace : bool, default=False
        Sort ``a`` itself and return a compacted view of its buffer (no second array of its
        size is kept); otherwise ``a`` is left unchanged.

    Returns
    -------
    ndarray
        The distinct values, ascending.

    Notes
    -----
    ``np.sort`` plus a neighbour comparison: with NumPy 2.4 this is about 10 times faster
    than ``np.unique``, which hashes large integer arrays before sorting.
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


def isin_sorted(a, b):
    """``np.isin(a, b)`` for sorted distinct ``b``, by binary search.

    Parameters
    ----------
    a : ndarray of int64
        Queries (sorted queries walk ``b`` in order, which is faster).
    b : ndarray of int64
        Sorted distinct values.

    Returns
    -------
    ndarray of bool, shape a.shape
        Whether each query is in ``b``. O(len(a) log len(b)).
    """
    if b.size == 0:
        return np.zeros(a.shape[0], dtype=bool)
    pos = np.searchsorted(b, a)
    np.minimum(pos, b.size - 1, out=pos)
    return b[pos] == a


def linear_keys(indptr, indices, n_out):
    """Linear keys ``row * n_out + col`` of a CSR pattern, in CSR order.

    Parameters
    ----------
    indptr : ndarray of int, shape (n_in + 1,)
        Row pointer.
    indices : ndarray of int, shape (nnz,)
        Column indices.
    n_out : int
        Number of columns.

    Returns
    -------
    ndarray of int64, shape (nnz,)
        The keys; sorted and distinct when the pattern is canonical.
    """
    n_rows = indptr.shape[0] - 1
    keys = np.repeat(np.arange(n_rows, dtype=np.int64) * n_out, np.diff(indptr))
    keys += indices
    return keys


def keys_to_csr(keys, n_in, n_out, index_dtype):
    """Row pointer and column indices of sorted distinct linear keys.

    Parameters
    ----------
    keys : ndarray of int64, shape (nnz,)
        Sorted distinct keys ``row * n_out + col``.
    n_in, n_out : int
        Shape.
    index_dtype : numpy.dtype
        Dtype of both results.

    Returns
    -------
    indptr : ndarray of shape (n_in + 1,)
        Row pointer.
    indices : ndarray of shape (nnz,)
        Column indices.

    Notes
    -----
    The row pointer comes from one binary search per row boundary (O(n_in log nnz)), or
    from counting on layers with about as many rows as entries; the columns from chunked
    ``key - (key // n_out) * n_out``: no int64 temporary of size nnz.
    """
    idt = index_dtype
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
    for a in range(0, nnz, CHUNK):
        k = keys[a:a + CHUNK]
        r = k // n_out
        if counting:
            indptr[1:] += np.bincount(r, minlength=n_in).astype(idt, copy=False)
        r *= n_out
        np.subtract(k, r, out=r)
        cols[a:a + CHUNK] = r
    if counting:
        np.cumsum(indptr, out=indptr)
    return indptr, cols


def csr_from_keys(keys, values, n_in, n_out, index_dtype):
    """Canonical ``csr_array`` from sorted distinct linear keys and their values.

    Parameters
    ----------
    keys : ndarray of int64, shape (nnz,)
        Sorted distinct keys ``row * n_out + col``.
    values : ndarray of shape (nnz,)
        The value of each key (not copied).
    n_in, n_out : int
        Shape.
    index_dtype : numpy.dtype
        Dtype of ``indices`` and ``indptr``.

    Returns
    -------
    scipy.sparse.csr_array of shape (n_in, n_out)
        Canonical CSR.
    """
    indptr, cols = keys_to_csr(keys, n_in, n_out, index_dtype)
    return canonical_csr(indptr, cols, values, n_in, n_out, index_dtype)


def in_pattern(keys, indptr, indices, n_out):
    """Which sorted linear keys are connections of a canonical CSR pattern.

    Parameters
    ----------
    keys : ndarray of int64
        Sorted keys ``row * n_out + col`` (at least one).
    indptr, indices : ndarray of int
        The pattern.
    n_out : int
        Number of columns.

    Returns
    -------
    ndarray of bool, shape keys.shape
        ``np.isin(keys, linear_keys(indptr, indices, n_out))``.

    Notes
    -----
    Chunk by chunk of keys, the pattern's keys are built only for the rows the chunk spans:
    O(len(keys) + nnz) time and O(CHUNK + entries of those rows) memory; the pattern is never
    expanded to int64 keys as a whole.
    """
    out = np.empty(keys.shape[0], dtype=bool)
    step = CHUNK // 4
    for a in range(0, keys.shape[0], step):
        c = keys[a:a + step]
        lo, hi = int(c[0] // n_out), int(c[-1] // n_out)
        t0, t1 = int(indptr[lo]), int(indptr[hi + 1])
        row_keys = np.repeat(np.arange(lo, hi + 1, dtype=np.int64) * n_out,
                             np.diff(indptr[lo:hi + 2]))
        row_keys += indices[t0:t1]
        out[a:a + c.shape[0]] = isin_sorted(c, row_keys)
    return out


def _law_scale(init, n_in, n_out, normal_std):
    """``1 / normal_std`` of the normal law, or the bound ``lim`` of a uniform law."""
    if init == "normal":
        return 1.0 / normal_std
    fan = n_in if init == "he_uniform" else n_in + n_out
    return math.sqrt(6.0 / fan)


def fill_values(out, init, n_in, n_out, rng, normal_std, legacy=None):
    """Write ``out.size`` values of an initialisation law into ``out``, in draw order.

    Parameters
    ----------
    out : ndarray of float, shape (size,)
        Destination (any float dtype; values are drawn in float64 and cast).
    init : {"normal", "he_uniform", "xavier_uniform"}
        The law (:func:`sparsemlp.topology.init_values` documents them).
    n_in, n_out : int
        Fans of the layer (for the uniform laws).
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness: ``standard_normal`` / ``uniform`` of a Generator, ``randn`` / ``uniform``
        of a RandomState.
    normal_std : float
        Standard deviation of the ``"normal"`` law (``z / (1 / normal_std)``).
    legacy : bool, optional
        Whether ``rng`` is a RandomState (default: tested here).

    Notes
    -----
    Every law draws value by value from the stream (Generator ziggurat, legacy Box-Muller
    with its cached second value, ``lo + (hi - lo) * U``), so chunked draws equal one vector
    draw bit for bit; the float64 temporary is O(CHUNK), not O(size). Arguments are not
    validated (:func:`~sparsemlp.topology.init_values` is the checked entry point).
    """
    if legacy is None:
        legacy = isinstance(rng, np.random.RandomState)
    size = out.shape[0]
    scale = _law_scale(init, n_in, n_out, normal_std)
    draw = (rng.randn if legacy else rng.standard_normal) if init == "normal" else None
    for a in range(0, size, CHUNK):
        b = min(size, a + CHUNK)
        if draw is not None:
            v = draw(b - a)
            v /= scale
        else:
            v = rng.uniform(-scale, scale, b - a)
        out[a:b] = v


def scalar_value_fn(init, n_in, n_out, rng, normal_std):
    """A function drawing one value of an initialisation law per call, by scalar draws.

    Parameters
    ----------
    init : {"normal", "he_uniform", "xavier_uniform"}
        The law.
    n_in, n_out : int
        Fans of the layer.
    rng : numpy.random.Generator or numpy.random.RandomState
        Randomness.
    normal_std : float
        Standard deviation of the ``"normal"`` law.

    Returns
    -------
    callable
        ``f() -> float``: ``randn() / (1 / normal_std)`` (``standard_normal()`` for a
        Generator) or ``uniform(-lim, lim)``, the scalar calls of the original SET code.
    """
    scale = _law_scale(init, n_in, n_out, normal_std)
    if init == "normal":
        draw = rng.randn if isinstance(rng, np.random.RandomState) else rng.standard_normal
        return lambda: draw() / scale
    uniform = rng.uniform
    return lambda: uniform(-scale, scale)
