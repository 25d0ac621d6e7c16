"""C emitters of SparseLinear layers: output-major CSR (gather), input-major CSR (scatter), unrolled."""

import re

import numpy as np
import scipy.sparse as sp

from ..nn.layers import SparseLinear
from ._emit import LayerEmitter, c_table, hex_literals, index_type, register_layer_emitter

__all__ = ["CSREmitter", "ScatterEmitter", "UnrolledEmitter"]

# outputs summed side by side in the csr loop: independent additions the CPU overlaps
_GROUP = 4
# unrolled mode: outputs per block (one local sum each), table entries per pointer rebase
_BLOCK = 12
_REBASE = 240


class _SparseLinearEmitter(LayerEmitter):
    """Shared part of the CSR and unrolled emitters: the layer's weights output by output."""

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        W = layer.W
        self.n_in, self.n_out = W.shape
        # gather form: row j of W.T lists output j's inputs in ascending order, the order in
        # which SparseLinear.forward sums them (then adds the bias)
        Wt = sp.csr_array(W.T)
        Wt.sort_indices()
        self.ptr = np.asarray(Wt.indptr, np.int64)
        self.idx = np.asarray(Wt.indices, np.int64)
        self.val = np.asarray(Wt.data).astype(ctype.dtype)
        self.bias = np.asarray(layer.b).astype(ctype.dtype)
        self.nnz = int(self.ptr[-1])
        self.n_params = self.nnz + self.n_out

    def _bias_lits(self):
        return hex_literals(self.bias, self.ct.suffix)


class CSREmitter(_SparseLinearEmitter):
    """Const value / index / pointer tables and a loop (any size)."""

    kind = "csr"

    def tables(self):
        T, n = self.ct.name, self.name
        lines = c_table(T, f"{n}_bias", self._bias_lits())
        if self.nnz:
            lines += c_table(T, f"{n}_val", hex_literals(self.val, self.ct.suffix))
            lines += c_table(index_type(self.n_in), f"{n}_idx",
                             [f"{i}u" for i in self.idx.tolist()], per_line=12)
            lines += c_table(index_type(self.nnz), f"{n}_ptr",
                             [f"{p}u" for p in self.ptr.tolist()], per_line=10)
        return lines

    def function(self):
        T, n, z = self.ct.name, self.name, self.ct.lit(0.0)
        head = [f"static void {n}(const {T} *restrict x, {T} *restrict y)", "{"]
        if not self.nnz:
            return head + ["    uint32_t j;", "    (void)x;",
                           f"    for (j = 0; j < {self.n_out}u; ++j)",
                           f"        y[j] = {z} + {n}_bias[j];", "}"]
        G, N = _GROUP, self.n_out
        g, full = range(G), N - N % G
        dot = f"{n}_val[k] * x[{n}_idx[k]]"
        lines = head + ["    uint32_t j, k;"]
        if full:
            lines += [
                "    uint32_t i, m, " + ", ".join(f"k{r}, e{r}" for r in g) + ";",
                f"    /* {G} outputs at a time: {G} independent sums, each in ascending input "
                "order */",
                f"    for (j = 0; j < {full}u; j += {G}) {{",
                f"        {T} {', '.join(f'a{r} = {z}' for r in g)};"]
            for r in g:
                lines += [f"        k{r} = {n}_ptr[j + {r}];", f"        e{r} = {n}_ptr[j + {r + 1}];"]
            lines.append("        m = e0 - k0;")
            for r in range(1, G):
                lines += [f"        if (e{r} - k{r} < m)", f"            m = e{r} - k{r};"]
            lines.append("        for (i = 0; i < m; ++i) {")
            lines += [f"            a{r} += {n}_val[k{r} + i] * x[{n}_idx[k{r} + i]];" for r in g]
            lines.append("        }")
            for r in g:
                lines += [f"        for (k = k{r} + m; k < e{r}; ++k)", f"            a{r} += {dot};"]
            lines += [f"        y[j + {r}] = a{r} + {n}_bias[j + {r}];" for r in g]
            lines.append("    }")
        if N > full:
            lines += [f"    for (j = {full}u; j < {N}u; ++j) {{", f"        {T} a = {z};",
                      f"        for (k = {n}_ptr[j]; k < {n}_ptr[j + 1]; ++k)",
                      f"            a += {dot};", f"        y[j] = a + {n}_bias[j];", "    }"]
        return lines + ["}"]


