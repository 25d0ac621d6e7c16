"""The text of an export: the documented header and the C source (tables, layers, API)."""

from ..nn.functions import make_activation
from ._activations import emit_activation
from ._emit import c_table, hex_literals

_OUTPUTS = {
    "softmax": "class probabilities (softmax; they sum to 1)",
    "sigmoid": "sigmoid outputs in [0, 1]",
    "identity": "raw outputs (identity output activation)",
    "tanh": "tanh outputs in [-1, 1]",
    "relu": "ReLU outputs",
    "leaky_relu": "leaky-ReLU outputs",
}


def _wrap(text, width=92, indent=" * "):
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width - len(indent):
            lines.append(indent + cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(indent + cur)
    return lines


def _input_doc(spec):
    n, T, sc = spec["n_in"], spec["ct"].name, spec["scaling"]
    if sc is None:
        return (f"in[{n}]: one sample of {n} {T} features, in the order and the scaling the "
                "model was trained on (a run's features after its --normalize step; this export "
                "does not scale them).")
    how = (f"in[{n}]: one sample of {n} RAW {T} features (e.g. pixel values as stored in the "
           "data set), in the data set's order. The code scales them first, as the training "
           f"run did: x[i] = (in[i] - shift[i]) / scale[i] in double, rounded to {T}")
    how += (f", then clipped to [{sc.clip[0]:g}, {sc.clip[1]:g}]." if sc.clip else ".")
    if sc.description:
        how += f" shift and scale: {sc.description}."
    return how


def _output_doc(spec):
    n, names, act = spec["n_out"], spec["names"], spec["stack"][-1][1]
    if spec["kind"] == "rbm":
        text = (f"{names['main']}: out[{n}] = p(h_j = 1 | v), the hidden-unit probabilities "
                f"sigmoid(v W + b_hidden) (the RBM's features). {names['logits']}: out[{n}] = "
                "v W + b_hidden.")
    else:
        what = _OUTPUTS.get(act.name, f"{act.name} outputs")
        text = (f"{names['main']}: out[{n}] = {what}, the output of SparseMLP.forward at "
                f"inference. {names['logits']}: out[{n}] = the output layer's pre-activations "
                "(logits), before the output activation; argmax is the same.")
    labels = spec["labels"]
    if labels is not None and spec["kind"] == "mlp":
        shown = ", ".join(str(x) for x in list(labels)[:20])
        more = ", ..." if len(labels) > 20 else ""
        text += f" Output k is the class with label: {shown}{more} (k = 0, 1, ...)."
    return text


def c_header(spec):
    """Lines of ``<prefix>.h``: what the net is, its input and output, the API.

    Parameters
    ----------
    spec : dict
        The export description built by :func:`sparsemlp.export.to_c`.

    Returns
    -------
    list of str
        Source lines.
    """
    p, P, T = spec["prefix"], spec["prefix"].upper(), spec["ct"].name
    names, em = spec["names"], spec["emitters"]
    sizes = [em[0].n_in] + [e.n_out for e in em]
    model = ("SparseRBM (visible " + str(sizes[0]) + ", hidden " + str(sizes[1]) + ")"
             if spec["kind"] == "rbm" else f"SparseMLP {sizes}")
    acts = ", ".join(a.name for _, a, _ in spec["stack"])
    lines = [f"/* {p}.h: a {model} as C99 code, written by sparsemlp {spec['version']} "
             "(python -m sparsemlp.export).", " *"]
    summary = (f"Mode {spec['mode']}, type {T}, {spec['nnz']} connections, activations [{acts}]. "
               "Weights and biases are hex-float literals holding the trained values exactly"
               + (" (rounded once from float64)." if spec["rounded"] else "."))
    if spec["source"]:
        summary += f" Source: {spec['source']}."
    if spec["dropout_note"]:
        summary += " " + spec["dropout_note"]
    lines += _wrap(summary) + [" *"]
    lines += _wrap("INPUT " + _input_doc(spec)) + [" *"]
    lines += _wrap("OUTPUT " + _output_doc(spec)) + [" *"]
    lines += _wrap(
        f"SCRATCH scratch[{P}_SCRATCH_SIZE] {T}s provided by the caller (hidden activations); "
        "in, out and scratch must not overlap. Nothing is allocated and no global state is "
        "written, so calls with separate scratch buffers may run concurrently. The _batch forms "
        f"take n samples one after another: in[n * {P}_IN_SIZE], out[n * {P}_OUT_SIZE], one "
        "scratch buffer. Every function returns 0, or -1 if a pointer argument is NULL.")
    lines += [" */", f"#ifndef {P}_H", f"#define {P}_H", "", "#include <stddef.h>", "",
              f"#define {P}_IN_SIZE {spec['n_in']}", f"#define {P}_OUT_SIZE {spec['n_out']}",
              f"#define {P}_SCRATCH_SIZE {spec['scratch']}", f"typedef {T} {p}_real;", "",
              "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    for fn in (names["main"], names["logits"]):
        lines += [f"int {fn}(const {T} *in, {T} *out, {T} *scratch);",
                  f"int {fn}_batch(size_t n, const {T} *in, {T} *out, {T} *scratch);"]
    return lines + ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {P}_H */"]


def _forward(spec):
    """The static function computing the output layer's pre-activations; -> (lines, math)."""
    p, ct, T = spec["prefix"], spec["ct"], spec["ct"].name
    stack, em, sc = spec["stack"], spec["emitters"], spec["scaling"]
    lines = [f"/* Output-layer pre-activations into out; hidden activations in scratch "
             f"(A = scratch, B = scratch + {spec['size_a']}). */",
             f"static void {p}_forward(const {T} *in, {T} *out, {T} *scratch)", "{",
             f"    {T} *A = scratch;", f"    {T} *B = scratch + {spec['size_a']};",
             "    (void)A;", "    (void)B;"]
    x, needs_math = "in", False
    if sc is not None:
        lines += ["    {", "        uint32_t i;",
                  f"        for (i = 0; i < {spec['n_in']}u; ++i) {{",
                  f"            {T} v = ({T})(((double)in[i] - {p}_in_shift[i]) / "
                  f"{p}_in_scale[i]);"]
        if sc.clip is not None:
            lo, hi = (ct.lit(c) for c in sc.clip)
            lines += [f"            v = v < {lo} ? {lo} : v;", f"            v = v > {hi} ? {hi} : v;"]
        lines += ["            A[i] = v;", "        }", "    }"]
        x = "A"
    for i, ((_, act, scale), e) in enumerate(zip(stack, em)):
        last = i == len(stack) - 1
        y = "out" if last else ("B" if i % 2 == 0 else "A")
        lines.append(f"    {e.name}({x}, {y});")
        scale = None if scale is None else ct.lit(scale)
        # the last layer's scale belongs to the logits, its activation to _predict
        a, m = emit_activation(make_activation("identity") if last else act, ct, y, e.n_out,
                               scale)
        lines += a
        needs_math |= m
        x = y
    return lines + ["}", ""], needs_math


def _api(spec):
    """Public functions: main and logits entries and their batched forms; -> (lines, math)."""
    p, P, T, names = spec["prefix"], spec["prefix"].upper(), spec["ct"].name, spec["names"]
    out_act, needs_math = emit_activation(spec["stack"][-1][1], spec["ct"], "out", spec["n_out"])
    lines = []
    for fn, act in ((names["logits"], []), (names["main"], out_act)):
        lines += [f"int {fn}(const {T} *in, {T} *out, {T} *scratch)", "{",
                  "    if (in == NULL || out == NULL || scratch == NULL)", "        return -1;",
                  f"    {p}_forward(in, out, scratch);", *act, "    return 0;", "}", "",
                  f"int {fn}_batch(size_t n, const {T} *in, {T} *out, {T} *scratch)", "{",
                  "    size_t s;",
                  "    if (n > 0 && (in == NULL || out == NULL || scratch == NULL))",
                  "        return -1;",
                  "    for (s = 0; s < n; ++s)",
                  f"        (void){fn}(in + s * {P}_IN_SIZE, out + s * {P}_OUT_SIZE, scratch);",
                  "    return 0;", "}", ""]
    return lines, needs_math


def c_source(spec):
    """Lines of ``<prefix>.c`` and whether it needs ``<math.h>``.

    Parameters
    ----------
    spec : dict
        The export description built by :func:`sparsemlp.export.to_c`.

    Returns
    -------
    lines : list of str
        Source lines.
    needs_math : bool
        Whether libm functions are called (link with ``-lm``).
    """
    p, sc = spec["prefix"], spec["scaling"]
    tables, fns = [], []
    if sc is not None:
        tables += ["/* input scaling: x = (in - shift) / scale */"]
        tables += c_table("double", f"{p}_in_shift", hex_literals(sc.shift))
        tables += c_table("double", f"{p}_in_scale", hex_literals(sc.scale))
    for i, e in enumerate(spec["emitters"]):
        tables.append(f"/* layer {i}: {e.n_in} -> {e.n_out}, {e.kind}, {e.n_params} parameters */")
        tables += e.tables()
        fns += e.function() + [""]
    fwd, m1 = _forward(spec)
    api, m2 = _api(spec)
    needs_math = m1 or m2
    head = [f"/* {p}.c: generated by sparsemlp {spec['version']} (python -m sparsemlp.export); "
            f"see {p}.h. */", f'#include "{p}.h"', "", "#include <stddef.h>",
            "#include <stdint.h>"] + (["#include <math.h>"] if needs_math else []) + [""]
    return head + tables + [""] + fns + fwd + api, needs_math
