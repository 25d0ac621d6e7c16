"""C emitters of the structured layers of sparsemlp.approx: low rank, products of sparse factors, SSS."""

import numpy as np
import scipy.sparse as sp

from ..approx.layers import LowRankLayer, SparseProductLayer
from ..approx.layers_sss import SSSLayer
from ._emit import LayerEmitter, c_table, hex_literals, register_layer_emitter

__all__ = ["LowRankEmitter", "SparseProductEmitter", "SSSEmitter"]


class _StructuredEmitter(LayerEmitter):
    """Shared part: the trained structure (``to_approximation``: float64 copies of the
    layer's values, exact), the bias, tables that are never empty, a dense mat-vec helper."""

    kind = "structured"

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        self.approx = layer.to_approximation()
        self.n_in, self.n_out = layer.n_in, layer.n_out
        self.nnz = int(layer.nnz)
        self.n_params = self.nnz + self.n_out
        self.bias = np.asarray(layer.b).astype(ctype.dtype)

    def _values(self, name, values):
        """A constant table of values in the exported type (one 0 if there are none)."""
        v = np.asarray(values, np.float64).ravel().astype(self.ct.dtype)
        return c_table(self.ct.name, f"{self.name}_{name}",
                       hex_literals(v, self.ct.suffix) if v.size else [self.ct.lit(0.0)])

    def _ints(self, name, values, per_line=12):
        v = [f"{int(i)}u" for i in np.asarray(values).ravel().tolist()] or ["0u"]
        return c_table("uint32_t", f"{self.name}_{name}", v, per_line=per_line)

    def _bias_lines(self):
        return [f"    for (j = 0; j < {self.n_out}u; ++j)", f"        y[j] += {self.name}_bias[j];"]

    def _mv(self):
        """``y[i] (+)= sum_j M[i c + j] x[j]``: every row's sum in four interleaved partial sums
        (j mod 4: independent additions the CPU overlaps), combined pairwise, then the tail."""
        T, n, z = self.ct.name, self.name, "zero"  # a zero clang cannot see: no memset for c = 0
        return [f"static void {n}_mv(const {T} *restrict M, uint32_t r, uint32_t c, "
                f"const {T} *restrict x, {T} *restrict y, int add)", "{", *self.ct.zero(),
                "    uint32_t i, j;", "    for (i = 0; i < r; ++i) {",
                f"        const {T} *row = M + (size_t)i * c;",
                f"        {T} a0 = {z}, a1 = {z}, a2 = {z}, a3 = {z};",
                "        for (j = 0; j + 4 <= c; j += 4) {",
                "            a0 += row[j] * x[j];", "            a1 += row[j + 1] * x[j + 1];",
                "            a2 += row[j + 2] * x[j + 2];", "            a3 += row[j + 3] * x[j + 3];",
                "        }", "        a0 = (a0 + a1) + (a2 + a3);",
                "        for (; j < c; ++j)", "            a0 += row[j] * x[j];",
                "        y[i] = add ? y[i] + a0 : a0;", "    }", "}", ""]

    def _mvt(self):
        """``y[i] += sum_j M[i, j] x[j]`` from ``Mt`` = M transposed (row-major ``c x r``):
        column by column, so that a short reduction (a state of a few values) becomes
        independent updates of the long output."""
        T, n = self.ct.name, self.name
        return [f"static void {n}_mvt(const {T} *restrict Mt, uint32_t r, uint32_t c, "
                f"const {T} *restrict x, {T} *restrict y)", "{",
                "    uint32_t i, j;", "    for (j = 0; j < c; ++j) {",
                f"        const {T} v = x[j];", f"        const {T} *col = Mt + (size_t)j * r;",
                "        for (i = 0; i < r; ++i)", "            y[i] += col[i] * v;", "    }", "}",
                ""]

    def _head(self):
        T = self.ct.name
        return [f"static void {self.name}(const {T} *restrict x, {T} *restrict y, "
                f"{T} *restrict w)", "{", "    uint32_t j;"]


