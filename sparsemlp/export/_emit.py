"""C emitters: number literals, tables, and one pluggable emitter per layer kind and mode."""

import re

import numpy as np
import scipy.sparse as sp

from ..nn.layers import SparseLinear

__all__ = ["ExportError", "CType", "LayerEmitter", "register_layer_emitter", "layer_emitter",
           "hex_literals", "c_table", "UNROLLED_MAX_NNZ"]

#: Largest number of connections (over all layers) the ``unrolled`` mode accepts: beyond it
#: the generated source passes ~10 MB and compilers take minutes; use ``mode="csr"``.
UNROLLED_MAX_NNZ = 50_000


class ExportError(ValueError):
    """A model, option or toolchain cannot give a C export (CLI exit code 2)."""


class CType:
    """The C floating type of an export: name, literal suffix, libm functions.

    Parameters
    ----------
    dtype : {"float32", "float64"}
        NumPy dtype of the exported values.
    """

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype == np.float32:
            self.name, self.suffix, self.exp, self.tanh = "float", "f", "expf", "tanhf"
        elif self.dtype == np.float64:
            self.name, self.suffix, self.exp, self.tanh = "double", "", "exp", "tanh"
        else:
            raise ExportError(f"dtype must be float32 or float64. Got {dtype!r}.")

    def lit(self, value):
        """One C literal of this type for ``value`` (rounded to the type first).

        Parameters
        ----------
        value : float
            The value.

        Returns
        -------
        str
            A hex-float literal.
        """
        return hex_literals(np.asarray([value], self.dtype), self.suffix)[0]


_HEX = re.compile(r"^(-?0x[01])\.?([0-9a-f]*?)0*p([+-]\d+)$")


def hex_literals(values, suffix=""):
    """C99 hex-float literals (``%a``) that read back to exactly ``values``.

    Parameters
    ----------
    values : ndarray of float32 or float64
        Finite values.
    suffix : str, default=""
        ``"f"`` for float literals.

    Returns
    -------
    list of str
        One literal per value, e.g. ``-0x1.8p-2f``; trailing zero digits dropped, as C's
        ``printf("%a")`` does.

    Raises
    ------
    ExportError
        If a value is NaN or infinite (a C literal cannot hold it).
    """
    values = np.asarray(values)
    if not np.isfinite(values).all():
        raise ExportError("the model holds NaN or infinite values, which a C literal cannot "
                          "hold. Export a checkpoint from before the divergence.")
    out = []
    for v in values.astype(np.float64).tolist():
        m = _HEX.match(v.hex())
        head, frac, exp = m.groups()
        out.append(f"{head}{'.' + frac if frac else ''}p{exp}{suffix}")
    return out


def c_table(ctype, name, items, per_line=6, qualifier="static const"):
    """Lines defining a constant C array.

    Parameters
    ----------
    ctype : str
        Element type.
    name : str
        Array name.
    items : list of str
        Initializers (at least one).
    per_line : int, default=6
        Items per source line.
    qualifier : str, default="static const"
        Storage and qualifiers.

    Returns
    -------
    list of str
        Source lines.
    """
    lines = [f"{qualifier} {ctype} {name}[{len(items)}] = {{"]
    for s in range(0, len(items), per_line):
        lines.append("    " + ", ".join(items[s:s + per_line]) + ",")
    lines.append("};")
    return lines


def index_type(n):
    """The smallest of uint16_t / uint32_t holding ``0..n``.

    Parameters
    ----------
    n : int
        Largest value to hold.

    Returns
    -------
    str
        C type name.
    """
    if n < 1 << 16:
        return "uint16_t"
    if n < 1 << 32:
        return "uint32_t"
    raise ExportError(f"a layer with {n} inputs or connections does not fit 32-bit C indices.")


# outputs summed side by side in the csr loop: independent additions the CPU overlaps
_GROUP = 4
# unrolled mode: outputs per block (one local sum each), table entries per pointer rebase
_BLOCK = 12
_REBASE = 240


class LayerEmitter:
    """C for one layer kind: a linear map ``y = f(x) + b`` (pre-activation, bias included).

    Subclass it for a new layer kind and register it with :func:`register_layer_emitter`;
    the code generator calls :meth:`tables` (file-scope constants) and :meth:`function` (a
    ``static void NAME(const T *restrict x, T *restrict y)`` writing all ``n_out`` outputs),
    and needs the attributes below.

    Parameters
    ----------
    layer : object
        The layer (here a :class:`~sparsemlp.SparseLinear`).
    name : str
        C identifier prefix for this layer's symbols (e.g. ``net_l0``).
    ctype : CType
        The exported floating type.

    Attributes
    ----------
    n_in, n_out : int
        Input and output sizes.
    n_params : int
        Stored parameters (connections + biases), for the header summary.
    kind : str
        Short description (``"csr"``, ``"unrolled"``).
    """

    kind = "abstract"

    def __init__(self, layer, name, ctype):
        self.layer, self.name, self.ct = layer, name, ctype
        self.n_in = self.n_out = self.n_params = 0

    def tables(self):
        """File-scope definitions (constant tables) of this layer.

        Returns
        -------
        list of str
            Source lines.
        """
        return []

    def function(self):
        """The layer's ``static void`` function computing ``y`` from ``x``.

        Returns
        -------
        list of str
            Source lines.
        """
        raise NotImplementedError


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


_LAYER_EMITTERS = {}


def register_layer_emitter(layer_cls, mode, emitter_cls):
    """Make ``emitter_cls`` write C for layers of class ``layer_cls`` in ``mode``.

    Parameters
    ----------
    layer_cls : type
        Layer class (matched exactly, not by subclass: a subclass may compute otherwise).
    mode : str
        Export mode (``"csr"``, ``"unrolled"`` or a new one).
    emitter_cls : type
        A :class:`LayerEmitter` subclass.
    """
    _LAYER_EMITTERS[(layer_cls, mode)] = emitter_cls


def layer_emitter(layer, mode, name, ctype):
    """The emitter of ``layer`` in ``mode``.

    Parameters
    ----------
    layer : object
        A model layer.
    mode : str
        Export mode.
    name : str
        C symbol prefix of the layer.
    ctype : CType
        Exported floating type.

    Returns
    -------
    LayerEmitter
        The emitter.

    Raises
    ------
    ExportError
        If no emitter is registered for the layer's class and mode.
    """
    cls = _LAYER_EMITTERS.get((type(layer), mode))
    if cls is None:
        modes = sorted(m for (c, m) in _LAYER_EMITTERS if c is type(layer))
        hint = (f"Use mode {' or '.join(repr(m) for m in modes)}." if modes else
                "This layer kind cannot be exported to C yet.")
        raise ExportError(f"no C emitter for a {type(layer).__name__} layer in mode {mode!r}. "
                          f"{hint}")
    return cls(layer, name, ctype)


register_layer_emitter(SparseLinear, "csr", CSREmitter)
register_layer_emitter(SparseLinear, "unrolled", UnrolledEmitter)
