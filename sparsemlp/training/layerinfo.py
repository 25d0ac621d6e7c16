"""What checkpoints record per layer: its kind, shape and a digest of its topology or structure."""

import hashlib

import numpy as np
import scipy.sparse as sp

__all__ = ["topology_digest", "structure_digest", "layer_kind", "layer_shape"]


def topology_digest(W):
    """SHA-1 of a CSR pattern (indptr and indices), to compare topologies cheaply.

    Parameters
    ----------
    W : scipy.sparse.csr_array
        Matrix.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha1()
    _update_int64(h, W.indptr)
    _update_int64(h, W.indices)
    return h.hexdigest()


def _update_int64(h, a, chunk=1 << 20):
    """Feed ``a`` to ``h`` as little-endian-native int64 bytes, ``chunk`` entries at a time.

    Same digest as hashing ``a.astype(np.int64).tobytes()`` at once, without its two
    full-size copies (16 bytes per connection of the layer at once).
    """
    a = np.asarray(a)
    buf = np.empty(min(chunk, a.shape[0]), np.int64)
    for s in range(0, a.shape[0], chunk):
        part = a[s:s + chunk]
        b = buf[:part.shape[0]]
        b[...] = part
        h.update(memoryview(b).cast("B"))


def structure_digest(approx):
    """SHA-1 of the structure of an approximation (kind, array shapes and integer arrays).

    The analogue of :func:`topology_digest` for structured layers: equal for two layers
    whose parameters differ but whose structure (block sizes, state dimensions, ranks,
    sparsity patterns) is the same.

    Parameters
    ----------
    approx : Approximation
        The structure.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha1(approx.kind.encode())
    for key, a in sorted(approx.to_arrays().items()):
        if key in ("budget", "rel_error", "failed", "message", "kind"):
            continue
        a = np.asarray(a)
        h.update(f"{key}{a.shape}".encode())
        if a.dtype.kind in "iu":
            _update_int64(h, a.reshape(-1))
    return h.hexdigest()


def layer_kind(W):
    """``"csr"`` for a CSR matrix, else the kind of the approximation.

    Parameters
    ----------
    W : scipy.sparse.csr_array or Approximation
        A layer's weights.

    Returns
    -------
    str
        The kind.
    """
    return "csr" if sp.issparse(W) else W.kind


def layer_shape(W):
    """``[n_in, n_out]`` of a CSR layer, or of the layer of an ``m x n`` approximation.

    Parameters
    ----------
    W : scipy.sparse.csr_array or Approximation
        A layer's weights.

    Returns
    -------
    list of int
        The layer's shape.
    """
    return list(W.shape) if sp.issparse(W) else [W.shape[1], W.shape[0]]