class LowRankEmitter(_StructuredEmitter):
    """``y = L (R x) + b`` with dense factors L (m x r) and R (r x n): ``r (m + n)`` multiply-adds.

    Parameters
    ----------
    layer : LowRankLayer
        The layer.
    name : str
        C identifier prefix of its symbols.
    ctype : CType
        The exported floating type.
    """

    kind = "low-rank"

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        self.rank = int(self.approx.R.shape[0])
        self.work = max(1, self.rank)

    def tables(self):
        return (self._values("bias", self.bias) + self._values("R", self.approx.R)
                + self._values("Lt", self.approx.L.T))

    def function(self):
        T, n, r, m, z = self.ct.name, self.name, self.rank, self.n_out, "zero"
        return self._mv() + self._head() + [
            *self.ct.zero(), "    uint32_t t;",
            f"    {n}_mv({n}_R, {r}u, {self.n_in}u, x, w, 0);  /* h = R x (rank {r}) */",
            f"    for (j = 0; j < {m}u; ++j)  /* y = L h, column by column of L */",
            f"        y[j] = {z};",
            f"    for (t = 0; t < {r}u; ++t) {{", f"        const {T} v = w[t];",
            f"        for (j = 0; j < {m}u; ++j)",
            f"            y[j] += {n}_Lt[(size_t)t * {m}u + j] * v;", "    }",
            *self._bias_lines(), "}"]


class SparseProductEmitter(_StructuredEmitter):
    """``y = S_1 (S_2 (... (S_K x))) + b``: one CSR mat-vec per factor, the last factor first.

    Each factor is held in its own CSR (rows = its outputs) and each of its rows sums its
    terms in ascending column order, as the layer's CSR kernels do; intermediates alternate
    between two halves of the workspace.

    Parameters
    ----------
    layer : SparseProductLayer
        The layer.
    name : str
        C identifier prefix of its symbols.
    ctype : CType
        The exported floating type.
    """

    kind = "sparse-product"

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        self.factors = []
        for f in self.approx.factors:
            f = sp.csr_array(f)
            f.sort_indices()
            self.factors.append(f)
        self.half = max([f.shape[0] for f in self.factors[1:]], default=0)
        self.work = max(1, 2 * self.half)

    def tables(self):
        lines = self._values("bias", self.bias)
        for i, f in enumerate(self.factors):
            lines += self._values(f"f{i}_val", f.data)
            lines += self._ints(f"f{i}_idx", f.indices)
            lines += self._ints(f"f{i}_ptr", f.indptr, per_line=10)
        return lines

    def function(self):
        T, n, z = self.ct.name, self.name, self.ct.lit(0.0)
        helper = [f"static void {n}_sp(uint32_t rows, const uint32_t *ptr, const uint32_t *idx, "
                  f"const {T} *val, const {T} *restrict x, {T} *restrict y)", "{",
                  "    uint32_t i, k;", "    for (i = 0; i < rows; ++i) {",
                  f"        {T} a = {z};", "        for (k = ptr[i]; k < ptr[i + 1]; ++k)",
                  "            a += val[k] * x[idx[k]];", "        y[i] = a;", "    }", "}", ""]
        body, src = [], "x"
        K = len(self.factors)
        for step, i in enumerate(range(K - 1, -1, -1)):
            dst = "y" if i == 0 else ("w" if step % 2 == 0 else f"w + {self.half}")
            body.append(f"    {n}_sp({self.factors[i].shape[0]}u, {n}_f{i}_ptr, {n}_f{i}_idx, "
                        f"{n}_f{i}_val, {src}, {dst});  /* factor {i + 1} of {K} */")
            src = dst
        return helper + self._head() + ["    (void)w;"] + body + self._bias_lines() + ["}"]


