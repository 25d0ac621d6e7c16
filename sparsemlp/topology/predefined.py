"""Pre-defined sparse patterns of Dey et al.: uniform random and regular (fixed fan-in/fan-out)."""

import math

import numpy as np

from .._validation import check_param
from .csr import _shape_str, canonical_csr, check_float_dtype, choose_index_dtype, csr_from_keys
from .laws import INIT_LAWS, init_values
from .sampling import check_rng, sample_distinct

__all__ = ["random", "regular"]

_REF = "Dey et al., IEEE JETCAS 9(2):332-345 (2019)"


def _divisors(n):
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _near(values, target, k=6):
    """Up to k values closest to target, ascending (for messages)."""
    return sorted(sorted(values, key=lambda v: (abs(v - target), v))[:k])


def _check_common(owner, n_in, n_out, init, rng, dtype, normal_std):
    n_in = check_param("n_in", n_in, "int", low=1, owner=owner)
    n_out = check_param("n_out", n_out, "int", low=1, owner=owner)
    init = check_param("init", init, "str", options=INIT_LAWS, owner=owner)
    normal_std = check_param("normal_std", normal_std, "float", low=0, low_open=True, owner=owner)
    check_rng(rng, owner)
    dtype = check_float_dtype(dtype, owner)
    return n_in, n_out, init, dtype, normal_std


def _check_fan_out(owner, n_in, n_out, fan_out):
    """fan_out in [1, n_out] with an integer fan_in = n_in * fan_out / n_out; returns both."""
    fan_out = check_param("fan_out", fan_out, "int", low=1, high=n_out, owner=owner)
    if (n_in * fan_out) % n_out:
        step = n_out // math.gcd(n_in, n_out)
        ok = [f for f in range(step, n_out + 1, step)]
        raise ValueError(
            f"The 'fan_out' parameter of {owner} must make fan_in = n_in * fan_out / n_out an "
            f"integer (every output gets exactly fan_in connections). Got fan_out={fan_out} for "
            f"the {_shape_str(n_in, n_out)} layer (fan_in {n_in * fan_out / n_out:g}). Use a "
            f"multiple of {step} (e.g. {', '.join(map(str, _near(ok, fan_out)))}), or change "
            "the layer sizes (TrainConfig.pad_inputs pads the first layer's inputs).")
    return fan_out, n_in * fan_out // n_out


def random(n_in, n_out, *, nnz=None, density=None, fan_out=None, init="normal", rng,
           dtype=np.float32, index_dtype=None, normal_std=0.1):
    """Uniformly random sparse layer with an exact number of connections (Dey et al.'s "random").

    Parameters
    ----------
    n_in : int
        Number of inputs (rows of W).
    n_out : int
        Number of outputs (columns of W).
    nnz : int, optional
        Number of connections.
    density : float, optional
        Fraction in [0, 1]: ``ceil(density * n_in * n_out)`` connections (the original rounds up).
    fan_out : int, optional
        Mean out-degree: ``fan_out * n_in`` connections (the original's ``density >= 1``),
        the same count as :func:`regular`, but the degrees are not fixed.
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the values (:func:`sparsemlp.topology.init_values`).
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness (keyword-only, required).
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Dtype of the values.
    index_dtype : {numpy.int32, numpy.int64}, optional
        Dtype of the indices; by default int32 while the sizes allow it.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.

    Returns
    -------
    scipy.sparse.csr_array of shape (n_in, n_out)
        Canonical CSR with exactly the requested number of connections, placed uniformly
        without replacement.

    Raises
    ------
    ValueError
        If not exactly one of ``nnz``, ``density``, ``fan_out`` is given or it is out of range.
    TypeError
        If ``rng`` or a parameter has the wrong type.

    See Also
    --------
    regular : The same count with every degree fixed.
    erdos_renyi : Independent (Bernoulli) entries.

    Notes
    -----
    A uniform subset of the ``n_in * n_out`` slots (``adjmat_random`` of the original):
    O(nnz) time and memory, no ``n_in x n_out`` array.

    References
    ----------
    Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware
    Acceleration", IEEE JETCAS 9(2):332-345 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> W = random(800, 100, fan_out=50, rng=np.random.default_rng(0))
    >>> W.nnz
    40000
    """
    owner = "random"
    n_in, n_out, init, dtype, normal_std = _check_common(owner, n_in, n_out, init, rng, dtype,
                                                        normal_std)
    given = [k for k, v in (("nnz", nnz), ("density", density), ("fan_out", fan_out))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"random needs exactly one of 'nnz', 'density' or 'fan_out'. Got "
                         f"{', '.join(given) if given else 'none'}. Pass e.g. fan_out=50.")
    slots = n_in * n_out
    if nnz is not None:
        k = check_param("nnz", nnz, "int", low=0, high=slots, owner=owner)
    elif density is not None:
        d = check_param("density", density, "float", low=0, high=1, owner=owner)
        k = min(slots, math.ceil(d * slots))
    else:
        k = check_param("fan_out", fan_out, "int", low=0, high=n_out, owner=owner) * n_in
    keys = sample_distinct(slots, k, rng)
    vals = init_values(init, n_in, n_out, k, rng, dtype, normal_std=normal_std)
    return csr_from_keys(keys, vals, n_in, n_out, choose_index_dtype(index_dtype, n_in, n_out, k, owner))


