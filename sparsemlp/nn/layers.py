"""SparseLinear: one CSR weight layer, its bias and transposed index; forward/backward via kernels."""

import numpy as np
import scipy.sparse as sp

from .. import _kernels

__all__ = ["SparseLinear"]

# Forward by a row-order scatter (kernel spmm_scatter) instead of the gather through the
# transposed index for batches of at most this many samples on layers of at least this many
# connections: it streams W instead of reading W.data[perm[k]] at random, one cache miss per
# connection once W outgrows the caches. Same bits (tests/test_kernels.py). The thresholds
# come from bench_kernels.py (benchmarks/README.md, "Scatter forward at small batches").
_SCATTER_MAX_BATCH = 4
_SCATTER_MIN_NNZ = 1 << 21


class SparseLinear:
    """A sparse fully connected layer ``z = x @ W + b`` with W a canonical CSR array.

    Parameters
    ----------
    W : scipy.sparse.csr_array of shape (n_in, n_out)
        Canonical CSR weights (sorted indices, no duplicates), float32 or float64,
        int32 or int64 indices. Stored by reference: the layer updates ``W.data`` in place.
    b : ndarray of shape (n_out,), optional
        Bias; zeros if omitted.
    kernels : KernelSet or str, default="auto"
        Kernel backend.

    Attributes
    ----------
    indptr_t, indices_t, perm : ndarray
        Transposed (column) index: ``W.data[perm[k]]`` is the k-th entry in column order.
        Built lazily: on first use and on the first use after :meth:`refresh_index`.
    schedule : ClashFreeSchedule or None
        The cycle schedule of a clash-free layer (:func:`sparsemlp.topology.clash_free`), kept
        aligned with W by :func:`sparsemlp.rewiring.evolve_degree_preserving`; None otherwise.

    Notes
    -----
    Memory per connection: value + column index (W), row index + permutation (transposed
    index) = 16 bytes in float32/int32, plus optimizer state and gradient held elsewhere.
    Activations are feature-major: ``xt`` has shape (n_in, batch).
    """

    def __init__(self, W, b=None, *, kernels="auto"):
        if not isinstance(W, sp.csr_array):
            raise TypeError(f"W must be a scipy.sparse.csr_array. Got {type(W).__name__}.")
        self.W = W
        self.kernels = _kernels.resolve(kernels)
        n_out = W.shape[1]
        self.b = np.zeros(n_out, W.dtype) if b is None else np.ascontiguousarray(b, W.dtype)
        if self.b.shape != (n_out,):
            raise ValueError(f"b must have shape ({n_out},). Got {self.b.shape}.")
        self._indptr_t = self._indices_t = self._perm = None
        self._index_stale = True
        self.schedule = None
        self.refresh_index()

    @property
    def n_in(self):
        """Number of inputs (rows of W)."""
        return self.W.shape[0]

    @property
    def n_out(self):
        """Number of outputs (columns of W)."""
        return self.W.shape[1]

    @property
    def nnz(self):
        """Number of stored connections."""
        return int(self.W.indptr[-1])

    @property
    def dtype(self):
        """Floating dtype of weights and activations."""
        return self.W.data.dtype

    @property
    def indptr_t(self):
        """Column pointer of the transposed index (rebuilt first if stale).

        Returns
        -------
        ndarray of shape (n_out + 1,)
            Index array (W's index dtype).
        """
        return self.ensure_index()[0]

    @property
    def indices_t(self):
        """Row of each entry in column order (rebuilt first if stale).

        Returns
        -------
        ndarray of shape (nnz,)
            Index array (W's index dtype).
        """
        return self.ensure_index()[1]

    @property
    def perm(self):
        """Position in ``W.data`` of each entry in column order (rebuilt first if stale).

        Returns
        -------
        ndarray of shape (nnz,)
            Index array (W's index dtype).
        """
        return self.ensure_index()[2]

    def refresh_index(self):
        """Mark the transposed index stale after the pattern of W changed.

        The index is rebuilt (O(nnz + n), ``csr_transpose``) on its next use, so a run of
        topology changes rebuilds it once, and the 8 bytes per connection it holds can be
        released in between (:meth:`release_index`).
        """
        W = self.W
        W.has_sorted_indices = True
        W.has_canonical_format = True
        self._index_stale = True

    def release_index(self):
        """Free the transposed index (8 bytes per connection in int32) until its next use."""
        self._indptr_t = self._indices_t = self._perm = None
        self._index_stale = True

    def ensure_index(self):
        """The transposed index ``(indptr_t, indices_t, perm)``, rebuilt if stale.

        Returns
        -------
        tuple of ndarray
            ``indptr_t``, ``indices_t``, ``perm``.
        """
        if self._index_stale:
            W = self.W
            idt = W.indices.dtype
            nnz = self.nnz
            if self._perm is None or self._perm.shape[0] != nnz or self._perm.dtype != idt:
                self._indptr_t = self._indices_t = self._perm = None
                self._indptr_t = np.empty(self.n_out + 1, idt)
                self._indices_t = np.empty(nnz, idt)
                self._perm = np.empty(nnz, idt)
            self.kernels.csr_transpose(W.indptr, W.indices, self.n_out, self._indptr_t,
                                       self._indices_t, self._perm)
            self._index_stale = False
        return self._indptr_t, self._indices_t, self._perm

    def set_weights(self, W):
        """Replace W by a matrix of the same shape and dtypes (nnz may change).

        Parameters
        ----------
        W : scipy.sparse.csr_array
            New canonical weights.
        """
        if W.shape != self.W.shape or W.dtype != self.W.dtype:
            raise ValueError(f"new W must have shape {self.W.shape} and dtype {self.W.dtype}.")
        self.W = W
        self.refresh_index()

    def forward(self, xt, out):
        """``out = (x @ W + b).T`` for feature-major ``xt`` of shape (n_in, B).

        Parameters
        ----------
        xt : ndarray of shape (n_in, B)
            C-contiguous inputs, same dtype as W.
        out : ndarray of shape (n_out, B)
            Preallocated output, overwritten.

        Returns
        -------
        ndarray
            ``out``.
        """
        W = self.W
        if xt.shape[1] <= _SCATTER_MAX_BATCH and self.nnz >= _SCATTER_MIN_NNZ:
            # each output sums its terms in ascending row order, like the gather below
            self.kernels.spmm_scatter(W.indptr, W.indices, W.data, xt, out)
        else:
            indptr_t, indices_t, perm = self.ensure_index()
            self.kernels.spmm(indptr_t, indices_t, perm, W.data, xt, out)
        out += self.b[:, None]
        return out

    def backward(self, xt, dyt, dw, db, dxt=None):
        """Gradient sums over the batch; optionally the delta for the layer below.

        Parameters
        ----------
        xt : ndarray of shape (n_in, B)
            Inputs of the forward pass.
        dyt : ndarray of shape (n_out, B)
            Loss derivative with respect to the pre-activation ``z``.
        dw : ndarray of shape (nnz,)
            Overwritten with ``sum_b x[b, i] * dy[b, j]`` per connection, in W.data order.
        db : ndarray of shape (n_out,)
            Overwritten with ``sum_b dy[b, :]``.
        dxt : ndarray of shape (n_in, B), optional
            If given, overwritten with ``(dy @ W.T).T`` (computed with the pre-update W).
        """
        W = self.W
        ks = self.kernels
        if dxt is None:
            ks.sddmm(W.indptr, W.indices, xt, dyt, dw)
        elif _kernels.FUSED_BACKWARD:
            ks.backward_fused(W.indptr, W.indices, W.data, xt, dyt, dxt, dw)
        else:
            ks.spmm_t(W.indptr, W.indices, W.data, dyt, dxt)
            ks.sddmm(W.indptr, W.indices, xt, dyt, dw)
        np.sum(dyt, axis=1, out=db)

    def __repr__(self):
        dens = self.nnz / max(1, self.n_in * self.n_out)
        return (f"SparseLinear({self.n_in}, {self.n_out}, nnz={self.nnz}, density={dens:.4g}, "
                f"dtype={self.dtype}, backend={self.kernels.name!r})")
