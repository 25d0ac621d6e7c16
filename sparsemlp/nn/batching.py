"""Batches and gradient buffers: feature-major batches of sample-major data; per-layer scratch views."""

import numpy as np

__all__ = ["batch_t", "shared_views"]


def batch_t(X, idx, dtype):
    """Rows ``idx`` of sample-major ``X`` as a feature-major C-contiguous array.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        Data.
    idx : slice or ndarray of int
        Rows to take.
    dtype : dtype
        Output dtype.

    Returns
    -------
    ndarray of shape (n_features, len(idx))
        The transposed batch.
    """
    rows = X[idx]
    if hasattr(rows, "toarray"):
        rows = rows.toarray()
    return np.ascontiguousarray(rows.T, dtype=dtype)


def shared_views(sizes, dtype):
    """One scratch buffer the size of the largest layer, with each layer's views at offset 0.

    Parameters
    ----------
    sizes : sequence of (int, int)
        ``(nnz, n_out)`` of every layer: the lengths of its weight and bias gradients.
    dtype : dtype
        Buffer dtype.

    Returns
    -------
    scratch : ndarray
        Buffer of length ``max(nnz_l + n_out_l)``.
    views : list of ndarray
        ``[dW_0, db_0, dW_1, db_1, ...]``, aliasing across layers.
    """
    scratch = np.empty(max(a + b for a, b in sizes), dtype)
    views = []
    for a, b in sizes:
        views += [scratch[:a], scratch[a:a + b]]
    return scratch, views
