"""Trainable structured layers: the base class, low rank and products of sparse factors."""

import weakref

import numpy as np
import scipy.sparse as sp

from .. import _kernels
from .base import register_layer
from .lowrank import LowRank
from .parts import CSRPart, bind_parts
from .sparse_factors import SparseProduct

__all__ = ["StructuredLayer", "LowRankLayer", "SparseProductLayer"]


class StructuredLayer:
    """A trainable layer ``z = x @ A.T + b`` whose weight matrix A is a structured approximation.

    It follows the protocol of `sparsemlp.nn.SparseLinear` (``forward``/``backward`` on
    feature-major activations, ``parameters()``, ``nnz``, ``b``), so `sparsemlp.nn.SparseMLP`
    and the trainers treat it as any layer, and the optimizers keep state aligned with its two
    parameter arrays: ``values`` (every weight parameter of the structure in one flat buffer,
    in an order chosen for the products) and ``b``. SET evolution does not touch it
    (`sparsemlp.nn.SparseMLP.sparse_layers` lists only CSR layers).

    Build one with ``Approximation.to_layer``; `to_approximation` gives the trained structure
    back (float64) for analysis, checkpoints and export. The orientation is that of the
    approximation: A is ``m x n`` with ``n = n_in`` inputs and ``m = n_out`` outputs, and the
    feature-major forward is ``out = A @ xt + b``.

    Parameters
    ----------
    approx : Approximation
        The approximation (its shape, budget, error and message are kept).
    src : ndarray of shape (nnz,)
        Its parameters in its own order (the source vector).
    perm : ndarray of int or None
        ``values = src[perm]`` (None: the same order).
    bias : array_like of shape (m,) or None
        Bias; zeros if None.
    dtype : {float32, float64}
        Dtype of parameters and activations.
    kernels : KernelSet or str
        Kernel backend of the CSR parts.

    Attributes
    ----------
    kind : str
        The approximation kind (``"low_rank"``, ``"sss"``, ...).
    values : ndarray of shape (nnz,)
        The weight parameters (model dtype), updated in place by the optimizers.
    b : ndarray of shape (n_out,)
        Bias.
    schedule : None
        Structured layers have no clash-free schedule.
    """

    kind = None
    schedule = None

    def __init__(self, approx, src, perm, bias, *, dtype, kernels):
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"to_layer: dtype must be float32 or float64. Got {dtype}.")
        self.n_out, self.n_in = approx.shape
        self.kernels = _kernels.resolve(kernels)
        self._meta = dict(budget=approx.budget, rel_error=approx.rel_error, message=approx.message)
        self._perm = perm
        self.values = np.ascontiguousarray(src if perm is None else src[perm], dtype=dtype)
        if bias is None:
            self.b = np.zeros(self.n_out, dtype)
        else:
            self.b = np.array(bias, dtype=dtype).reshape(-1)
            if self.b.shape != (self.n_out,) or not np.isfinite(self.b).all():
                raise ValueError(f"to_layer: bias must be {self.n_out} finite values (one per row "
                                 f"of the {self.n_out} x {self.n_in} matrix). Got shape "
                                 f"{np.shape(bias)}.")
        self._saved = None

    @classmethod
    def from_approximation(cls, approx, bias=None, *, dtype=np.float32, kernels="auto"):
        """The layer of an approximation (its parameters copied into the model dtype).

        Parameters
        ----------
        approx : Approximation
            An approximation of the kind of this class.
        bias : array_like of shape (m,), optional
            Bias; zeros if omitted.
        dtype : {float32, float64}, default=float32
            Dtype of parameters and activations.
        kernels : KernelSet or str, default="auto"
            Kernel backend of the CSR parts.

        Returns
        -------
        StructuredLayer
            The layer.
        """
        raise NotImplementedError

    # -- the layer protocol -----------------------------------------------------------------
    @property
    def dtype(self):
        """Floating dtype of parameters and activations."""
        return self.values.dtype

    @property
    def nnz(self):
        """Number of weight parameters (the length of ``values``)."""
        return int(self.values.size)

    @property
    def shape(self):
        """The shape of the equivalent ``W`` of a `SparseLinear`.

        Returns
        -------
        tuple of int
            ``(n_in, n_out)``.
        """
        return (self.n_in, self.n_out)

    def parameters(self):
        """``[values, b]`` by reference (what the optimizers update).

        Returns
        -------
        list of ndarray
            The two parameter arrays.
        """
        return [self.values, self.b]

    def release_index(self):
        """Nothing to release: the structure's index arrays are fixed (protocol method)."""

    def ensure_index(self):
        """Nothing to rebuild: the structure never changes (protocol method)."""

    def forward(self, xt, out):
        """``out = A @ xt + b`` for feature-major ``xt`` of shape (n_in, B).

        Parameters
        ----------
        xt : ndarray of shape (n_in, B)
            C-contiguous inputs of the layer's dtype.
        out : ndarray of shape (n_out, B)
            Preallocated output, overwritten.

        Returns
        -------
        ndarray
            ``out``.
        """
        self._saved = (weakref.ref(xt), self._forward(xt, out))
        out += self.b[:, None]
        return out

    def backward(self, xt, dyt, dw, db, dxt=None):
        """Gradient sums over the batch; optionally the delta for the layer below.

        Parameters
        ----------
        xt : ndarray of shape (n_in, B)
            Inputs of the forward pass.
        dyt : ndarray of shape (n_out, B)
            Loss derivative with respect to the pre-activation.
        dw : ndarray of shape (nnz,)
            Overwritten with the gradient of ``values``.
        db : ndarray of shape (n_out,)
            Overwritten with ``sum_b dy[:, b]``.
        dxt : ndarray of shape (n_in, B), optional
            If given, overwritten with ``A.T @ dyt`` (pre-update parameters).
        """
        saved = self._saved
        if saved is not None and saved[0]() is xt:  # the intermediates of this very input
            inter = saved[1]
        else:
            inter = self._forward(xt, np.empty((self.n_out, xt.shape[1]), self.dtype))
        self._saved = None
        self._backward(xt, dyt, dw, dxt, inter)
        np.sum(dyt, axis=1, out=db)

    # -- the trained structure ----------------------------------------------------------------
    def source(self):
        """The parameters in the approximation's own order (float64).

        Returns
        -------
        ndarray of shape (nnz,)
            ``values`` in the order of ``to_approximation()``'s arrays.
        """
        src = np.empty(self.nnz)
        if self._perm is None:
            src[:] = self.values
        else:
            src[self._perm] = self.values
        return src

    def to_approximation(self):
        """The trained structure as an `Approximation` (float64; exact for float32 values).

        Its ``budget`` and ``rel_error`` are those of the approximation the layer was built
        from (the error of the structure before training).

        Returns
        -------
        Approximation
            The approximation.
        """
        return self._approximation(self.source(), self._meta)

    def __repr__(self):
        return (f"{type(self).__name__}({self.n_in}, {self.n_out}, kind={self.kind!r}, "
                f"n_params={self.nnz:,}, dtype={self.dtype}, backend={self.kernels.name!r})")

    # subclasses implement these
    def _forward(self, xt, out):
        """Write ``A @ xt`` to out; return what the backward pass needs."""
        raise NotImplementedError

    def _backward(self, xt, dyt, dw, dxt, inter):
        raise NotImplementedError

    def _approximation(self, src, meta):
        raise NotImplementedError


