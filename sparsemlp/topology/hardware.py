"""Clash-free patterns for z-bank hardware (Dey et al.) and the balance of z across layers."""

import math

import numpy as np

from .._validation import check_param
from .csr import _shape_str, canonical_csr, choose_index_dtype
from .laws import init_values
from .predefined import _REF, _check_common, _check_fan_out, _divisors, _near
from .schedule import ClashFreeSchedule

__all__ = ["clash_free", "balance_z", "feasible_cycles", "CLASH_KINDS"]

CLASH_KINDS = (1, 2, 3)


def clash_free(n_in, n_out, fan_out, z, *, kind=1, dither=False, init="normal", rng,
               dtype=np.float32, index_dtype=None, normal_std=0.1):
    """Regular layer whose connections a z-bank memory reads z at a time without bank clashes.

    Parameters
    ----------
    n_in : int
        Number of inputs (left neurons). Input k lives in memory bank ``k % z`` at address
        ``k // z``.
    n_out : int
        Number of outputs (right neurons).
    fan_out : int
        Out-degree of every input; it must divide ``n_out`` (see Raises) and make
        ``fan_in = n_in * fan_out / n_out`` an integer.
    z : int
        Number of memory banks = connections processed per clock cycle; must divide
        ``n_in``. The layer takes ``n_in * fan_out / z`` cycles.
    kind : {1, 2, 3}, default=1
        Address pattern of each bank within a sweep: 1, an independent random permutation
        per bank and sweep; 2, a random start address counting up modulo ``n_in / z``
        (a hardware counter), redrawn per sweep; 3, as 2 with the same addresses in
        every sweep.
    dither : bool, default=False
        Read the banks in a random lane order, redrawn per sweep (kind 3: the first
        sweep's for all), instead of lane u reading bank u.
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the values (:func:`sparsemlp.topology.init_values`).
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness (keyword-only, required).
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Dtype of the values.
    index_dtype : {numpy.int32, numpy.int64}, optional
        Dtype of the indices and of the schedule; by default int32 while sizes allow it.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.

    Returns
    -------
    W : scipy.sparse.csr_array of shape (n_in, n_out)
        Canonical CSR: every input has exactly ``fan_out`` connections, every output
        ``fan_in``, no connection twice.
    schedule : ClashFreeSchedule
        Which connection lane u reads in cycle c (``schedule.order[c * z + u]`` is its
        position in ``W.data``); every cycle reads z different banks.

    Raises
    ------
    ValueError
        If ``z`` does not divide ``n_in``, ``fan_in`` is not an integer, or ``fan_out`` does
        not divide ``n_out``. The original (``adjmat_clash_free``) accepted the last case and
        returned patterns with duplicate connections collapsed, i.e. outputs short of
        ``fan_in`` inputs (Dey et al. 2019's code); here it is an error that lists valid values.
    TypeError
        If ``rng`` or a parameter has the wrong type.

    See Also
    --------
    regular : No hardware constraint.
    balance_z : The z of every layer for equal cycle counts.
    ClashFreeSchedule : Checking and exporting the schedule.

    Notes
    -----
    The construction of Dey et al. (2019): ``fan_out`` sweeps of ``n_in / z`` cycles; in
    sweep s, cycle c, lane u the connection ``e = s * n_in + c * z + u`` reads input
    ``t_s[c, u] * z + v_s[u]`` (address pattern t, bank order v) for output ``e // fan_in``.
    Within a sweep every input is read once, and as ``fan_out`` divides ``n_out`` every
    output's ``fan_in`` connections lie in one sweep, so the pattern is valid by
    construction. The CSR position of connection e is the original's interleaver value
    ``input * fan_out + s`` (row ``input`` holds its sweep-s connection s-th, as sweep s
    covers outputs ``[s, s + 1) * n_out / fan_out``): O(nnz) time and memory, no sort, no
    ``n_in x n_out`` array. The schedule costs one index per connection (4 bytes in int32).

    The law is the original's, so the numbers of distinct patterns are its formulas:
    with D = n_in / z and k = 1 (no dither, or z divides fan_in) or z!/(fan_in!)^(z/fan_in)
    (dither, fan_in divides z), kind 1 gives (k (D!)^z)^fan_out, kind 2 (k D^z)^fan_out,
    kind 3 k D^z (27, 729, 81 and 486 on the small layers that
    ``tests/test_predefined.py`` enumerates).

    References
    ----------
    Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware
    Acceleration", IEEE JETCAS 9(2):332-345 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> W, s = clash_free(800, 100, 50, 200, rng=np.random.default_rng(0))
    >>> W.nnz, s.n_cycles, s.is_clash_free(W)
    (40000, 200, True)
    """
    owner = "clash_free"
    n_in, n_out, init, dtype, normal_std = _check_common(owner, n_in, n_out, init, rng, dtype,
                                                        normal_std)
    z = check_param("z", z, "int", low=1, high=n_in, owner=owner)
    if n_in % z:
        raise ValueError(
            f"The 'z' parameter of clash_free must divide n_in: the {n_in} inputs are spread "
            f"over z memory banks of n_in / z addresses each. Got z={z} for n_in={n_in}. Use a "
            f"divisor of {n_in} (e.g. {', '.join(map(str, _near(_divisors(n_in), z)))}), or "
            "pad the inputs to a multiple of z (TrainConfig.pad_inputs).")
    if kind not in CLASH_KINDS or isinstance(kind, bool):
        raise ValueError(f"The 'kind' parameter of clash_free must be 1, 2 or 3. Got {kind!r} "
                         "instead.")
    dither = check_param("dither", dither, "bool", owner=owner)
    fan_out, fan_in = _check_fan_out(owner, n_in, n_out, fan_out)
    if n_out % fan_out:
        ok = [f for f in _divisors(n_out) if (n_in * f) % n_out == 0]
        raise ValueError(
            f"The 'fan_out' parameter of clash_free must divide n_out (equivalently fan_in "
            f"divides n_in): otherwise an output's fan_in connections straddle two sweeps and "
            f"can read the same input twice, which the original silently collapsed into a "
            f"missing connection ({_REF}). Got fan_out={fan_out} for the "
            f"{_shape_str(n_in, n_out)} layer. Use one of {', '.join(map(str, _near(ok, fan_out)))}"
            ", or regular(), which has no memory-bank constraint.")
    nnz = n_in * fan_out
    idt = choose_index_dtype(index_dtype, n_in, n_out, nnz, owner)
    cols = np.empty(nnz, dtype=idt)
    order = np.empty(nnz, dtype=idt)
    e = np.arange(n_in, dtype=np.int64)  # connections of one sweep, cycle-major
    t = v = None
    for s in range(fan_out):
        if s == 0 or kind != 3:
            t = _addresses(kind, n_in // z, z, rng)
            if s == 0 or dither:
                v = rng.permutation(z) if dither else np.arange(z)
        left = t * z + v  # (D, z): input read by lane u in cycle c of this sweep
        pos = left.reshape(-1) * fan_out + s
        cols[pos] = (e + s * n_in) // fan_in
        order[s * n_in:(s + 1) * n_in] = pos
    indptr = np.arange(n_in + 1, dtype=np.int64) * fan_out
    vals = init_values(init, n_in, n_out, nnz, rng, dtype, normal_std=normal_std)
    W = canonical_csr(indptr, cols, vals, n_in, n_out, idt)
    return W, ClashFreeSchedule(order, z, kind=kind, dither=dither)


def _addresses(kind, depth, z, rng):
    """Address of the input read by lane u in cycle c of one sweep, shape (depth, z), int64."""
    if kind == 1:  # each bank: its depth addresses in an independent random order
        a = np.tile(np.arange(depth, dtype=np.int64), (z, 1))
        return np.ascontiguousarray(rng.permuted(a, axis=1).T) if isinstance(
            rng, np.random.Generator) else np.stack([rng.permutation(depth) for _ in range(z)],
                                                    axis=1)
    start = _draw_starts(rng, depth, z)  # kinds 2 and 3: counters from random starts
    return (np.arange(depth, dtype=np.int64)[:, None] + start) % depth


def _draw_starts(rng, depth, z):
    if isinstance(rng, np.random.Generator):
        return rng.integers(0, depth, size=z, dtype=np.int64)
    return rng.randint(0, depth, size=z).astype(np.int64)


def feasible_cycles(sizes, fan_out):
    """Cycle counts every junction of a net can take with an integer z dividing its inputs.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first (``[800, 100, 10]``).
    fan_out : sequence of int
        Out-degree of each junction (``[50, 10]``).

    Returns
    -------
    list of int
        Ascending cycle counts C: junction i then has ``z_i = sizes[i] * fan_out[i] / C``
        banks, an integer dividing ``sizes[i]`` (so C is a multiple of every fan-out and
        divides every ``sizes[i] * fan_out[i]``). Empty if there is none.

    Raises
    ------
    ValueError
        If the lengths do not match or a value is not a positive integer.
    """
    sizes, fan_out = _check_net(sizes, fan_out, "feasible_cycles")
    lcm = math.lcm(*fan_out)
    g = math.gcd(*(n * f for n, f in zip(sizes[:-1], fan_out)))
    if g % lcm:
        return []
    return [lcm * d for d in _divisors(g // lcm)]


def balance_z(sizes, fan_out, n_cycles):
    """Memory banks per junction so that every junction takes ``n_cycles`` clock cycles.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first.
    fan_out : sequence of int
        Out-degree of each junction.
    n_cycles : int
        Cycles per junction (the pipeline's period).

    Returns
    -------
    list of int
        ``z_i = sizes[i] * fan_out[i] / n_cycles``, each dividing ``sizes[i]``.

    Raises
    ------
    ValueError
        If some junction cannot take ``n_cycles`` cycles (the message lists the feasible
        counts, :func:`feasible_cycles`).

    Notes
    -----
    A junction with p inputs of out-degree fo and z banks takes ``p * fo / z`` cycles; a
    pipeline of junctions runs at the pace of the slowest, so the z are chosen to make them
    equal (Dey et al. 2019).

    References
    ----------
    Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware
    Acceleration", IEEE JETCAS 9(2):332-345 (2019).

    Examples
    --------
    >>> balance_z([800, 100, 10], [50, 10], 200)
    [200, 5]
    """
    sizes, fan_out = _check_net(sizes, fan_out, "balance_z")
    n_cycles = check_param("n_cycles", n_cycles, "int", low=1, owner="balance_z")
    z = []
    for i, (p, f) in enumerate(zip(sizes[:-1], fan_out)):
        if (p * f) % n_cycles or p % ((p * f) // n_cycles):
            ok = feasible_cycles(sizes, fan_out)
            hint = (f"Feasible cycle counts for this net: {', '.join(map(str, ok[:12]))}"
                    f"{' ...' if len(ok) > 12 else ''}." if ok else
                    "No cycle count suits every junction; change the fan-outs or pad the inputs.")
            raise ValueError(
                f"The 'n_cycles' parameter of balance_z must give every junction an integer z "
                f"dividing its inputs (z = inputs * fan_out / n_cycles). Got n_cycles={n_cycles}: "
                f"junction {i} ({p} inputs, fan_out {f}) would need z = {p * f / n_cycles:g}. {hint}")
        z.append((p * f) // n_cycles)
    return z


def _check_net(sizes, fan_out, owner):
    sizes = [check_param(f"sizes[{i}]", s, "int", low=1, owner=owner) for i, s in enumerate(sizes)]
    fan_out = [check_param(f"fan_out[{i}]", f, "int", low=1, owner=owner)
               for i, f in enumerate(fan_out)]
    if len(sizes) < 2 or len(fan_out) != len(sizes) - 1:
        raise ValueError(f"{owner} needs one fan_out per junction: {len(sizes) - 1} for sizes "
                         f"{sizes}. Got {len(fan_out)}.")
    return sizes, fan_out
