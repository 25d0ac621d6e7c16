"""Importance pruning: every incoming connection of the least important output neurons goes."""

import numpy as np

from .._validation import check_param
from .steps import shrink

__all__ = ["importance_prune"]


def importance_prune(layer, percentile):
    """Remove every incoming connection of the least important output neurons.

    Parameters
    ----------
    layer : SparseLinear
        The layer (a hidden layer in the reference schedules); modified in place.
    percentile : float
        In [0, 100]. With importance ``s_j = sum_i |W[i, j]|`` and
        ``t = np.percentile(s, percentile)``, every output neuron with ``s_j <= t`` loses all
        its incoming connections.

    Returns
    -------
    ndarray of int64
        ``keep_index``: ascending positions in the old ``W.data`` that survive. If nothing is
        removed, W is untouched and this is ``arange(nnz)``; otherwise W receives new, smaller
        ``indices``, ``data`` and ``indptr`` arrays and the transposed index is rebuilt.

    Raises
    ------
    ValueError
        If ``percentile`` is outside [0, 100].
    TypeError
        If ``layer`` is not a SparseLinear layer.

    Notes
    -----
    The neuron-importance pruning of the large-scale SET code that accompanies Mocanu et
    al. (2018) (P = 20 or 10 every 10 or 20 epochs after epoch 200). Neurons without
    connections have ``s_j = 0`` and count in the percentile. Column sums are accumulated
    in float64 in CSR order (``np.bincount``), so they can differ from a float32 SciPy
    column sum in the last bit, which matters only for exact ties at ``t``.
    O(nnz + n_out log n_out) time, O(nnz) memory.

    References
    ----------
    Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
    connectivity inspired by network science", Nature Communications 9:2383 (2018).
    """
    percentile = check_param("percentile", percentile, "float", low=0, high=100,
                             owner="importance_prune")
    if not hasattr(layer, "W") or not hasattr(layer, "refresh_index"):
        raise TypeError(f"importance_prune needs a SparseLinear layer. Got {type(layer).__name__}.")
    W = layer.W
    n_out = W.shape[1]
    nnz = int(W.indptr[-1])
    s = np.bincount(W.indices[:nnz], weights=np.abs(W.data[:nnz]).astype(np.float64),
                    minlength=n_out)
    t = np.percentile(s, percentile)
    alive = s > t
    keep = alive[W.indices[:nnz]]
    keep_index = np.flatnonzero(keep)
    if keep_index.size == nnz:
        return np.arange(nnz, dtype=np.int64)
    shrink(layer, keep_index)
    return keep_index.astype(np.int64, copy=False)
