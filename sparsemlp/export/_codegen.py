"""Code generation: a SparseMLP or SparseRBM as one C99 header and source, no allocation, no state."""

import dataclasses
import keyword
import os
import re

import numpy as np

from .._version import __version__
from ..nn.functions import make_activation
from ..nn.mlp import SparseMLP
from ..rbm import SparseRBM
from . import _emit_approx, _emit_blocks, _emit_csr  # noqa: F401 - register the layer emitters
from ._emit import UNROLLED_MAX_NNZ, CType, ExportError, has_layer_emitter, layer_emitter
from ._text import c_header, c_source

__all__ = ["to_c", "InputScaling", "CExport"]

MODES = ("csr", "unrolled")
LAYOUTS = ("auto", "gather", "scatter")
_C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while _Bool _Complex _Imaginary""".split())


@dataclasses.dataclass
class InputScaling:
    """Feature scaling the exported C applies to raw inputs, as ``sparsemlp.data.normalize`` does.

    Feature i becomes ``(in[i] - shift[i]) / scale[i]``, computed in double and rounded to
    the exported type, then clipped to ``clip`` if given: operation for operation what the
    package does to a data set before the model sees it.

    Attributes
    ----------
    shift, scale : ndarray of shape (n_features,)
        Per-feature statistics (float64; ``scale > 0``).
    clip : tuple of float, optional
        ``(low, high)`` applied after scaling (binary RBMs clip test data to [0, 1]).
    description : str, default=""
        One line for the header, e.g. ``"z-score statistics of the digits training split"``.
    """

    shift: np.ndarray
    scale: np.ndarray
    clip: tuple = None
    description: str = ""

    def apply(self, X, dtype):
        """Scale raw samples in NumPy exactly as the exported C does.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Raw features.
        dtype : dtype
            Type of the result (the exported type).

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            Scaled features.
        """
        out = ((np.asarray(X, np.float64) - self.shift) / self.scale).astype(dtype)
        if self.clip is not None:
            np.clip(out, self.clip[0], self.clip[1], out=out)
        return out


@dataclasses.dataclass
class CExport:
    """What :func:`to_c` wrote: paths, entry points and sizes.

    Attributes
    ----------
    header, source : str
        Paths of ``<prefix>.h`` and ``<prefix>.c``.
    prefix, mode, ctype : str
        Symbol prefix, export mode and C floating type (``"float"`` or ``"double"``).
    entry : str
        Main function: ``<prefix>_predict`` (MLP) or ``<prefix>_hidden_probs`` (RBM).
    logits : str
        Function writing the output layer's pre-activations (``<prefix>_logits``, or
        ``<prefix>_hidden_logits`` for an RBM).
    in_size, out_size, scratch_size : int
        Values of the size macros.
    nnz : int
        Connections over all layers.
    needs_libm : bool
        Whether the code calls ``<math.h>`` functions (link with ``-lm``).
    """

    header: str
    source: str
    prefix: str
    mode: str
    ctype: str
    entry: str
    logits: str
    in_size: int
    out_size: int
    scratch_size: int
    nnz: int
    needs_libm: bool


def _describe(model):
    """-> (kind, [(layer, activation, scale or None)], dropout note)."""
    if isinstance(model, SparseRBM):
        return "rbm", [(model.layer, make_activation("sigmoid"), None)], ""
    if isinstance(model, SparseMLP):
        keep = None
        note = ""
        if model.dropout_kind == "original" and model.dropout > 0:
            keep = 1.0 - model.dropout
            note = (f"dropout_kind='original' at rate {model.dropout:g}: the pre-activations of "
                    f"every layer after the first are multiplied by {keep:g} (inference rule).")
        return "mlp", [(la, act, keep if i > 0 else None) for i, (la, act) in
                       enumerate(zip(model.layers, model.activations))], note
    inner = _fitted_model(model)
    if inner is not None:
        return _describe(inner)
    raise ExportError(f"to_c exports a SparseMLP or SparseRBM (or a fitted estimator holding "
                      f"one). Got {type(model).__name__}.")


def _fitted_model(est):
    """The model inside a fitted SparseMLPClassifier (``model_``) or SparseBernoulliRBM
    (``rbm_``), or None."""
    for name in ("model_", "rbm_"):
        inner = getattr(est, name, None)
        if isinstance(inner, (SparseMLP, SparseRBM)):
            return inner
    return None


def _check_prefix(prefix):
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix) \
            or prefix in _C_KEYWORDS or keyword.iskeyword(prefix) or prefix.startswith("__"):
        raise ExportError(f"prefix must be a C identifier (letters, digits, '_', not starting "
                          f"with a digit, not a keyword). Got {prefix!r}; try 'net'.")
    return prefix


def _scratch_plan(layers, n_in, scaled):
    """Sizes of the two ping-pong buffers A and B: inputs scaled into A, hidden layer l
    writes B when l is even and A when l is odd, the last layer writes ``out``."""
    a = [n_in] if scaled else []
    b = []
    for i, la in enumerate(layers[:-1]):
        (b if i % 2 == 0 else a).append(la.n_out)
    return max(a, default=0), max(b, default=0)


def to_c(model, out_dir, prefix="net", mode="csr", dtype="float32", *, input_scaling=None,
         labels=None, source=None, layout="auto"):
    """Write a trained network as standalone C99: ``<prefix>.h`` and ``<prefix>.c``.

    The C code holds every weight as a hex-float literal (the exact bits of the model in
    float32, or of its values rounded once to ``dtype``), uses only ``<stddef.h>``,
    ``<stdint.h>`` and, for exp/tanh activations, ``<math.h>``; it allocates nothing and has
    no mutable global state. The header documents the API, the input and the output.

    Parameters
    ----------
    model : SparseMLP or SparseRBM
        The network (or a fitted ``SparseMLPClassifier`` / ``SparseBernoulliRBM``). A
        SparseMLP gives ``<prefix>_predict`` (the output layer's activations, as
        :meth:`SparseMLP.forward` in inference: softmax probabilities, sigmoid outputs...)
        and ``<prefix>_logits`` (the output layer's pre-activations); a SparseRBM gives
        ``<prefix>_hidden_probs`` (``p(h = 1 | v)``) and ``<prefix>_hidden_logits``. Each has
        a ``_batch`` form.
    out_dir : str or path-like
        Directory (created if needed).
    prefix : str, default="net"
        File names and symbol prefix; a C identifier.
    mode : {"csr", "unrolled"}, default="csr"
        ``csr``: constant value, index and pointer tables and a loop (any size).
        ``unrolled``: one statement per connection with constant indices (up to
        :data:`UNROLLED_MAX_NNZ` connections; smaller and faster for small nets).
    dtype : {"float32", "float64"}, default="float32"
        C type of weights, activations and the API (``float`` or ``double``). A float64
        model exported as float32 has its values rounded once to float32.
    input_scaling : InputScaling, optional
        Scaling the C code applies to raw features first (as the training run did); without
        it the functions take the features the model takes.
    labels : sequence, optional
        Class label of each output, written into the header's documentation (default: a
        fitted classifier's ``classes_``).
    source : str, optional
        Where the model came from (a run or checkpoint path), for the header.
    layout : {"auto", "gather", "scatter"}, default="auto"
        Loop of the ``csr`` mode's sparse layers. ``gather``: output-major tables, each
        output sums its inputs (four outputs side by side). ``scatter``: input-major tables,
        each nonzero input adds into the outputs it feeds, and zero inputs are skipped.
        ``auto``: scatter for layers fed by a ReLU (about half their inputs are zero),
        gather otherwise. All give the same bits.

    Returns
    -------
    CExport
        Paths, function names and sizes.

    Raises
    ------
    ExportError
        For an unknown mode or dtype, a bad prefix, NaN/inf values, an input scaling of the
        wrong length, a layer or activation without a C version, or an unrolled export
        above :data:`UNROLLED_MAX_NNZ` connections.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from sparsemlp import SparseMLP
    >>> from sparsemlp.export import to_c
    >>> m = SparseMLP.erdos_renyi([8, 6, 3], epsilon=2, rng=np.random.default_rng(0))
    >>> ex = to_c(m, tempfile.mkdtemp(), prefix="tiny")
    >>> ex.entry, ex.in_size, ex.out_size
    ('tiny_predict', 8, 3)
    """
    prefix = _check_prefix(prefix)
    if mode not in MODES:
        raise ExportError(f"mode must be one of {', '.join(MODES)}. Got {mode!r}.")
    if layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {', '.join(LAYOUTS)}. Got {layout!r}.")
    try:
        ct = CType(dtype)
    except TypeError:
        raise ExportError(f"dtype must be float32 or float64. Got {dtype!r}.") from None
    kind, stack, dropout_note = _describe(model)
    if labels is None and kind == "mlp" and hasattr(model, "classes_"):
        labels = list(model.classes_)  # a fitted SparseMLPClassifier: outputs follow classes_
    if input_scaling is None and getattr(model, "out_of_range", None) == "clip":
        n = stack[0][0].n_in  # SparseBernoulliRBM(out_of_range="clip") clips X to [0, 1]
        input_scaling = InputScaling(np.zeros(n), np.ones(n), (0.0, 1.0),
                                     "none; values clipped to [0, 1] (out_of_range='clip')")
    layers = [la for la, _, _ in stack]
    emitters = [layer_emitter(la, _layer_mode(mode, layout, stack, i), f"{prefix}_l{i}", ct)
                for i, la in enumerate(layers)]
    nnz = sum(getattr(e, "nnz", 0) for e in emitters)
    if mode == "unrolled" and nnz > UNROLLED_MAX_NNZ:
        raise ExportError(f"mode 'unrolled' takes at most {UNROLLED_MAX_NNZ:,} connections; this "
                          f"model has {nnz:,}. Use mode 'csr' (the default).")
    n_in, n_out = emitters[0].n_in, emitters[-1].n_out
    if input_scaling is not None:
        for name in ("shift", "scale"):
            v = np.asarray(getattr(input_scaling, name), np.float64)
            if v.shape != (n_in,) or not np.isfinite(v).all():
                raise ExportError(f"input_scaling.{name} must hold {n_in} finite values (one per "
                                  f"model input). Got shape {v.shape}.")
        if not (np.asarray(input_scaling.scale) > 0).all():
            raise ExportError("input_scaling.scale must be positive.")
    size_a, size_b = _scratch_plan(layers, n_in, input_scaling is not None)
    work = max(getattr(e, "work", 0) for e in emitters)  # layer workspaces, after A and B
    spec = dict(prefix=prefix, kind=kind, mode=mode, ct=ct, stack=stack, emitters=emitters,
                n_in=n_in, n_out=n_out, size_a=size_a, size_ab=size_a + size_b,
                scratch=max(1, size_a + size_b + work), nnz=nnz,
                scaling=input_scaling, labels=labels, source=source, dropout_note=dropout_note,
                names=_entry_names(prefix, kind), version=__version__,
                rounded=any(np.dtype(getattr(la, "dtype", ct.dtype)).itemsize > ct.dtype.itemsize
                            for la in layers))
    c_lines, needs_math = c_source(spec)
    os.makedirs(out_dir, exist_ok=True)
    h_path = os.path.join(os.fspath(out_dir), f"{prefix}.h")
    c_path = os.path.join(os.fspath(out_dir), f"{prefix}.c")
    _write(h_path, c_header(spec))
    _write(c_path, c_lines)
    return CExport(header=h_path, source=c_path, prefix=prefix, mode=mode, ctype=ct.name,
                   entry=spec["names"]["main"], logits=spec["names"]["logits"], in_size=n_in,
                   out_size=n_out, scratch_size=spec["scratch"], nnz=nnz, needs_libm=needs_math)


def _layer_mode(mode, layout, stack, i):
    """Emitter key of layer ``i``: the mode, or ``csr-scatter`` where the layout asks for it
    and the layer kind has a scatter emitter."""
    if mode != "csr" or layout == "gather":
        return mode
    fed_by_relu = i > 0 and stack[i - 1][1].name == "relu"
    if (layout == "scatter" or fed_by_relu) and has_layer_emitter(stack[i][0], "csr-scatter"):
        return "csr-scatter"
    return mode


def _entry_names(prefix, kind):
    main = f"{prefix}_predict" if kind == "mlp" else f"{prefix}_hidden_probs"
    logits = f"{prefix}_logits" if kind == "mlp" else f"{prefix}_hidden_logits"
    return {"main": main, "logits": logits}


def _write(path, lines):
    with open(path, "w", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")