@register_layer("low_rank")
class LowRankLayer(StructuredLayer):
    """``A = L R`` with dense factors L (m, r) and R (r, n): ``values = [L.ravel(), R.ravel()]``.

    Memory ``r (m + n)`` values; forward ``h = R x``, ``out = L h`` (BLAS), backward
    ``dL = dy h^T``, ``dR = (L^T dy) x^T``, ``dx = R^T (L^T dy)``.
    """

    kind = "low_rank"

    @classmethod
    def from_approximation(cls, approx, bias=None, *, dtype=np.float32, kernels="auto"):
        """The layer of a `LowRank` approximation (see `StructuredLayer.from_approximation`).

        Parameters
        ----------
        approx : LowRank
            The approximation.
        bias : array_like of shape (m,), optional
            Bias; zeros if omitted.
        dtype : {float32, float64}, default=float32
            Dtype.
        kernels : KernelSet or str, default="auto"
            Backend (unused: the products are dense).

        Returns
        -------
        LowRankLayer
            The layer.
        """
        layer = cls(approx, np.concatenate([approx.L.ravel(), approx.R.ravel()]), None, bias,
                    dtype=dtype, kernels=kernels)
        layer.rank = approx.rank
        m, n, r = layer.n_out, layer.n_in, layer.rank
        layer.L = layer.values[:m * r].reshape(m, r)
        layer.R = layer.values[m * r:].reshape(r, n)
        return layer

    def _forward(self, xt, out):
        h = self.R @ xt
        np.matmul(self.L, h, out=out)
        return h

    def _backward(self, xt, dyt, dw, dxt, h):
        m, n, r = self.n_out, self.n_in, self.rank
        g = self.L.T @ dyt
        np.matmul(dyt, h.T, out=dw[:m * r].reshape(m, r))
        np.matmul(g, xt.T, out=dw[m * r:].reshape(r, n))
        if dxt is not None:
            np.matmul(self.R.T, g, out=dxt)

    def _approximation(self, src, meta):
        m, r = self.n_out, self.rank
        return LowRank(src[:m * r].reshape(m, r), src[m * r:].reshape(r, self.n_in), **meta)


