"""Replace a layer of a SparseMLP by a structured approximation of its weights."""

import numpy as np

from .._validation import check_param
from ..nn.inference import layer_input
from .displacement import toeplitz_like
from .hierarchical import hedlr, hmatrix, hodlr
from .lowrank import low_rank
from .semiseparable import sss
from .sparse_factors import sparse_product

__all__ = ["KINDS", "approximate_layer"]

#: Builder of every approximation kind, by name.
KINDS = {"low_rank": low_rank, "sss": sss, "sparse_product": sparse_product, "hodlr": hodlr,
         "hedlr": hedlr, "hmatrix": hmatrix, "toeplitz_like": toeplitz_like}


def approximate_layer(model, i, kind, *, share, calib=None, **options):
    """Replace CSR layer ``i`` of a model by a trainable structured approximation, in place.

    The layer's weights ``W`` (``n_in x n_out``) are approximated as the ``n_out x n_in``
    matrix ``W.T`` (the ``y = A x`` orientation of `sparsemlp.approx`); the new layer keeps
    the bias, dtype and kernel backend. Build the trainer after replacing (it holds the
    parameter arrays); SET evolution skips structured layers.

    Parameters
    ----------
    model : SparseMLP
        The model (changed in place).
    i : int
        Index of a CSR layer.
    kind : {"low_rank", "sss", "sparse_product", "hodlr", "hedlr", "hmatrix", "toeplitz_like"}
        The structure.
    share : float
        Parameter budget as a fraction of ``n_in * n_out``, in (0, 1].
    calib : array_like of shape (n_samples, n_features), optional
        Model inputs (scaled as the model takes them) for *bias correction*: the new layer's
        bias becomes ``b + mean_a (W.T a - A a)`` over the layer's inputs ``a`` on these samples,
        so every output keeps its mean pre-activation (as bias correction after quantisation,
        Nagel et al. 2019). Without it an approximation that shifts the pre-activations can
        leave every ReLU of the layer off on all data, and then no gradient reaches it.
    **options
        Options of the kind's builder (e.g. ``n_states`` of `sss`).

    Returns
    -------
    Approximation
        The approximation of the layer's weights before training (``rel_error`` against them).

    Raises
    ------
    ValueError
        For an unknown kind, a layer that is already structured, calibration inputs of the
        wrong shape or with NaN/inf, or the builder's errors (e.g. `InfeasibleBudgetError`).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsemlp import SparseMLP, approx
    >>> m = SparseMLP.erdos_renyi([20, 30, 5], epsilon=10, rng=np.random.default_rng(0))
    >>> a = approx.approximate_layer(m, 0, "low_rank", share=0.2)
    >>> m.layers[0].kind, m.layers[0].nnz
    ('low_rank', 100)
    """
    kind = check_param("kind", kind, "str", options=tuple(KINDS), owner="approximate_layer")
    n = len(model.layers)
    if not -n <= i < n:
        raise IndexError(f"approximate_layer: the model has layers 0..{n - 1}. Got {i}.")
    layer = model.layers[i]
    if layer.kind != "csr":
        raise ValueError(f"approximate_layer: layer {i % n} is already a {layer.kind} layer; "
                         "approximate a CSR layer (or its to_approximation() directly).")
    inputs = None if calib is None else _layer_inputs(model, i % n, calib)
    a = KINDS[kind](layer.W.T.tocsr(), share=share, **options)
    bias = layer.b
    if inputs is not None:
        shift = np.asarray(layer.W.T @ inputs) - a.matmat(inputs)  # (n_out, n_samples)
        bias = layer.b + shift.mean(axis=1)
    model.replace_layer(i, a.to_layer(bias, dtype=layer.dtype, kernels=layer.kernels))
    return a


def _layer_inputs(model, i, calib):
    """Inputs of layer i (feature-major float64) for model inputs calib, as at inference."""
    d = model.layers[0].n_in
    X = np.asarray(calib.toarray() if hasattr(calib, "toarray") else calib)
    if X.ndim != 2 or X.shape[1] != d or X.shape[0] < 1 or X.dtype.kind not in "biuf":
        raise ValueError(f"approximate_layer: calib must be numeric model inputs of shape "
                         f"(n_samples, {d}). Got shape {X.shape} ({X.dtype}); pass training "
                         "samples scaled as the model takes them.")
    if not np.isfinite(X).all():
        raise ValueError("approximate_layer: calib holds NaN or infinite values; pass finite "
                         "model inputs.")
    return np.ascontiguousarray(layer_input(model, i, X.astype(np.float64)).T)
