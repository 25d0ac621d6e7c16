"""Trainable hierarchical low-rank (HODLR, HEDLR, H-matrix) and Toeplitz-like layers."""

import numpy as np
import scipy.fft

from .. import _kernels
from .base import register_layer
from .displacement import ToeplitzLike
from .layers import StructuredLayer
from .parts import CSRPart, bind_parts, block_entries

__all__ = ["BlockLowRankLayer", "ToeplitzLikeLayer"]


@register_layer("block_low_rank", "hodlr", "hedlr", "hmatrix")
class BlockLowRankLayer(StructuredLayer):
    """A `BlockLowRank` matrix (HODLR, HEDLR, H-matrix) as a trainable layer.

    With R the sum of the ranks of the low-rank leaves, the leaves' factors form two sparse
    matrices of fixed pattern, ``V`` (R x n: leaf ``(r0, r1, c0, c1)``'s rank rows over its
    columns) and ``U`` (m x R: its rows over its rank columns), and the dense leaves a third,
    ``S`` (m x n), so that ``A = U V + S``. The forward pass is ``h = V x``,
    ``out = U h + S x``, all by the CSR kernels, whatever the number of leaves; ``values``
    holds the V, U and S parts in CSR order. The ``R x B`` activations ``h`` of the last
    forward pass are kept for the backward pass.
    """

    kind = "block_low_rank"

    @classmethod
    def from_approximation(cls, approx, bias=None, *, dtype=np.float32, kernels="auto"):
        """The layer of a `BlockLowRank` approximation (see `StructuredLayer.from_approximation`).

        Parameters
        ----------
        approx : BlockLowRank
            The approximation (``HODLR``, ``HEDLR`` or ``HMatrix``).
        bias : array_like of shape (m,), optional
            Bias; zeros if omitted.
        dtype : {float32, float64}, default=float32
            Dtype.
        kernels : KernelSet or str, default="auto"
            Kernel backend of the CSR parts.

        Returns
        -------
        BlockLowRankLayer
            The layer.
        """
        ks = _kernels.resolve(kernels)
        m, n = approx.shape
        u_blocks, v_blocks, s_blocks = [], [], []
        off = rk = 0
        for a, b, c, d, r in approx.blocks:
            p, q = int(b - a), int(d - c)
            if r == -1:
                s_blocks.append((a, c, p, q, off))
                off += p * q
            else:
                u_blocks.append((a, rk, p, r, off))
                v_blocks.append((rk, c, r, q, off + p * r))
                off += r * (p + q)
                rk += r
        parts = [CSRPart((rk, n), *block_entries(v_blocks), ks),
                 CSRPart((m, rk), *block_entries(u_blocks), ks),
                 CSRPart((m, n), *block_entries(s_blocks), ks)]
        layer = cls(approx, approx.values, np.concatenate([p.src for p in parts]), bias,
                    dtype=dtype, kernels=ks)
        layer.kind = approx.kind
        layer._cls, layer._blocks = type(approx), approx.blocks.copy()
        layer.parts = parts
        layer._offs = bind_parts(parts, layer.values)
        layer._rank = rk
        return layer

    def _forward(self, xt, out):
        pv, pu, ps = self.parts
        h = np.empty((self._rank, xt.shape[1]), self.dtype)
        if self._rank:
            pv.forward(xt, h)
            pu.forward(h, out)
            if ps.nnz:
                tmp = np.empty_like(out)
                ps.forward(xt, tmp)
                out += tmp
        else:
            ps.forward(xt, out)
        return h

    def _backward(self, xt, dyt, dw, dxt, h):
        (pv, pu, ps), o = self.parts, self._offs
        if self._rank:
            gh = np.empty_like(h)
            pu.backward(h, dyt, dw[o[1]:o[2]], gh)
            pv.backward(xt, gh, dw[o[0]:o[1]], dxt)
            if ps.nnz:
                tmp = None if dxt is None else np.empty_like(dxt)
                ps.backward(xt, dyt, dw[o[2]:o[3]], tmp)
                if dxt is not None:
                    dxt += tmp
        else:
            ps.backward(xt, dyt, dw[o[2]:o[3]], dxt)

    def _approximation(self, src, meta):
        return self._cls(self.shape[::-1], self._blocks, src, **meta)


def _generator_scale(n):
    """The power of two nearest sqrt(n): the factor between a layer's and its approximation's generators."""
    return 2.0 ** round(np.log2(n) / 2)