@register_layer("sparse_product")
class SparseProductLayer(StructuredLayer):
    """``A = S_1 S_2 ... S_K``: one layer holding K CSR factors, applied right to left.

    The factors' values are consecutive segments of ``values`` (factor 1 first), each in CSR
    order of ``S_i.T``; the patterns are fixed. Forward ``h_{K+1} = x``, ``h_i = S_i h_{i+1}``,
    ``out = h_1``; the backward pass walks back with the CSR kernels. It keeps the K - 1
    intermediate activations of the last forward pass (``p x B`` each) for the backward pass.
    """

    kind = "sparse_product"

    @classmethod
    def from_approximation(cls, approx, bias=None, *, dtype=np.float32, kernels="auto"):
        """The layer of a `SparseProduct` (see `StructuredLayer.from_approximation`).

        Parameters
        ----------
        approx : SparseProduct
            The approximation.
        bias : array_like of shape (m,), optional
            Bias; zeros if omitted.
        dtype : {float32, float64}, default=float32
            Dtype.
        kernels : KernelSet or str, default="auto"
            Kernel backend of the CSR factors.

        Returns
        -------
        SparseProductLayer
            The layer.
        """
        ks = _kernels.resolve(kernels)
        parts, start = [], 0
        for f in approx.factors:
            rows = np.repeat(np.arange(f.shape[0]), np.diff(f.indptr))
            parts.append(CSRPart(f.shape, rows, f.indices, np.arange(start, start + f.nnz), ks))
            start += f.nnz
        src = np.concatenate([f.data for f in approx.factors])
        layer = cls(approx, src, np.concatenate([p.src for p in parts]), bias, dtype=dtype,
                    kernels=ks)
        layer.parts = parts
        layer._patterns = [(f.indptr.copy(), f.indices.copy(), f.shape) for f in approx.factors]
        layer._offs = bind_parts(parts, layer.values)
        return layer

    def _forward(self, xt, out):
        hs = [xt]
        for p in reversed(self.parts[1:]):
            h = np.empty((p.shape[0], xt.shape[1]), self.dtype)
            p.forward(hs[-1], h)
            hs.append(h)
        self.parts[0].forward(hs[-1], out)
        return hs  # hs[j] is the input of factor K - j

    def _backward(self, xt, dyt, dw, dxt, hs):
        g, K, o = dyt, len(self.parts), self._offs
        for i, p in enumerate(self.parts):
            x_in = hs[K - 1 - i]
            if i == K - 1:
                p.backward(x_in, g, dw[o[i]:o[i + 1]], dxt)
            else:
                dh = np.empty_like(x_in)
                p.backward(x_in, g, dw[o[i]:o[i + 1]], dh)
                g = dh

    def _approximation(self, src, meta):
        facs, start = [], 0
        for (indptr, indices, shape) in self._patterns:
            nnz = indices.size
            facs.append(sp.csr_array((src[start:start + nnz], indices, indptr), shape=shape))
            start += nnz
        return SparseProduct(facs, **meta)