def regular(n_in, n_out, fan_out, *, init="normal", rng, dtype=np.float32, index_dtype=None,
            normal_std=0.1):
    """Sparse layer where every input has exactly ``fan_out`` and every output ``fan_in`` links.

    Parameters
    ----------
    n_in : int
        Number of inputs (rows of W).
    n_out : int
        Number of outputs (columns of W).
    fan_out : int
        Out-degree of every input, in [1, n_out]. ``fan_in = n_in * fan_out / n_out`` must be
        an integer (the original silently floored it).
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the values (:func:`sparsemlp.topology.init_values`).
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness (keyword-only, required).
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Dtype of the values.
    index_dtype : {numpy.int32, numpy.int64}, optional
        Dtype of the indices; by default int32 while the sizes allow it.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.

    Returns
    -------
    scipy.sparse.csr_array of shape (n_in, n_out)
        Canonical CSR with ``n_in * fan_out`` connections: every row holds ``fan_out``
        entries, every column ``fan_in``.

    Raises
    ------
    ValueError
        If ``fan_out`` is out of range or ``fan_in`` is not an integer (the message lists
        valid fan-outs).
    TypeError
        If ``rng`` or a parameter has the wrong type.

    See Also
    --------
    clash_free : Regular patterns that a z-bank memory reads without clashes.
    random : The same count, degrees not fixed.

    Notes
    -----
    The law of ``adjmat_basic`` in Dey et al.'s (2019) code: outputs are filled in
    order; output r takes ``fan_in`` distinct inputs uniformly among those with fewer than
    ``fan_out`` connections, except that in the last ``fan_out`` outputs every input that
    would otherwise end short is taken first. This always completes (every input ends with
    exactly ``fan_out``), so nothing is redrawn. The available inputs are kept in a pool with
    swap-removal and each output's entries go straight to their CSR slots
    (``input * fan_out + count``), so the cost is O(nnz) plus about ten NumPy calls per
    output; no ``n_in x n_out`` array is built.

    References
    ----------
    Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware
    Acceleration", IEEE JETCAS 9(2):332-345 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> W = regular(800, 100, 50, rng=np.random.default_rng(0))
    >>> int(np.diff(W.indptr).max()), int(np.bincount(W.indices).min()), W.nnz
    (50, 400, 40000)
    """
    owner = "regular"
    n_in, n_out, init, dtype, normal_std = _check_common(owner, n_in, n_out, init, rng, dtype,
                                                        normal_std)
    fan_out, fan_in = _check_fan_out(owner, n_in, n_out, fan_out)
    nnz = n_in * fan_out
    idt = choose_index_dtype(index_dtype, n_in, n_out, nnz, owner)
    cols = _regular_columns(n_in, n_out, fan_out, fan_in, rng)
    indptr = np.arange(n_in + 1, dtype=np.int64) * fan_out
    vals = init_values(init, n_in, n_out, nnz, rng, dtype, normal_std=normal_std)
    return canonical_csr(indptr, cols, vals, n_in, n_out, idt)


def _regular_columns(n_in, n_out, fan_out, fan_in, rng):
    """CSR column indices (int64) of the ``adjmat_basic`` law; row i owns ``i*fan_out ...``."""
    counter = np.zeros(n_in, dtype=np.int64)
    pool = np.arange(n_in, dtype=np.int64)  # pool[:m]: inputs with counter < fan_out
    m = n_in
    cols = np.empty(n_in * fan_out, dtype=np.int64)
    last = n_out - fan_out
    for r in range(n_out):
        if r < last:
            idx = sample_distinct(m, fan_in, rng)
        else:
            c = counter[pool[:m]]
            short = c <= r - last  # would end short unless taken in every remaining output
            forced = np.flatnonzero(short)
            need = fan_in - forced.shape[0]
            if need:
                free = np.flatnonzero(~short)
                idx = np.concatenate([forced, free[sample_distinct(free.shape[0], need, rng)]])
            else:
                idx = forced
        chosen = pool[idx]
        cols[chosen * fan_out + counter[chosen]] = r
        counter[chosen] += 1
        full = idx[counter[chosen] == fan_out]
        if full.shape[0]:
            m = _swap_remove(pool, m, full)
    return cols


def _swap_remove(pool, m, pos):
    """Remove distinct positions ``pos`` from ``pool[:m]`` by moving tail entries into the holes."""
    pos = np.sort(pos)
    new_m = m - pos.shape[0]
    cut = int(np.searchsorted(pos, new_m))
    keep_tail = np.ones(m - new_m, dtype=bool)
    keep_tail[pos[cut:] - new_m] = False
    pool[pos[:cut]] = pool[new_m:m][keep_tail]
    return new_m
