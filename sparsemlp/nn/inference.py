"""Layer-by-layer inference of a SparseMLP on sample-major inputs (calibration passes)."""

import numpy as np

__all__ = ["inference_scale", "layer_output", "next_input", "layer_input", "never_active"]


def inference_scale(model, i):
    """Factor of layer ``i``'s pre-activation at inference.

    Parameters
    ----------
    model : SparseMLP
        The model.
    i : int
        Layer index.

    Returns
    -------
    float
        ``1 - dropout`` for the layers after the first with "original" dropout (the SET
        tutorials' inference rule), else 1.
    """
    if model.dropout_kind == "original" and model.dropout > 0 and i > 0:
        return 1.0 - model.dropout
    return 1.0


def _dense_is_smaller(layer):
    """Whether a CSR layer's weights take no more memory dense than as CSR (density >= 2/3 for
    float32 or float64 values with int32 indices): the size guard of the dense product."""
    if layer.kind != "csr":
        return False
    W = layer.W
    return W.shape[0] * W.shape[1] * W.data.itemsize <= W.nnz * (W.data.itemsize
                                                                 + W.indices.itemsize)


def layer_output(model, i, A):
    """Pre-activation of layer ``i`` at inference for sample-major inputs ``A``.

    Computed in the layer's dtype (as the model computes it): by the layer's own kernels
    (any layer kind), or by one BLAS product when a CSR layer's weights take no more memory
    dense than as CSR (an imported dense layer); returned as float64.

    Parameters
    ----------
    model : SparseMLP
        The model.
    i : int
        Layer index.
    A : ndarray of shape (n, n_in)
        The layer's inputs.

    Returns
    -------
    ndarray of shape (n, n_out)
        ``(A @ W + b) * scale`` (``scale`` from `inference_scale`).
    """
    layer = model.layers[i]
    if _dense_is_smaller(layer):  # a (nearly) dense layer: one BLAS product, same dtype
        Z = np.asarray(A, dtype=layer.dtype) @ layer.W.toarray()
        Z += layer.b
        Z = np.ascontiguousarray(Z, dtype=np.float64)
    else:
        out = np.empty((layer.n_out, A.shape[0]), layer.dtype)
        layer.forward(np.ascontiguousarray(A.T, dtype=layer.dtype), out)
        Z = np.ascontiguousarray(out.T, dtype=np.float64)
    s = inference_scale(model, i)
    if s != 1.0:
        Z *= s
    return Z


def next_input(model, i, A):
    """Inputs of layer ``i + 1`` (the activation of layer ``i``) for inputs ``A`` of layer ``i``.

    Parameters
    ----------
    model : SparseMLP
        The model.
    i : int
        Layer index (not the last).
    A : ndarray of shape (n, n_in)
        Inputs of layer ``i``.

    Returns
    -------
    ndarray of shape (n, n_out)
        float64 activations.
    """
    Z = layer_output(model, i, A)
    return np.ascontiguousarray(model.activations[i].forward(Z.T).T, dtype=np.float64)


def layer_input(model, i, X):
    """Inputs of layer ``i`` at inference for model inputs ``X`` (float64, sample-major).

    Parameters
    ----------
    model : SparseMLP
        The model.
    i : int
        Layer index (0 returns ``X``).
    X : ndarray of shape (n, n_features)
        Model inputs.

    Returns
    -------
    ndarray of shape (n, n_in of layer i)
        Activations feeding layer ``i``.
    """
    A = X
    for k in range(i):
        A = next_input(model, k, A)
    return A


def never_active(model, i, X):
    """Units of layer ``i`` whose pre-activation is never positive on model inputs ``X``.

    Behind a ReLU such a unit outputs 0 on all these samples and passes no gradient back,
    so training on data like ``X`` cannot bring it back (a "dead" unit).

    Parameters
    ----------
    model : SparseMLP
        The model.
    i : int
        Layer index.
    X : ndarray of shape (n, n_features)
        Model inputs (scaled as the model takes them); memory O(n * widest layer).

    Returns
    -------
    int
        The number of units of layer ``i`` with ``z <= 0`` (or NaN) on every sample.
    """
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
    Z = layer_output(model, i, layer_input(model, i, X))
    return int(np.count_nonzero(~(Z > 0).any(axis=0)))