class ScatterEmitter(LayerEmitter):
    """Input-major CSR tables (the layer's own ``W``) and a loop that skips zero inputs.

    For each input ``i`` with ``x[i] != 0``, in ascending order, the loop adds
    ``W[i, j] * x[i]`` to every output ``j`` it feeds; then the bias. Each output therefore
    sums its nonzero terms in ascending input order starting from +0, then adds its bias:
    the same roundings as the output-major loop (a skipped term is a signed zero, which
    leaves a sum started at +0 unchanged), and as ``SparseLinear.forward``. Zero inputs
    (ReLU outputs, blank pixels) cost one comparison instead of a pass over their column.

    Parameters
    ----------
    layer : SparseLinear
        The layer.
    name : str
        C identifier prefix of its symbols.
    ctype : CType
        The exported floating type.
    """

    kind = "csr-scatter"

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        W = sp.csr_array(layer.W)
        W.sort_indices()
        self.n_in, self.n_out = W.shape
        self.ptr = np.asarray(W.indptr, np.int64)
        self.idx = np.asarray(W.indices, np.int64)
        self.val = np.asarray(W.data).astype(ctype.dtype)
        self.bias = np.asarray(layer.b).astype(ctype.dtype)
        self.nnz = int(self.ptr[-1])
        self.n_params = self.nnz + self.n_out

    def tables(self):
        T, n = self.ct.name, self.name
        lines = c_table(T, f"{n}_bias", hex_literals(self.bias, self.ct.suffix))
        if self.nnz:
            lines += c_table(T, f"{n}_val", hex_literals(self.val, self.ct.suffix))
            lines += c_table(index_type(self.n_out), f"{n}_idx",
                             [f"{i}u" for i in self.idx.tolist()], per_line=12)
            lines += c_table(index_type(self.nnz), f"{n}_ptr",
                             [f"{p}u" for p in self.ptr.tolist()], per_line=10)
        return lines

    def function(self):
        T, n, z = self.ct.name, self.name, self.ct.lit(0.0)
        lines = [f"static void {n}(const {T} *restrict x, {T} *restrict y)", "{",
                 *self.ct.zero(), "    uint32_t j;"]
        if not self.nnz:
            lines.append("    (void)x;")
        lines += [f"    for (j = 0; j < {self.n_out}u; ++j)", "        y[j] = zero;"]
        if self.nnz:
            lines += ["    {", "        uint32_t i, k;",
                      f"        for (i = 0; i < {self.n_in}u; ++i) {{",
                      f"            const {T} v = x[i];",
                      f"            if (v == {z})",
                      "                continue;",
                      f"            const uint32_t e = {n}_ptr[i + 1];",
                      f"            k = {n}_ptr[i];",
                      "            /* 4 at a time: a column's outputs are distinct, so the four "
                      "loads may precede the stores */",
                      "            for (; k + 4 <= e; k += 4) {",
                      *[f"                const uint32_t j{r} = {n}_idx[k + {r}];" for r in range(4)],
                      *[f"                const {T} s{r} = y[j{r}] + {n}_val[k + {r}] * v;"
                        for r in range(4)],
                      *[f"                y[j{r}] = s{r};" for r in range(4)],
                      "            }",
                      "            for (; k < e; ++k)",
                      f"                y[{n}_idx[k]] += {n}_val[k] * v;",
                      "        }", "    }"]
        return lines + [f"    for (j = 0; j < {self.n_out}u; ++j)",
                        f"        y[j] += {n}_bias[j];", "}"]


class UnrolledEmitter(_SparseLinearEmitter):
    """One statement per connection with constant indices; no index or pointer table.

    Outputs go in blocks of :data:`_BLOCK`, each summed in its own local variable; within a
    block the statements run over the inputs in ascending order, so every input is loaded
    once per block and every output still adds its terms in ascending input order (the
    order of ``SparseLinear.forward``, then the bias). The weights and biases are hex-float
    literals in one ``static const`` table, in statement order, read at small constant
    offsets from a pointer that is passed through a ``volatile`` local (once per
    :data:`_REBASE` entries). That keeps compilers from folding the weights back into
    immediates, which cost 2-3 instructions each on ARM (aarch64 ``mov``/``movk``/
    ``fmov``), against one load (or half an ``ldp``) from the table; the offsets stay within
    the immediate range of ARM's ``vldr`` (1020 bytes), and the table in read-only memory.
    """

    kind = "unrolled"

    def _program(self):
        """-> (statements, table values): one entry per connection and per bias."""
        z, W = self.ct.lit(0.0), sp.csr_array(self.layer.W)
        W.sort_indices()
        ip, ix = np.asarray(W.indptr), np.asarray(W.indices)
        data = np.asarray(W.data).astype(self.ct.dtype)
        stmts, vals, base = [], [], 0

        def emit(text, value):
            nonlocal base
            if len(vals) - base >= _REBASE:
                stmts.append(f"    wv = w + {len(vals) - base};")
                stmts.append("    w = wv;")
                base = len(vals)
            stmts.append(text.format(k=len(vals) - base))
            vals.append(value)

        for j0 in range(0, self.n_out, _BLOCK):
            j1 = min(self.n_out, j0 + _BLOCK)
            seen = set()
            for i in range(self.n_in):
                lo, hi = ip[i], ip[i + 1]
                ks = lo + np.flatnonzero((ix[lo:hi] >= j0) & (ix[lo:hi] < j1))
                for k in ks.tolist():
                    j = int(ix[k])
                    op = "+=" if j in seen else "="
                    seen.add(j)
                    emit(f"    a{j - j0} {op} w[{{k}}] * x[{i}];", data[k])
            for j in range(j0, j1):
                acc = f"a{j - j0}" if j in seen else z
                emit(f"    y[{j}] = {acc} + w[{{k}}];", self.bias[j])
        return stmts, np.array(vals, self.ct.dtype)

    def tables(self):
        self._stmts, vals = self._program()
        return c_table(self.ct.name, f"{self.name}_w", hex_literals(vals, self.ct.suffix))

    def function(self):
        T, n = self.ct.name, self.name
        if not hasattr(self, "_stmts"):
            self.tables()
        used = sorted({int(m) for m in re.findall(r"^    a(\d+) =", "\n".join(self._stmts), re.M)})
        body = [f"static void {n}(const {T} *x, {T} *y)", "{",
                f"    const {T} *volatile wv = {n}_w;", f"    const {T} *w = wv;"]
        if used:
            body.append(f"    {T} {', '.join(f'a{r}' for r in used)};")
        else:
            body.append("    (void)x;")
        return body + self._stmts + ["}"]


register_layer_emitter(SparseLinear, "csr", CSREmitter)
register_layer_emitter(SparseLinear, "unrolled", UnrolledEmitter)
register_layer_emitter(SparseLinear, "csr-scatter", ScatterEmitter)
