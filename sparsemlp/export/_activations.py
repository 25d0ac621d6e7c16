"""C versions of the activations of sparsemlp.functions, applied in place to an output array."""

import numpy as np

from ..nn.functions import ACTIVATIONS
from ._emit import ExportError, c_table, hex_literals

__all__ = ["emit_activation"]

# Each writes the loop applying the activation in place to y[0..n), after multiplying by
# ``scale`` (a literal or None): the inference rule of dropout_kind="original". The formulas
# repeat sparsemlp.functions operation by operation, in the exported type.

def _elementwise(expr, needs_math=False):
    def emit(act, ct, y, n, scale):
        lines = ["    {", "        uint32_t i;", f"        for (i = 0; i < {n}u; ++i) {{",
                 f"            const {ct.name} z = {y}[i]{' * ' + scale if scale else ''};",
                 f"            {y}[i] = {expr(act, ct)};", "        }", "    }"]
        return lines, needs_math
    return emit


def _softmax(act, ct, y, n, scale):
    T, z = ct.name, ct.lit(0.0)
    s = f" * {scale}" if scale else ""
    lines = ["    {", "        uint32_t i;", f"        {T} m, s = {z};"]
    if scale:
        lines += [f"        for (i = 0; i < {n}u; ++i)", f"            {y}[i] = {y}[i]{s};"]
    lines += [f"        m = {y}[0];",
              f"        for (i = 1; i < {n}u; ++i)",
              f"            if ({y}[i] > m)", f"                m = {y}[i];",
              f"        for (i = 0; i < {n}u; ++i) {{",
              f"            {y}[i] = {ct.exp}({y}[i] - m);", f"            s += {y}[i];",
              "        }",
              f"        for (i = 0; i < {n}u; ++i)", f"            {y}[i] /= s;", "    }"]
    return lines, True


def _srelu(act, ct, y, n, scale):
    # the unit's four values as tables; t_r = t_l + |d| rounded to the exported type, as
    # SReLU.forward computes it; then the pieces in the order of SReLU.forward (right first)
    t_l, a_l, d, a_r = (np.asarray(p, ct.dtype) for p in act.params)
    t_r = t_l + np.abs(d)
    T = ct.name
    lines = ["    {"]
    for name, v in (("tl", t_l), ("al", a_l), ("tr", t_r), ("ar", a_r)):
        lines += ["        " + x for x in c_table(T, name, hex_literals(v, ct.suffix))]
    lines += ["        uint32_t i;", f"        for (i = 0; i < {n}u; ++i) {{",
              f"            const {T} z = {y}[i]{' * ' + scale if scale else ''};",
              f"            {y}[i] = z >= tr[i] ? tr[i] + ar[i] * (z - tr[i])",
              "                   : (z <= tl[i] ? tl[i] + al[i] * (z - tl[i]) : z);",
              "        }", "    }"]
    return lines, False


_ACTIVATION_EMITTERS = {
    ACTIVATIONS["identity"]: None,  # nothing to do (the scale, if any, is still applied)
    ACTIVATIONS["relu"]: _elementwise(lambda a, ct: f"z < {ct.lit(0)} ? {ct.lit(0)} : z"),
    ACTIVATIONS["leaky_relu"]: _elementwise(
        lambda a, ct: f"z >= {ct.lit(0)} ? z : z * {ct.lit(a.alpha)}"),
    ACTIVATIONS["sigmoid"]: _elementwise(
        lambda a, ct: f"{ct.lit(1)} / ({ct.lit(1)} + {ct.exp}(-z))", needs_math=True),
    ACTIVATIONS["tanh"]: _elementwise(lambda a, ct: f"{ct.tanh}(z)", needs_math=True),
    ACTIVATIONS["softmax"]: _softmax,
    ACTIVATIONS["srelu"]: _srelu,  # per-unit parameters as tables in the block
}


def emit_activation(act, ct, y, n, scale=None):
    """Lines applying activation ``act`` in place to ``y[0..n)``, after ``y *= scale``.

    Parameters
    ----------
    act : Activation
        An activation of :data:`sparsemlp.functions.ACTIVATIONS` (matched by exact class).
    ct : CType
        Exported type.
    y : str
        C expression of the array.
    n : int
        Its length.
    scale : str, optional
        C literal multiplying every pre-activation first.

    Returns
    -------
    lines : list of str
        Source lines (a block statement, or nothing).
    needs_math : bool
        Whether ``<math.h>`` is used.

    Raises
    ------
    ExportError
        If the activation has no C version.
    """
    if type(act) not in _ACTIVATION_EMITTERS:
        raise ExportError(f"activation {type(act).__name__} ({getattr(act, 'name', '?')!r}) "
                          "has no C version in sparsemlp.export; add one to "
                          "sparsemlp/export/_activations.py.")
    emit = _ACTIVATION_EMITTERS[type(act)]
    if emit is None:
        if not scale:
            return [], False
        emit = _elementwise(lambda a, ct: "z")
    return emit(act, ct, y, n, scale)
