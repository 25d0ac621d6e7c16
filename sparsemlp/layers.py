"""SparseLinear: one CSR weight layer, its bias and transposed index; forward/backward via kernels."""

import numpy as np
import scipy.sparse as sp

from . import _kernels
from ._kernels import _flags

__all__ = ["SparseLinear"]


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
        self.kernels = kernels if isinstance(kernels, _kernels.KernelSet) else _kernels.get(kernels)
        n_out = W.shape[1]
        self.b = np.zeros(n_out, W.dtype) if b is None else np.ascontiguousarray(b, W.dtype)
        if self.b.shape != (n_out,):
            raise ValueError(f"b must have shape ({n_out},). Got {self.b.shape}.")
        self.indptr_t = self.indices_t = self.perm = None
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

    def refresh_index(self):
        """Rebuild the transposed index after the pattern of W changed (O(nnz + n))."""
        W = self.W
        idt = W.indices.dtype
        nnz = self.nnz
        if self.perm is None or self.perm.shape[0] != nnz or self.perm.dtype != idt:
            self.indptr_t = np.empty(self.n_out + 1, idt)
            self.indices_t = np.empty(nnz, idt)
            self.perm = np.empty(nnz, idt)
        self.kernels.csr_transpose(W.indptr, W.indices, self.n_out, self.indptr_t,
                                   self.indices_t, self.perm)
        W.has_sorted_indices = True
        W.has_canonical_format = True

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
        self.kernels.spmm(self.indptr_t, self.indices_t, self.perm, W.data, xt, out)
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
        elif _flags.FUSED_BACKWARD:
            ks.backward_fused(W.indptr, W.indices, W.data, xt, dyt, dxt, dw)
        else:
            ks.spmm_t(W.indptr, W.indices, W.data, dyt, dxt)
            ks.sddmm(W.indptr, W.indices, xt, dyt, dw)
        np.sum(dyt, axis=1, out=db)

    def __repr__(self):
        dens = self.nnz / max(1, self.n_in * self.n_out)
        return (f"SparseLinear({self.n_in}, {self.n_out}, nnz={self.nnz}, density={dens:.4g}, "
                f"dtype={self.dtype}, backend={self.kernels.name!r})")
