"""Command line: ``python -m sparsemlp.export SOURCE --out DIR`` writes a trained network as C."""

import argparse
import dataclasses
import os
import sys
import tempfile

import numpy as np

from ..cli.common import parse, run_tool
from ..data import DataError
from ._build import TARGETS, BuildError, build_harness, compile_c, run_bench, run_check
from ._check import compare, python_reference
from ._codegen import MODES, to_c
from ._emit import ExportError
from ._source import load_source, run_data


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sparsemlp.export",
        description="Write a trained sparse MLP or RBM (a run, checkpoint or final/ directory) "
                    "as standalone C99: <prefix>.h and <prefix>.c; optionally compile it for the "
                    "host or ARM, check it against Python and time it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="run, checkpoint or final/ directory")
    p.add_argument("--out", help="output directory (default: build/<prefix>)")
    p.add_argument("--prefix", default="net", help="file name and C symbol prefix")
    p.add_argument("--mode", choices=MODES, default="csr",
                   help="csr: tables and a loop (any size); unrolled: one statement per "
                        "connection (small nets)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="C type of weights, activations and the API")
    p.add_argument("--input", choices=("raw", "scaled"), default="raw",
                   help="raw: the C code scales raw features as the run did (needs the run's "
                        "data set); scaled: it takes features already scaled")
    p.add_argument("--data-dir", help="directory searched for the run's data set files")
    p.add_argument("--target", choices=tuple(TARGETS), default=None,
                   help="also compile <prefix>.o for this target (cross compilers for ARM)")
    p.add_argument("--cc", help="C compiler instead of the target's default")
    p.add_argument("--opt", default="-O2", help="optimisation flag for --target/--check/--bench")
    p.add_argument("--cflags", default="", help="extra compiler flags (one string)")
    p.add_argument("--emit-asm", action="store_true", help="also write <prefix>.s")
    p.add_argument("--check", type=int, default=0, metavar="N",
                   help="compile, run N test inputs (the run's test set if available, else "
                        "random) and compare with the Python forward; ARM targets run under qemu")
    p.add_argument("--bench", action="store_true",
                   help="time one sample through the compiled net (median of 15 trials)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="tracebacks on errors")
    return p


def _check_inputs(args, model, cfg, data):
    """Test inputs for --check: (C input, Python input, origin)."""
    n = args.check
    if data is not None and "X_scaled" in data:
        k = min(n, data["X_scaled"].shape[0])
        Xc = data["X_raw"][:k] if args.input == "raw" else data["X_scaled"][:k]
        return Xc, data["X_scaled"][:k], f"the first {k} test samples of {data['name']}"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, model_inputs(model)))
    if getattr(cfg, "model", "mlp") == "rbm" and cfg.visible_units == "binary":
        X = rng.random((n, model_inputs(model)))
    return X, X, f"{n} random inputs (the run's data set is not available)"


def model_inputs(model):
    """Number of inputs of a SparseMLP or SparseRBM.

    Parameters
    ----------
    model : SparseMLP or SparseRBM
        Model.

    Returns
    -------
    int
        Inputs.
    """
    return model.layer.n_in if hasattr(model, "layer") else model.layers[0].n_in


def _run(args):
    if args.check < 0:
        raise ExportError(f"--check N needs N >= 0. Got {args.check}.")
    out = args.out or os.path.join("build", args.prefix)
    model, cfg, ck = load_source(args.source)
    if args.data_dir:
        cfg = dataclasses.replace(cfg, data_dir=args.data_dir)
    data = None
    need_scaling = args.input == "raw" and cfg.normalize != "none"
    if need_scaling or args.check:
        try:
            data = run_data(cfg, model_inputs(model), with_test=bool(args.check))
        except DataError as exc:
            if need_scaling:
                raise ExportError(
                    f"the run scaled its inputs ({cfg.normalize}) with statistics of its data set, "
                    f"which cannot be loaded: {exc} Pass --data-dir, or --input scaled for C "
                    "code that takes scaled features.") from None
    scaling = data["scaling"] if (data and args.input == "raw") else None
    ex = to_c(model, out, args.prefix, args.mode, args.dtype, input_scaling=scaling,
              labels=None if data is None else data["labels"], source=ck)
    print(f"wrote {ex.header} and {ex.source}: {ex.entry}, {ex.nnz} connections, {ex.mode}, "
          f"{ex.ctype}; input {ex.in_size} {'raw' if scaling else 'scaled'} features, output "
          f"{ex.out_size}, scratch {ex.scratch_size}")
    target = args.target or "host"
    flags = args.cflags.split()
    if args.target:
        obj = compile_c([ex.source], os.path.join(out, f"{args.prefix}.o"), target=target,
                        cc=args.cc, opt=args.opt, kind="obj", flags=flags)
        print(f"compiled {obj} ({target}, {args.opt})")
    if args.emit_asm:
        asm = compile_c([ex.source], os.path.join(out, f"{args.prefix}.s"), target=target,
                        cc=args.cc, opt=args.opt, kind="asm", flags=flags)
        print(f"wrote {asm} ({target}, {args.opt})")
    code = 0
    with tempfile.TemporaryDirectory() as work:
        if args.check:
            Xc, Xp, origin = _check_inputs(args, model, cfg, data)
            exe = build_harness(ex, "check", work, target=target, cc=args.cc, opt=args.opt,
                                flags=flags)
            cl, co = run_check(exe, ex, Xc, target=target)
            r = compare(cl, co, *python_reference(model, Xp), classify=ex.entry.endswith("predict"))
            agree = "" if r["argmax_agree"] is None else f", argmax {r['argmax_agree']}/{r['n']}"
            print(f"check on {origin} ({target}, {args.opt}): max |C - Python| / max|logit| = "
                  f"{r['max_rel_logit_err']:.3g}, outputs {r['max_rel_output_err']:.3g}{agree}, "
                  f"{100 * r['bit_identical_logits']:.0f}% of samples bit-identical: "
                  f"{'OK' if r['ok'] else 'FAILED'}")
            code = 0 if r["ok"] else 1
        if args.bench:
            exe = build_harness(ex, "bench", work, target=target, cc=args.cc, opt=args.opt,
                                flags=flags)
            t = run_bench(exe, target=target)
            note = "" if target == "host" else " (emulated by qemu: not the hardware's speed)"
            print(f"bench ({target}, {args.opt}): {ex.entry} median {np.median(t) / 1e3:.3f} us "
                  f"per sample over {t.size} trials{note}")
    return code


def _guarded(args):
    try:
        return _run(args)
    except ExportError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BuildError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


def main(argv=None):
    """Export a run as C; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 failure (compiler error, failed check), 2 bad input.
    """
    args, code = parse(_parser(), argv)
    if args is None:
        return code
    return run_tool(_guarded, args)


if __name__ == "__main__":
    sys.exit(main())