class SSSEmitter(_StructuredEmitter):
    """The sequentially semiseparable recursion, stage by stage (Dewilde & van der Veen 1998).

    For k = 0 .. K-1: ``y_k = D_k u_k + C_k x_k``, ``x_{k+1} = A_k x_k + B_k u_k``; then for
    k = K-1 .. 0: ``y_k += G_k z_{k+1}``, ``z_k = E_k z_{k+1} + F_k u_k``; then the bias. The
    generators are the approximation's row-major blocks, the states live in the workspace
    (two causal and two anticausal buffers of the largest state dimension), and a product
    with a vector costs one multiply-add per parameter.

    Parameters
    ----------
    layer : SSSLayer
        The layer.
    name : str
        C identifier prefix of its symbols.
    ctype : CType
        The exported floating type.
    """

    kind = "sss"

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        a = self.approx
        self.K = len(a.in_sizes)
        self.Dm, self.Em = int(a.causal_dims.max()), int(a.anticausal_dims.max())
        self.work = max(1, 2 * (self.Dm + self.Em))

    def _offsets(self):
        """Start of every stage's block in each generator's flat array."""
        a = self.approx
        ins, outs, cd, ad = a.in_sizes, a.out_sizes, a.causal_dims, a.anticausal_dims
        sizes = {"D": outs * ins, "A": cd[1:] * cd[:-1], "B": cd[1:] * ins, "C": outs * cd[:-1],
                 "E": ad[:-1] * ad[1:], "F": ad[:-1] * ins, "G": outs * ad[1:]}
        return {g: np.concatenate([[0], np.cumsum(s)[:-1]]) for g, s in sizes.items()}

    def tables(self):
        a = self.approx
        lines = self._values("bias", self.bias)
        for g in "DABEF":
            lines += self._values(g, a.flat[g])
        for g in "CG":  # read column by column (_mvt): every stage's block transposed
            blocks = [b.T.ravel() for b in getattr(a, g)]
            lines += self._values(f"{g}t", np.concatenate(blocks) if blocks else [])
        for g, o in self._offsets().items():
            lines += self._ints(f"o{g}", o)
        lines += self._ints("ins", a.in_sizes) + self._ints("outs", a.out_sizes)
        lines += self._ints("io", np.concatenate([[0], np.cumsum(a.in_sizes)[:-1]]))
        lines += self._ints("oo", np.concatenate([[0], np.cumsum(a.out_sizes)[:-1]]))
        return lines + self._ints("cd", a.causal_dims) + self._ints("ad", a.anticausal_dims)

    def function(self):
        T, n, Dm, Em = self.ct.name, self.name, self.Dm, self.Em
        mv = f"{n}_mv"
        return self._mv() + self._mvt() + self._head() + [
            f"    {T} *xs = w, *xn = w + {Dm}, *zs = w + {2 * Dm}, *zn = w + {2 * Dm + Em}, *t;",
            "    uint32_t k;",
            f"    for (k = 0; k < {self.K}u; ++k) {{  /* causal: x_k in xs, x_(k+1) into xn */",
            f"        const {T} *u = x + {n}_io[k];", f"        {T} *yk = y + {n}_oo[k];",
            f"        {mv}({n}_D + {n}_oD[k], {n}_outs[k], {n}_ins[k], u, yk, 0);",
            f"        {n}_mvt({n}_Ct + {n}_oC[k], {n}_outs[k], {n}_cd[k], xs, yk);",
            f"        {mv}({n}_A + {n}_oA[k], {n}_cd[k + 1], {n}_cd[k], xs, xn, 0);",
            f"        {mv}({n}_B + {n}_oB[k], {n}_cd[k + 1], {n}_ins[k], u, xn, 1);",
            "        t = xs;", "        xs = xn;", "        xn = t;", "    }",
            f"    for (k = {self.K}u; k-- > 0;) {{  /* anticausal: z_(k+1) in zs, z_k into zn */",
            f"        const {T} *u = x + {n}_io[k];", f"        {T} *yk = y + {n}_oo[k];",
            f"        {n}_mvt({n}_Gt + {n}_oG[k], {n}_outs[k], {n}_ad[k + 1], zs, yk);",
            f"        {mv}({n}_E + {n}_oE[k], {n}_ad[k], {n}_ad[k + 1], zs, zn, 0);",
            f"        {mv}({n}_F + {n}_oF[k], {n}_ad[k], {n}_ins[k], u, zn, 1);",
            "        t = zs;", "        zs = zn;", "        zn = t;", "    }",
            *self._bias_lines(), "}"]


register_layer_emitter(LowRankLayer, "csr", LowRankEmitter)
register_layer_emitter(SparseProductLayer, "csr", SparseProductEmitter)
register_layer_emitter(SSSLayer, "csr", SSSEmitter)
