"""SET's removal rule: the thresholds of a layer's weights, exact order statistics, the keep set."""

import numpy as np

from .._validation import check_param
from ..topology import csr

__all__ = ["check_zeta", "set_thresholds", "removal_mask", "kept_positions"]

# Below this many values the order statistics come from np.partition of a copy; above it
# from a bracket found on a strided sample (then only the values inside the bracket are
# partitioned): about 3 passes of comparisons instead of a partition of the whole array.
_SELECT_MIN = 1 << 13


def check_zeta(zeta, owner):
    """Validate SET's rewiring fraction.

    Parameters
    ----------
    zeta : float
        Fraction of each sign's weights removed, in [0, 1).
    owner : str
        Function named in the error message.

    Returns
    -------
    float
        ``zeta``.

    Raises
    ------
    ValueError
        If ``zeta`` is outside [0, 1).
    TypeError
        If it is not a number.
    """
    return check_param("zeta", zeta, "float", low=0, high=1, high_open=True, owner=owner)


def set_thresholds(values, zeta):
    """The SET removal thresholds ``(t_neg, t_pos)`` of a layer's weight values.

    Parameters
    ----------
    values : ndarray of shape (N,)
        The stored weights ``W.data`` (any order), N >= 1, no NaN.
    zeta : float
        Fraction in [0, 1) removed per sign.

    Returns
    -------
    t_neg : scalar of values.dtype
        ``v[int((1.0 - zeta) * p)]`` in the sorted values ``v`` ("largestNegative").
    t_pos : scalar of values.dtype
        ``v[int(min(N - 1, q + zeta * (N - q)))]`` ("smallestPositive").

    Raises
    ------
    ValueError
        If ``values`` is empty or holds NaN, or ``zeta`` is outside [0, 1).

    See Also
    --------
    removal_mask : The keep mask ``(w < t_neg) | (w > t_pos)``.

    Notes
    -----
    The rule of the SET code published with Mocanu et al. (2018), on the sorted values
    ``v``: with ``p`` the first and ``q - 1`` the last index of ``min |v|``, the threshold
    of the negative weights is the value a fraction ``zeta`` of the way from the smallest
    magnitude down the negatives, that of the positives a fraction ``zeta`` of the way up.
    Without sorting: ``p = count(v < -a)`` and ``q = count(v <= a)`` for ``a = min |v|``
    (nothing lies strictly between ``-a`` and ``a``), and the two order statistics come from
    one ``np.partition``. Indices are computed in float64 exactly as written, ``int()``
    truncating. O(N) time, O(N) temporary memory (one copy of the values).

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).
    """
    zeta = check_zeta(zeta, "set_thresholds")
    v = np.asarray(values)
    if v.ndim != 1 or v.shape[0] == 0:
        raise ValueError(f"values must be a non-empty 1-D array. Got shape {v.shape}.")
    return _thresholds(v, zeta)


def _thresholds(v, zeta):
    """:func:`set_thresholds` of a non-empty 1-D array and a validated ``zeta``."""
    n = v.shape[0]
    a, p, q = _min_abs_counts(v)
    i_neg = int((1.0 - zeta) * p)
    i_pos = int(min(n - 1, q + zeta * (n - q)))
    return _order_statistics(v, i_neg, i_pos)


def _min_abs_counts(v):
    """``a = min |v|``, ``count(v < -a)``, ``count(v <= a)``, in chunks (no full-size temp)."""
    step = csr.CHUNK
    a = np.min(np.array([np.min(np.abs(v[lo:lo + step]))
                         for lo in range(0, v.shape[0], step)]))  # NaN propagates
    if np.isnan(a):
        raise ValueError("values contain NaN; the SET thresholds are undefined. Stop training "
                         "on non-finite weights (lower the learning rate).")
    p = q = 0
    for lo in range(0, v.shape[0], step):
        c = v[lo:lo + step]
        p += int(np.count_nonzero(c < -a))
        q += int(np.count_nonzero(c <= a))
    return a, p, q


