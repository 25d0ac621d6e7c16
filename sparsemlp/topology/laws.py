"""Erdős–Rényi sparse topologies and weight-initialisation laws, in O(nnz) time and memory."""

import array
import math
import warnings

import numpy as np

from .._validation import check_param
from . import csr
from .csr import (
    _shape_str,
    check_float_dtype,
    choose_index_dtype,
    csr_from_keys,
    fill_values,
    scalar_value_fn,
    sorted_unique,
)
from .sampling import _GAPS_MAX_POPULATION, bernoulli_positions, check_rng, sample_distinct

__all__ = ["INIT_LAWS", "ER_LAWS", "init_values", "erdos_renyi", "describe"]

INIT_LAWS = ("normal", "he_uniform", "xavier_uniform")
ER_LAWS = ("bernoulli", "draws")

# Law A warns when the drawn layer is at least this dense.
_DENSE_WARN = 0.9


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
    legacy = check_rng(rng, "init_values")
    dtype = check_float_dtype(dtype, "init_values")
    out = np.empty(size, dtype=dtype)
    fill_values(out, init, n_in, n_out, rng, normal_std, legacy)
    return out


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
        How ``epsilon`` is turned into a topology. ``"bernoulli"`` (the SET paper's Erdős–Rényi law): every
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
    takes a uniform subset of exactly that size
    (:func:`sparsemlp.topology.sampling.sample_distinct`).
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
    legacy = check_rng(rng, owner)
    dtype = check_float_dtype(dtype, owner)
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
        idt = choose_index_dtype(index_dtype, n_in, n_out, keys.size, owner)
        return csr_from_keys(keys, vals.astype(dtype, copy=False), n_in, n_out, idt)

    if density is not None:
        p = check_param("density", density, "float", low=0, high=1, owner=owner)
        return _bernoulli(n_in, n_out, p, init, rng, dtype, index_dtype, normal_std)

    k = check_param("nnz", nnz, "int", low=0, high=slots, owner=owner)
    keys = sample_distinct(slots, k, rng)
    vals = init_values(init, n_in, n_out, k, rng, dtype, normal_std=normal_std)
    idt = choose_index_dtype(index_dtype, n_in, n_out, k, owner)
    return csr_from_keys(keys, vals, n_in, n_out, idt)


def _bernoulli(n_in, n_out, p, init, rng, dtype, index_dtype, normal_std):
    """Law B in O(nnz): Bernoulli(p) slots by geometric gaps, then the values, row-major."""
    slots = n_in * n_out
    if slots <= _GAPS_MAX_POPULATION:
        keys = bernoulli_positions(slots, p, rng)
    else:
        count = int(rng.binomial(slots, p)) if 0.0 < p < 1.0 else (slots if p >= 1.0 else 0)
        keys = sample_distinct(slots, count, rng)
    count = keys.shape[0]
    vals = init_values(init, n_in, n_out, count, rng, dtype, normal_std=normal_std)
    idt = choose_index_dtype(index_dtype, n_in, n_out, count, "erdos_renyi")
    return csr_from_keys(keys, vals, n_in, n_out, idt)


def _draws_vector(n_in, n_out, n_draws, init, rng, normal_std, dtype):
    """Law A with a Generator: positions of the draws, then one value per occupied slot.

    The stored value of a slot is its last draw's value; values are i.i.d. and independent
    of the positions, so drawing ``n_draws`` linear positions first and then one value per
    occupied slot (row-major) has the same law at a quarter of the random numbers on a
    98 %-dense layer (4 draws per slot there). Positions are drawn in chunks of csr.CHUNK.
    """
    slots = n_in * n_out
    if slots <= 2 * n_draws:
        occupied = np.zeros(slots, dtype=bool)  # dense regime: O(slots) <= O(2 n_draws)
        for a in range(0, n_draws, csr.CHUNK):
            occupied[rng.integers(0, slots, size=min(csr.CHUNK, n_draws - a), dtype=np.int64)] = True
        keys = np.flatnonzero(occupied).astype(np.int64, copy=False)
    else:
        keys = sorted_unique(rng.integers(0, slots, size=n_draws, dtype=np.int64))
    vals = init_values(init, n_in, n_out, keys.shape[0], rng, dtype, normal_std=normal_std)
    return keys, vals


def _draws_legacy(n_in, n_out, n_draws, init, rng, normal_std):
    """Law A with a RandomState, the original order: value, row, column per draw.

    The draws go into preallocated int64/float64 buffers (16 B per draw; a dict of the cells
    cost ~100 B per draw and made this the peak of a reference-mode run); a stable sort by
    slot then keeps each slot's last draw (last write wins).
    """
    value = scalar_value_fn(init, n_in, n_out, rng, normal_std)
    randint = rng.randint
    keys = array.array("q", bytes(8 * n_draws))
    vals = array.array("d", bytes(8 * n_draws))
    for t in range(n_draws):
        vals[t] = value()
        i = randint(0, n_in)
        keys[t] = i * n_out + randint(0, n_out)
    k = np.frombuffer(keys, dtype=np.int64)
    order = np.argsort(k, kind="stable")
    del keys
    k = k[order]
    last = np.empty(k.shape[0], dtype=bool)
    np.not_equal(k[1:], k[:-1], out=last[:-1])
    last[-1:] = True
    order = order[last]
    return k[last], np.frombuffer(vals, dtype=np.float64)[order]


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
