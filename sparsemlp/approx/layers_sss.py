"""Trainable sequentially semiseparable layer: CSR generator parts, state recursions as log-depth scans."""

import math

import numpy as np

from .. import _kernels
from .base import register_layer
from .layers import StructuredLayer
from .parts import CSRPart, bind_parts, block_entries
from .realisation import offsets
from .semiseparable import _GENERATORS, Semiseparable, _shapes

__all__ = ["SSSLayer", "affine_scan"]


def affine_scan(T, c, reverse=False):
    """``c[k] <- T[k] @ c[k - 1] + c[k]`` for k = 1 .. K - 1, in place, in about 3 sqrt(K) steps.

    The linear recursion of the states, in chunks of ``h = ceil(sqrt(K))`` stages: the
    recursion runs inside every chunk at once (h batched products, with the products ``Q`` of
    the chunk's transitions so far), then from chunk to chunk on the chunks' last states (K / h
    small products), then each chunk adds ``Q @`` (the previous chunk's last state) in one
    batched product. Same sums as the sequential recursion up to rounding, with about
    ``3 sqrt(K)`` NumPy calls instead of K. With ``reverse``,
    ``c[k] <- T[k] @ c[k + 1] + c[k]`` for k = K - 2 .. 0 instead.

    Parameters
    ----------
    T : ndarray of shape (K, D, D)
        Transitions (``T[0]``, or ``T[K - 1]`` with ``reverse``, is not used).
    c : ndarray of shape (K, D, B)
        Inputs, overwritten with the states.
    reverse : bool, default=False
        Run the recursion from the last stage to the first.

    Returns
    -------
    ndarray
        ``c``.
    """
    K, D, B = c.shape
    h = max(1, math.isqrt(K - 1) + 1) if K > 1 else 1
    nc = -(-K // h)
    Tp = np.zeros((nc * h, D, D), c.dtype)  # stages past K: zero transitions, zero inputs
    cp = np.zeros((nc * h, D, B), c.dtype)
    Tp[:K], cp[:K] = (T[::-1], c[::-1]) if reverse else (T, c)
    T4, c4 = Tp.reshape(nc, h, D, D), cp.reshape(nc, h, D, B)
    Q = np.empty_like(T4)  # Q[j, i] = T[start_j + i] ... T[start_j]
    Q[:, 0] = T4[:, 0]
    for i in range(1, h):
        c4[:, i] += np.matmul(T4[:, i], c4[:, i - 1])
        np.matmul(T4[:, i], Q[:, i - 1], out=Q[:, i])
    for j in range(1, nc):  # the last state of every chunk, chunk after chunk
        c4[j, h - 1] += Q[j, h - 1] @ c4[j - 1, h - 1]
    if nc > 1:
        c4[1:, :h - 1] += np.matmul(Q[1:, :h - 1], c4[:-1, h - 1:])
    if reverse:
        c[...] = cp[:K][::-1]
    else:
        c[...] = cp[:K]
    return c


@register_layer("sss")
class SSSLayer(StructuredLayer):
    """A `Semiseparable` matrix as a trainable layer (``out = A @ x + b``).

    The causal states ``y_j = x_{j+1}`` (j = 0 .. K - 1) are stored zero-padded to
    ``D = max d_k`` rows each, a ``(K D) x B`` array, and the anticausal states ``z_k`` to
    ``E = max e_k`` rows. The block-diagonal generators are five fixed-pattern CSR parts
    on these layouts: ``D`` (m x n), ``B`` (K D x n: ``B_k`` writes ``y_k``), ``C`` (m x K D:
    ``C_k`` reads ``y_{k-1}``), ``F`` (K E x n) and ``G`` (m x K E: ``G_k`` reads
    ``z_{k+1}``). The transitions ``A_k`` and ``E_k`` are zero-padded into ``K x D x D`` and
    ``K x E x E`` stacks. The forward pass is

    * ``Y = B u``, then ``y_k += A_k y_{k-1}`` for every k (`affine_scan`); ``Z = F u``, then
      ``z_k += E_k z_{k+1}`` (the same scan over the reversed stages);
    * ``out = D u + C Y + G Z``,

    so that a step costs the CSR products plus ``O(log K)`` batched small matrix products,
    whatever the number of stages. The backward pass runs the adjoint recursions as scans the
    other way (``lambda_k = C_{k+1}^T dy_{k+1} + A_{k+1}^T lambda_{k+1}`` for ``y_k``,
    ``dA_k = lambda_k y_{k-1}^T``; ``mu_k = G_{k-1}^T dy_{k-1} + E_{k-1}^T mu_{k-1}`` for
    ``z_k``, ``dE_k = mu_k z_{k+1}^T``) and takes the gradients of D, B, C, F and G from the
    CSR kernels. ``values`` holds the D, B, C, F and G parts in CSR order, then every ``A_k``
    and every ``E_k`` (row-major). The states of the last forward pass (``K (D + E) x B``) are
    kept for the backward pass.
    """

    kind = "sss"

    @classmethod
    def from_approximation(cls, approx, bias=None, *, dtype=np.float32, kernels="auto"):
        """The layer of a `Semiseparable` approximation (see `StructuredLayer.from_approximation`).

        Parameters
        ----------
        approx : Semiseparable
            The approximation.
        bias : array_like of shape (m,), optional
            Bias; zeros if omitted.
        dtype : {float32, float64}, default=float32
            Dtype.
        kernels : KernelSet or str, default="auto"
            Kernel backend of the CSR parts.

        Returns
        -------
        SSSLayer
            The layer.
        """
        ks = _kernels.resolve(kernels)
        ins, outs = approx.in_sizes, approx.out_sizes
        cd, ad = approx.causal_dims, approx.anticausal_dims
        K = len(ins)
        m, n = approx.shape
        Dm, Em = int(cd.max()), int(ad.max())
        ro, co = offsets(outs), offsets(ins)
        src = np.concatenate([approx.flat[g] for g in _GENERATORS])
        goff = dict(zip(_GENERATORS, offsets([approx.flat[g].size for g in _GENERATORS])))
        shapes = _shapes(ins, outs, cd, ad)
        boff = {}  # generator -> start of each stage's block in the source vector
        for gi, g in enumerate(_GENERATORS):
            boff[g] = goff[g] + offsets([int(np.prod(shapes[k][gi])) for k in range(K)])
        st = range(K)
        place = {  # generator -> (shape of its matrix, per-stage (row0, col0, p, q, src0))
            "D": ((m, n), [(ro[k], co[k], outs[k], ins[k], boff["D"][k]) for k in st]),
            "B": ((K * Dm, n), [(k * Dm, co[k], cd[k + 1], ins[k], boff["B"][k]) for k in st]),
            "C": ((m, K * Dm), [(ro[k], (k - 1) * Dm, outs[k], cd[k], boff["C"][k]) for k in st]),
            "F": ((K * Em, n), [(k * Em, co[k], ad[k], ins[k], boff["F"][k]) for k in st]),
            "G": ((m, K * Em), [(ro[k], (k + 1) * Em, outs[k], ad[k + 1], boff["G"][k])
                                for k in st]),
        }
        parts = {g: CSRPart(shape, *block_entries(b), ks) for g, (shape, b) in place.items()}
        dense = [np.arange(goff[g], goff[g] + approx.flat[g].size) for g in ("A", "E")]
        perm = np.concatenate([parts[g].src for g in "DBCFG"] + dense)
        layer = cls(approx, src, perm, bias, dtype=dtype, kernels=ks)
        layer.parts = parts
        offs = bind_parts([parts[g] for g in "DBCFG"], layer.values)
        layer._seg = dict(zip("DBCFG", zip(offs[:-1], offs[1:])))
        layer._dims, layer._K, layer._D, layer._E = (ins, outs, cd, ad), K, Dm, Em
        # where A_k and E_k go in the padded stacks: flat destination, position in values
        a0, e0 = offs[-1], offs[-1] + approx.flat["A"].size  # A, then E, after the parts
        rows, cols, s = block_entries([(k * Dm, 0, cd[k + 1], cd[k], boff["A"][k]) for k in st])
        layer._a = (rows * Dm + cols, a0 - goff["A"] + s)
        rows, cols, s = block_entries([(k * Em, 0, ad[k], ad[k + 1], boff["E"][k]) for k in st])
        layer._e = (rows * Em + cols, e0 - goff["E"] + s)
        return layer

    def _stack(self, where, size):
        T = np.zeros((self._K, size, size), self.dtype)
        T.reshape(-1)[where[0]] = self.values[where[1]]
        return T

    def _forward(self, xt, out):
        p, K, B = self.parts, self._K, xt.shape[1]
        p["D"].forward(xt, out)
        Y = np.empty((K * self._D, B), self.dtype)
        Z = np.empty((K * self._E, B), self.dtype)
        tmp = np.empty_like(out)
        Ta = Te = None
        if self._D:
            Ta = self._stack(self._a, self._D)
            p["B"].forward(xt, Y)
            affine_scan(Ta, Y.reshape(K, self._D, B))
            p["C"].forward(Y, tmp)
            out += tmp
        if self._E:
            Te = self._stack(self._e, self._E)
            p["F"].forward(xt, Z)
            affine_scan(Te, Z.reshape(K, self._E, B), reverse=True)
            p["G"].forward(Z, tmp)
            out += tmp
        return Y, Z, Ta, Te

    def _backward(self, xt, dyt, dw, dxt, saved):
        Y, Z, Ta, Te = saved
        p, seg, K, B = self.parts, self._seg, self._K, xt.shape[1]
        p["D"].backward(xt, dyt, dw[slice(*seg["D"])], dxt)
        tmp = None if dxt is None else np.empty_like(dxt)
        for key, size, states, T, gen, into in (("C", self._D, Y, Ta, self._a, "B"),
                                                ("G", self._E, Z, Te, self._e, "F")):
            if not size:
                continue
            lam = np.empty_like(states)
            p[key].backward(states, dyt, dw[slice(*seg[key])], lam)
            L3, S3 = lam.reshape(K, size, B), states.reshape(K, size, B)
            adj = np.zeros_like(T)  # transposed transitions of the adjoint recursion
            if key == "C":  # lambda_j += A_{j+1}^T lambda_{j+1}: from the last stage
                adj[:-1] = T[1:].transpose(0, 2, 1)
                affine_scan(adj, L3, reverse=True)
                dT = np.matmul(L3[1:], S3[:-1].transpose(0, 2, 1))  # dA_k, k = 1 .. K - 1
                first = 1
            else:  # mu_k += E_{k-1}^T mu_{k-1}: a scan in stage order
                adj[1:] = T[:-1].transpose(0, 2, 1)
                affine_scan(adj, L3)
                dT = np.matmul(L3[:-1], S3[1:].transpose(0, 2, 1))  # dE_k, k = 0 .. K - 2
                first = 0
            full = np.zeros_like(T)
            full[first:first + K - 1] = dT
            dw[gen[1]] = full.reshape(-1)[gen[0]]
            p[into].backward(xt, lam, dw[slice(*seg[into])], tmp)
            if dxt is not None:
                dxt += tmp

    def _approximation(self, src, meta):
        ins, outs, cd, ad = self._dims
        shapes = _shapes(ins, outs, cd, ad)
        o = offsets([sum(int(np.prod(s[gi])) for s in shapes) for gi in range(len(_GENERATORS))])
        flat = {g: src[o[i]:o[i + 1]] for i, g in enumerate(_GENERATORS)}
        return Semiseparable(*self._dims, flat, **meta)
