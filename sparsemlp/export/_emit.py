"""C emitters: number literals, tables, the layer-emitter protocol and its registry."""

import re

import numpy as np

__all__ = ["ExportError", "CType", "LayerEmitter", "register_layer_emitter", "layer_emitter",
           "has_layer_emitter",
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

    def zero(self, indent="    "):
        """Declarations of ``zero``: +0 read once from a ``volatile`` local.

        A loop storing a constant zero, or a sum started at a constant zero that may have no
        terms, is turned into a ``memset`` call by clang (gcc may do the same) once it is long
        enough; the export would then need the C library, not only libm. The compiler cannot
        assume the value read from a ``volatile`` is zero, so such loops stay loops; the
        results are the same bits (the value is +0).

        Parameters
        ----------
        indent : str, default="    "
            Leading white space of the two lines.

        Returns
        -------
        list of str
            Two declarations (they go first in a block).
        """
        return [f"{indent}volatile {self.name} zv = {self.lit(0.0)};  /* read once: zeroing loops "
                "stay loops (no memset, libm only) */", f"{indent}const {self.name} zero = zv;"]


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


class LayerEmitter:
    """C for one layer kind: a linear map ``y = f(x) + b`` (pre-activation, bias included).

    Subclass it for a new layer kind and register it with :func:`register_layer_emitter`;
    the code generator calls :meth:`tables` (file-scope constants) and :meth:`function` (a
    ``static void NAME(const T *restrict x, T *restrict y)`` writing all ``n_out`` outputs;
    with ``work > 0``, ``NAME(x, y, T *restrict w)`` where ``w`` holds ``work`` values of
    the caller's scratch), and needs the attributes below.

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
    nnz : int
        Weight parameters (connections of a CSR layer), counted in the export's total.
    work : int
        Scratch values the layer function needs for intermediates (0: none).
    """

    kind = "abstract"
    work = 0

    def __init__(self, layer, name, ctype):
        self.layer, self.name, self.ct = layer, name, ctype
        self.n_in = self.n_out = self.n_params = self.nnz = 0

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


def has_layer_emitter(layer, mode):
    """Whether an emitter is registered for ``layer``'s class in ``mode``.

    Parameters
    ----------
    layer : object
        A model layer.
    mode : str
        Export mode or emitter key.

    Returns
    -------
    bool
        True if :func:`layer_emitter` would find one.
    """
    return (type(layer), mode) in _LAYER_EMITTERS


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


