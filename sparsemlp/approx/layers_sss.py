"""Trainable sequentially semiseparable layer: generators as CSR parts and a vectorised state recursion."""

import numpy as np

from .. import _kernels
from .base import register_layer
from .layers import StructuredLayer
from .parts import CSRPart, bind_parts, block_entries
from .realisation import offsets
from .semiseparable import _GENERATORS, Semiseparable, _shapes

__all__ = ["SSSLayer"]



@register_layer("sss")
class SSSLayer(StructuredLayer):
    """A `Semiseparable` matrix as a trainable layer (``out = A @ x + b``).

    With ``S = sum_k d_k`` causal and ``T = sum_k e_k`` anticausal state entries, the
    block-diagonal generators are five fixed-pattern CSR parts: ``D`` (m x n), ``B`` (S x n:
    ``B_k`` maps input block k to state k + 1), ``C`` (m x S), ``F`` (T x n), ``G`` (m x T). The
    transitions ``A_k`` and ``E_k`` are small dense blocks. The forward pass is

    * ``X = B u`` (all input contributions at once), then for k = 1 .. K - 2:
      ``x_{k+1} += A_k x_k``; ``Z = F u``, then for k = K - 2 .. 1: ``z_k += E_k z_{k+1}``;
    * ``out = D u + C X + G Z``,

    vectorised over the batch: the recursions are K - 2 small matrix products each, the rest
    is CSR kernels. The backward pass runs the adjoint recursions the other way
    (``lambda_k = C_k^T dy_k + A_k^T lambda_{k+1}``, ``dA_k = lambda_{k+1} x_k^T``;
    ``mu_{k+1} = G_k^T dy_k + E_k^T mu_k``, ``dE_k = mu_k z_{k+1}^T``) and takes the gradients
    of D, B, C, F, G from the CSR kernels. ``values`` holds the D, B, C, F and G parts in CSR
    order, then every ``A_k`` and every ``E_k`` (row-major). The states of the last forward
    pass (``(S + T) x B``) are kept for the backward pass.
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
        ro, co, so, to = offsets(outs), offsets(ins), offsets(cd), offsets(ad)
        src = np.concatenate([approx.flat[g] for g in _GENERATORS])
        goff = dict(zip(_GENERATORS, offsets([approx.flat[g].size for g in _GENERATORS])))
        shapes = _shapes(ins, outs, cd, ad)
        boff = {}  # generator -> start of each stage's block in the source vector
        for gi, g in enumerate(_GENERATORS):
            sizes = [int(np.prod(shapes[k][gi])) for k in range(K)]
            boff[g] = goff[g] + offsets(sizes)
        S, T = int(so[-1]), int(to[-1])
        place = {  # generator -> (shape of its matrix, per-stage (row0, col0, p, q, src0))
            "D": ((m, n), [(ro[k], co[k], outs[k], ins[k], boff["D"][k]) for k in range(K)]),
            "B": ((S, n), [(so[k + 1], co[k], cd[k + 1], ins[k], boff["B"][k]) for k in range(K)]),
            "C": ((m, S), [(ro[k], so[k], outs[k], cd[k], boff["C"][k]) for k in range(K)]),
            "F": ((T, n), [(to[k], co[k], ad[k], ins[k], boff["F"][k]) for k in range(K)]),
            "G": ((m, T), [(ro[k], to[k + 1], outs[k], ad[k + 1], boff["G"][k]) for k in range(K)]),
        }
        parts = {g: CSRPart(shape, *block_entries(blocks), ks) for g, (shape, blocks) in place.items()}
        dense = [np.arange(goff[g], goff[g] + approx.flat[g].size) for g in ("A", "E")]
        perm = np.concatenate([parts[g].src for g in "DBCFG"] + dense)
        layer = cls(approx, src, perm, bias, dtype=dtype, kernels=ks)
        layer.parts = parts
        offs = bind_parts([parts[g] for g in "DBCFG"], layer.values)
        layer._seg = dict(zip("DBCFG", zip(offs[:-1], offs[1:])))
        a0 = offs[-1]
        e0 = a0 + approx.flat["A"].size
        layer._seg["A"], layer._seg["E"] = (a0, e0), (e0, layer.nnz)
        layer._dims = (ins, outs, cd, ad)
        layer._so, layer._to, layer._S, layer._T = so, to, S, T
        # stages whose transition maps a non-empty state to a non-empty state
        layer._csteps = [k for k in range(K) if cd[k] and cd[k + 1]]
        layer._asteps = [k for k in range(K) if ad[k] and ad[k + 1]]
        aoff = boff["A"] - goff["A"]
        eoff = boff["E"] - goff["E"]
        layer._A = [(k, layer.values[a0 + aoff[k]:a0 + aoff[k + 1]].reshape(cd[k + 1], cd[k]))
                    for k in layer._csteps]
        layer._E = [(k, layer.values[e0 + eoff[k]:e0 + eoff[k + 1]].reshape(ad[k], ad[k + 1]))
                    for k in layer._asteps]
        layer._aoff, layer._eoff = aoff, eoff
        return layer

    def _forward(self, xt, out):
        p, so, to = self.parts, self._so, self._to
        B = xt.shape[1]
        p["D"].forward(xt, out)
        X = np.empty((self._S, B), self.dtype)
        Z = np.empty((self._T, B), self.dtype)
        tmp = np.empty_like(out)
        if self._S:
            p["B"].forward(xt, X)
            for k, A in self._A:
                X[so[k + 1]:so[k + 2]] += A @ X[so[k]:so[k + 1]]
            p["C"].forward(X, tmp)
            out += tmp
        if self._T:
            p["F"].forward(xt, Z)
            for k, E in reversed(self._E):
                Z[to[k]:to[k + 1]] += E @ Z[to[k + 1]:to[k + 2]]
            p["G"].forward(Z, tmp)
            out += tmp
        return X, Z

    def _backward(self, xt, dyt, dw, dxt, states):
        X, Z = states
        p, so, to, seg = self.parts, self._so, self._to, self._seg
        _, _, cd, ad = self._dims
        B = xt.shape[1]
        p["D"].backward(xt, dyt, dw[slice(*seg["D"])], dxt)
        tmp = None if dxt is None else np.empty_like(dxt)
        if self._S:
            lam = np.empty((self._S, B), self.dtype)
            p["C"].backward(X, dyt, dw[slice(*seg["C"])], lam)
            a0 = seg["A"][0] + self._aoff
            for k, A in reversed(self._A):
                lam_next = lam[so[k + 1]:so[k + 2]]
                x_k = X[so[k]:so[k + 1]]
                np.matmul(lam_next, x_k.T, out=dw[a0[k]:a0[k + 1]].reshape(cd[k + 1], cd[k]))
                lam[so[k]:so[k + 1]] += A.T @ lam_next
            p["B"].backward(xt, lam, dw[slice(*seg["B"])], tmp)
            if dxt is not None:
                dxt += tmp
        if self._T:
            mu = np.empty((self._T, B), self.dtype)
            p["G"].backward(Z, dyt, dw[slice(*seg["G"])], mu)
            e0 = seg["E"][0] + self._eoff
            for k, E in self._E:
                mu_k = mu[to[k]:to[k + 1]]
                z_next = Z[to[k + 1]:to[k + 2]]
                np.matmul(mu_k, z_next.T, out=dw[e0[k]:e0[k + 1]].reshape(ad[k], ad[k + 1]))
                mu[to[k + 1]:to[k + 2]] += E.T @ mu_k
            p["F"].backward(xt, mu, dw[slice(*seg["F"])], tmp)
            if dxt is not None:
                dxt += tmp

    def _approximation(self, src, meta):
        sizes = [0] + [int(self.to_flat_size(g)) for g in _GENERATORS]
        o = np.cumsum(sizes)
        flat = {g: src[o[i]:o[i + 1]] for i, g in enumerate(_GENERATORS)}
        return Semiseparable(*self._dims, flat, **meta)

    def to_flat_size(self, g):
        """Number of values of generator ``g`` (one of ``"DABCEFG"``) over all stages.

        Parameters
        ----------
        g : str
            Generator name.

        Returns
        -------
        int
            The count.
        """
        ins, outs, cd, ad = self._dims
        gi = _GENERATORS.index(g)
        return sum(int(np.prod(s[gi])) for s in _shapes(ins, outs, cd, ad))
