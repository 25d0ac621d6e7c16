"""Pre-defined sparse layers for a whole net: one generator, fan-outs and balanced z per layer."""

import math

import numpy as np

from .._validation import check_param
from .hardware import balance_z, clash_free
from .predefined import random, regular

__all__ = ["PREDEFINED_KINDS", "predefined_layers"]

PREDEFINED_KINDS = ("random", "regular", "clash-free")


def predefined_layers(sizes, *, topology, fan_out=None, z=None, n_cycles=None, epsilon=None,
                      kind=1, dither=False, init="normal", rng, dtype=np.float32,
                      index_dtype=None, normal_std=0.1):
    """The weight patterns of a net with pre-defined sparsity (Dey et al.), layer by layer.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first, e.g. ``[800, 100, 10]`` (pad 784 pixels to 800 so
        that z can divide the inputs).
    topology : {"random", "regular", "clash-free"}
        Generator of every layer: :func:`random`, :func:`regular` or :func:`clash_free`.
    fan_out : sequence of int, optional
        Out-degree per layer, e.g. ``[50, 10]``; required except for ``"random"``, which
        then takes its connection counts from ``epsilon``.
    z : sequence of int, optional
        Memory banks per layer (``"clash-free"``); or give ``n_cycles``.
    n_cycles : int, optional
        Cycles per layer (``"clash-free"``): ``z = balance_z(sizes, fan_out, n_cycles)``.
    epsilon : float, optional
        ``"random"`` without ``fan_out``: ``ceil(d * n_in * n_out)`` connections with the
        Erdős–Rényi density ``d = min(1, epsilon * (n_in + n_out) / (n_in * n_out))``.
    kind : {1, 2, 3}, default=1
        Address pattern of ``"clash-free"`` layers.
    dither : bool, default=False
        Bank-order dither of ``"clash-free"`` layers.
    init : {"normal", "he_uniform", "xavier_uniform"}, default="normal"
        Law of the values.
    rng : numpy.random.Generator or numpy.random.RandomState
        Source of randomness, used layer after layer (keyword-only).
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Dtype of the values.
    index_dtype : {numpy.int32, numpy.int64}, optional
        Dtype of the indices.
    normal_std : float, default=0.1
        Standard deviation of the ``"normal"`` law.

    Returns
    -------
    weights : list of scipy.sparse.csr_array
        One canonical CSR pattern per layer, shape ``(sizes[i], sizes[i + 1])``.
    schedules : list of ClashFreeSchedule or None
        The cycle schedule of each layer (``"clash-free"``), else None per layer.

    Raises
    ------
    ValueError
        If a count or a layer's parameters are infeasible (the generator's message names
        the layer's parameter, the rule and valid values).

    See Also
    --------
    balance_z : The z of every layer for equal cycle counts.

    References
    ----------
    Dey, Huang, Beerel, Chugg, "Pre-Defined Sparse Neural Networks with Hardware
    Acceleration", IEEE JETCAS 9(2):332-345 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> Ws, ss = predefined_layers([800, 100, 10], topology="clash-free", fan_out=[50, 10],
    ...                            n_cycles=200, rng=np.random.default_rng(0))
    >>> [W.nnz for W in Ws], [s.z for s in ss]
    ([40000, 1000], [200, 5])
    """
    owner = "predefined_layers"
    topology = check_param("topology", topology, "str", options=PREDEFINED_KINDS, owner=owner)
    sizes = [check_param(f"sizes[{i}]", s, "int", low=1, owner=owner) for i, s in enumerate(sizes)]
    n_layers = len(sizes) - 1
    if n_layers < 1:
        raise ValueError(f"sizes needs at least an input and an output size. Got {sizes}.")

    def per_layer(name, values):
        values = list(values)
        if len(values) != n_layers:
            raise ValueError(f"The {name!r} parameter of {owner} needs one value per layer "
                             f"({n_layers} for sizes {sizes}). Got {values}.")
        return values

    if fan_out is not None:
        fan_out = per_layer("fan_out", fan_out)
    elif topology != "random" or epsilon is None:
        raise ValueError(f"{owner} with topology={topology!r} needs fan_out (one out-degree per "
                         f"layer, e.g. [50, 10])" + (" or epsilon." if topology == "random" else "."))
    if topology == "clash-free":
        if (z is None) == (n_cycles is None):
            raise ValueError(f"{owner} with topology='clash-free' needs exactly one of z (banks "
                             "per layer) and n_cycles (cycles per layer, z balanced).")
        z = per_layer("z", z) if z is not None else balance_z(sizes, fan_out, n_cycles)
    kw = dict(init=init, rng=rng, dtype=dtype, index_dtype=index_dtype, normal_std=normal_std)
    weights, schedules = [], []
    for i in range(n_layers):
        n_in, n_out = sizes[i], sizes[i + 1]
        try:
            if topology == "random":
                if fan_out is not None:
                    W = random(n_in, n_out, fan_out=fan_out[i], **kw)
                else:
                    d = min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))
                    W = random(n_in, n_out, nnz=min(n_in * n_out, math.ceil(d * n_in * n_out)),
                               **kw)
                s = None
            elif topology == "regular":
                W, s = regular(n_in, n_out, fan_out[i], **kw), None
            else:
                W, s = clash_free(n_in, n_out, fan_out[i], z[i], kind=kind, dither=dither, **kw)
        except ValueError as exc:
            raise ValueError(f"layer {i} ({n_in} -> {n_out}): {exc}") from None
        weights.append(W)
        schedules.append(s)
    return weights, schedules
