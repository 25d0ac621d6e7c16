"""Building blocks of every topology rule: the result, argument checks, compaction and merge."""

import os
from typing import NamedTuple

import numpy as np

from .._validation import check_csr, check_param
from ..topology.csr import keys_to_csr
from ..topology.laws import INIT_LAWS
from ..topology.sampling import check_rng

__all__ = ["EvolutionResult", "check_rule_args", "compact", "shrink", "merge_new"]


class EvolutionResult(NamedTuple):
    """What one evolution step did to a layer, enough to remap per-connection state.

    Attributes
    ----------
    keep_index : ndarray of int64
        Ascending positions in the old ``W.data`` of the connections that survive. Kept
        connections keep their relative order, so ``new[~fresh] = old[keep_index]``.
    new_positions : ndarray of int64
        Ascending positions in the new ``W.data`` of the regrown connections
        (``fresh[new_positions] = True``).
    n_removed : int
        Number of connections removed.
    n_regrown : int
        Number of connections regrown (``n_removed``, or 0 with ``regrow=False``).
    """

    keep_index: np.ndarray
    new_positions: np.ndarray
    n_removed: int
    n_regrown: int

    @classmethod
    def unchanged(cls, nnz):
        """The result of a step that changed nothing on a layer of ``nnz`` connections.

        Parameters
        ----------
        nnz : int
            Connections of the layer.

        Returns
        -------
        EvolutionResult
            ``keep_index = arange(nnz)``, no new positions, nothing removed or regrown.
        """
        return cls(np.arange(nnz, dtype=np.int64), np.empty(0, np.int64), 0, 0)


def _debug():
    return os.environ.get("SPARSEMLP_DEBUG", "") not in ("", "0")


def check_rule_args(layer, rng, init, normal_std, owner):
    """Validate the arguments every topology rule shares (``zeta`` is checked apart).

    Parameters
    ----------
    layer : SparseLinear
        Must have ``W`` and ``refresh_index``.
    rng : object
        A ``Generator`` or a ``RandomState``.
    init : str
        One of :data:`sparsemlp.topology.INIT_LAWS`.
    normal_std : float
        Positive.
    owner : str
        Rule named in error messages.

    Returns
    -------
    init : str
        The law.
    normal_std : float
        The standard deviation.
    legacy : bool
        Whether ``rng`` is a RandomState.

    Raises
    ------
    ValueError
        If ``init`` is unknown or ``normal_std <= 0``.
    TypeError
        If ``rng`` or ``layer`` has the wrong type.
    """
    init = check_param("init", init, "str", options=INIT_LAWS, owner=owner)
    normal_std = check_param("normal_std", normal_std, "float", low=0, low_open=True,
                             owner=owner)
    legacy = check_rng(rng, owner)
    if not hasattr(layer, "W") or not hasattr(layer, "refresh_index"):
        raise TypeError(f"{owner} needs a SparseLinear layer. Got {type(layer).__name__}.")
    return init, normal_std, legacy


def compact(W, keep_index, kernels):
    """The kept part of a CSR pattern, in new arrays (``W`` is not modified).

    Parameters
    ----------
    W : scipy.sparse.csr_array
        Canonical CSR weights.
    keep_index : ndarray of int64
        Ascending positions in ``W.data`` to keep.
    kernels : KernelSet
        Backend (``csr_compact``: one pass over the rows and ``keep_index``).

    Returns
    -------
    indptr : ndarray
        Kept row pointer (W's index dtype).
    indices : ndarray
        Kept column indices.
    data : ndarray
        Kept values.
    """
    idt = W.indices.dtype
    nnz = int(W.indptr[-1])
    m = keep_index.shape[0]
    indptr_k = np.empty(W.indptr.shape[0], dtype=idt)
    ind_k = np.empty(m, dtype=idt)
    data_k = np.empty(m, dtype=W.data.dtype)
    kernels.csr_compact(W.indptr, W.indices[:nnz], W.data[:nnz],
                        np.ascontiguousarray(keep_index, dtype=np.int64), indptr_k, ind_k, data_k)
    return indptr_k, ind_k, data_k


def _replace_arrays(layer, indptr, indices, data):
    """Give W new (differently sized) arrays; the csr_array object itself is kept."""
    W = layer.W
    W.indptr = indptr
    W.indices = indices
    W.data = data
    layer.refresh_index()
    if _debug():
        check_csr(W)


def shrink(layer, keep_index):
    """Keep only the connections at ``keep_index``: W receives new, smaller arrays.

    Parameters
    ----------
    layer : SparseLinear
        The layer; its transposed index is marked stale. The ``csr_array`` object is the
        same, its ``indptr``, ``indices`` and ``data`` are new arrays.
    keep_index : ndarray of int64
        Ascending positions in ``W.data`` to keep.
    """
    _replace_arrays(layer, *compact(layer.W, keep_index, layer.kernels))


def merge_new(layer, indptr_k, ind_k, data_k, keys, vals):
    """Write kept and new connections into W's arrays, in canonical order.

    Parameters
    ----------
    layer : SparseLinear
        The layer. ``W.indptr[-1]`` must already hold the merged size and ``W.indices`` /
        ``W.data`` have that length (the arrays are overwritten in place); its transposed
        index is marked stale.
    indptr_k, ind_k, data_k : ndarray
        The kept connections (:func:`compact`).
    keys : ndarray of int64
        Sorted linear keys ``row * n_out + col`` of the new connections (none kept).
    vals : ndarray
        Their values.

    Returns
    -------
    ndarray of int64
        Ascending positions of the new connections in the merged ``W.data``.

    Notes
    -----
    The backend's ``csr_merge`` and ``merge_values``: O(nnz), kept connections keep their
    values bit for bit and their relative order.
    """
    W = layer.W
    n_in, n_out = W.shape
    idt = W.indices.dtype
    nnz = int(W.indptr[-1])
    indptr_b, cols_b = keys_to_csr(keys, n_in, n_out, idt)
    from_b = np.empty(nnz, dtype=np.int8)
    layer.kernels.csr_merge(indptr_k, ind_k, indptr_b, cols_b, W.indptr, W.indices, from_b)
    del indptr_b, cols_b
    new_positions = np.flatnonzero(from_b)
    layer.kernels.merge_values(from_b, data_k, np.ascontiguousarray(vals, dtype=W.data.dtype),
                               W.data)
    layer.refresh_index()
    if _debug():
        check_csr(W)
    return new_positions