def _order_statistics(v, i, j):
    """The i-th and j-th smallest values of v (0-based, ``i <= j``), exactly."""
    n = v.shape[0]
    if n >= _SELECT_MIN:
        step = max(16, n // 16384)
        s = np.sort(v[::step])
        out = []
        for idx in (i, j):
            x = _select_in_bracket(v, s, idx)
            if x is None:  # the bracket missed (adversarial order): exact fallback
                x = np.partition(v, idx)[idx]
            out.append(x)
        return out[0], out[1]
    # i <= j: select i, then j among the elements above it only (cheaper than np.partition
    # with two kth values).
    w = np.partition(v, i)
    if j == i:
        return w[i], w[j]
    tail = w[i + 1:]
    k = j - i - 1
    tail.partition(k)
    return w[i], tail[k]


def _select_in_bracket(v, s, idx):
    """v's idx-th smallest value if it lies in a bracket of the sorted sample s, else None."""
    n, m = v.shape[0], s.shape[0]
    c = idx * m / n
    d = 4.0 * np.sqrt(m * (c / m) * (1.0 - c / m)) + 8.0
    lo_i, hi_i = int(np.floor(c - d)), int(np.ceil(c + d))
    lo = s[lo_i] if lo_i >= 0 else None
    hi = s[hi_i] if hi_i < m else None
    below = 0
    if lo is not None:
        mask = v >= lo
        below = n - int(np.count_nonzero(mask))
        if hi is not None:
            mask &= v <= hi
    else:
        mask = v <= hi if hi is not None else np.ones(n, bool)
    inside = np.compress(mask, v)
    if not below <= idx < below + inside.shape[0]:
        return None
    r = idx - below
    inside.partition(r)
    return inside[r]


def removal_mask(values, zeta):
    """Keep mask of the SET rule: True for the weights that survive.

    Parameters
    ----------
    values : ndarray of shape (N,)
        The stored weights ``W.data``.
    zeta : float
        Fraction in [0, 1) removed per sign.

    Returns
    -------
    ndarray of bool, shape (N,)
        ``(values < t_neg) | (values > t_pos)`` with the thresholds of :func:`set_thresholds`
        (strict on both sides: every weight equal to a threshold is removed).

    Raises
    ------
    ValueError
        As :func:`set_thresholds`.

    See Also
    --------
    kept_positions : The positions of the survivors, without a mask of N booleans.

    Notes
    -----
    A value rule, so every backend and rank removes the same set. O(N) time.
    """
    t_neg, t_pos = set_thresholds(values, zeta)
    return (values < t_neg) | (values > t_pos)


def kept_positions(values, zeta, *, owner="kept_positions"):
    """Ascending positions of the weights that SET's rule keeps, or None if it keeps all.

    Parameters
    ----------
    values : ndarray of shape (N,)
        The stored weights ``W.data[:nnz]``.
    zeta : float
        Fraction in [0, 1) removed per sign, validated here (the rules of this package
        validate it only through this call).
    owner : str, default="kept_positions"
        Function named in error messages.

    Returns
    -------
    ndarray of int64 or None
        The positions ``i`` with ``values[i] < t_neg`` or ``values[i] > t_pos``
        (:func:`set_thresholds`), ascending; None when nothing would be removed (``zeta``
        is 0, ``values`` is empty, or every weight survives), in which case nothing was drawn
        or allocated.

    Raises
    ------
    ValueError
        If ``zeta`` is outside [0, 1) or ``values`` holds NaN.

    Notes
    -----
    The keep rule is applied chunk by chunk, once to count and once to fill: O(N) time and
    no temporary of N booleans beyond one chunk.
    """
    zeta = check_zeta(zeta, owner)
    nnz = values.shape[0]
    if zeta == 0.0 or nnz == 0:
        return None
    t_neg, t_pos = _thresholds(values, zeta)
    step = csr.CHUNK
    n_keep = 0
    for a in range(0, nnz, step):
        c = values[a:a + step]
        m = c < t_neg
        m |= c > t_pos
        n_keep += int(np.count_nonzero(m))
    if n_keep == nnz:
        return None
    keep_index = np.empty(n_keep, dtype=np.int64)
    w = 0
    for a in range(0, nnz, step):
        c = values[a:a + step]
        m = c < t_neg
        m |= c > t_pos
        idx = np.flatnonzero(m)
        idx += a
        keep_index[w:w + idx.shape[0]] = idx
        w += idx.shape[0]
    return keep_index