@register_layer("toeplitz_like")
class ToeplitzLikeLayer(StructuredLayer):
    """A `ToeplitzLike` matrix ``A = 1/2 sum_i Z_1(g_i) Z_-1(J h_i)`` as a trainable layer.

    ``Z_f(v) x`` is the first n entries of the linear convolution ``c = v * x`` plus f times
    the next n - 1 (the wrapped part), so every product is a real FFT convolution of length at
    least 2n - 1: forward ``w_i = fold_-(v_i * x)`` with ``v_i = J h_i``, then
    ``out = 1/2 fold_+(sum_i g_i * w_i)``; the gradients are the matching cross-correlations
    (``dg_i = 1/2 corr(fold_+^T dy, w_i)``, ``dv_i = corr(fold_-^T dw_i, x)``), summed over
    the batch in the Fourier domain. Work ``O(r B n log n)`` per pass. The spectra of the last
    forward pass (``r x n x B`` complex values) are kept for the backward pass.

    *Scaled generators.* ``values`` is ``s [G.ravel(), H.ravel()]`` (both n x r) with
    ``s = 2^round(log2(n) / 2)`` (about sqrt(n); a power of two, so the scaling is exact and
    checkpoints reload the same bits), and the products use ``c = 1 / (2 s^2)`` in place of 1/2:
    the same matrix. In the approximation's own generators one entry moves a whole circulant
    diagonal (n weights), and the largest eigenvalue of the layer's Gauss-Newton matrix
    ``J^T J`` (J: the Jacobian of the dense matrix with respect to the parameters) grows with n
    (35 at n = 32, 650 at n = 256 for weights of a dense layer's scale, where a dense layer has
    1): a learning rate that trains the other layers made a wide Toeplitz-like layer diverge.
    In the scaled generators it stays O(1) for every n, and SGD and Adam need no per-layer
    learning rate (`tests/test_approx_toeplitz_training.py`).
    """

    kind = "toeplitz_like"

    @classmethod
    def from_approximation(cls, approx, bias=None, *, dtype=np.float32, kernels="auto"):
        """The layer of a `ToeplitzLike` approximation (see `StructuredLayer.from_approximation`).

        Parameters
        ----------
        approx : ToeplitzLike
            The approximation.
        bias : array_like of shape (n,), optional
            Bias; zeros if omitted.
        dtype : {float32, float64}, default=float32
            Dtype.
        kernels : KernelSet or str, default="auto"
            Backend (unused: the products are FFTs).

        Returns
        -------
        ToeplitzLikeLayer
            The layer.
        """
        n, r = approx.G.shape
        scale = _generator_scale(n)
        layer = cls(approx, scale * np.concatenate([approx.G.ravel(), approx.H.ravel()]), None,
                    bias, dtype=dtype, kernels=kernels)
        layer.rank, layer.scale = r, scale
        layer._c = 0.5 / scale**2  # A = c sum_i Z_1(g'_i) Z_-1(J h'_i) in the stored generators
        layer.G = layer.values[:n * r].reshape(n, r)
        layer.H = layer.values[n * r:].reshape(n, r)
        layer._N = scipy.fft.next_fast_len(2 * n - 1, real=True)
        return layer

    def _forward(self, xt, out):
        # signals along the last axis (contiguous FFTs): x is (B, n), per-generator arrays (r, B, .)
        n, N = self.n_in, self._N
        Gf = scipy.fft.rfft(self.G.T, N)  # (r, F): spectra of g_i
        Vf = scipy.fft.rfft(self.H[::-1].T, N)  # of v_i = J h_i
        Xf = scipy.fft.rfft(xt.T, N)  # (B, F)
        c = scipy.fft.irfft(Vf[:, None] * Xf[None], N)  # (r, B, N): v_i * x
        w = c[..., :n]
        w[..., :n - 1] -= c[..., n:2 * n - 1]  # fold with f = -1
        Wf = scipy.fft.rfft(w, N)
        cy = scipy.fft.irfft(np.einsum("rf,rbf->bf", Gf, Wf), N)  # (B, N)
        y = cy[:, :n]
        y[:, :n - 1] += cy[:, n:2 * n - 1]  # fold with f = 1
        np.multiply(y.T, self._c, out=out)
        return Gf, Vf, Xf, Wf

    def _backward(self, xt, dyt, dw, dxt, spectra):
        Gf, Vf, Xf, Wf = spectra
        n, N, r = self.n_in, self._N, self.rank
        gc = np.zeros((dyt.shape[1], N), self.dtype)  # fold_+ transposed, times c
        gc[:, :n] = dyt.T
        gc[:, n:2 * n - 1] = dyt[:n - 1].T
        gc *= self._c
        GCf = scipy.fft.rfft(gc)  # (B, F)
        dg = scipy.fft.irfft(np.einsum("rbf,bf->rf", Wf.conj(), GCf), N)[:, :n]  # (r, n)
        dw[:n * r].reshape(n, r)[:] = dg.T
        lam = scipy.fft.irfft(GCf[None] * Gf.conj()[:, None], N)  # (r, B, N)
        lam[..., n:2 * n - 1] = -lam[..., :n - 1]  # fold_- transposed
        lam[..., 2 * n - 1:] = 0.0
        Lf = scipy.fft.rfft(lam)
        dv = scipy.fft.irfft(np.einsum("rbf,bf->rf", Lf, Xf.conj()), N)[:, :n]
        dw[n * r:].reshape(n, r)[:] = dv[:, ::-1].T
        if dxt is not None:
            dxt[:] = scipy.fft.irfft(np.einsum("rbf,rf->bf", Lf, Vf.conj()), N)[:, :n].T

    def _approximation(self, src, meta):
        n, r = self.n_in, self.rank
        src = src / self.scale  # a power of two: exact
        return ToeplitzLike(src[:n * r].reshape(n, r), src[n * r:].reshape(n, r), **meta)
