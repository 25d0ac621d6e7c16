"""Command line: ``python -m sparsemlp.prune SOURCE --density D --out RUN`` prunes a trained MLP."""

import argparse
import json
import os
import sys

import numpy as np

from ..cli.common import parse, run_tool
from ..cli.posthoc import (
    add_imported_model_arguments,
    default_out,
    open_source,
    print_accuracy_and_next,
    write_run,
)
from ..data import DataError
from ..training.config import ConfigError
from ..training.rundir import plan_new_run
from ..training.sourcedata import score
from .core import check_settings, prune
from .errors import COMPENSATIONS, CRITERIA, SCOPES, PruneError
from .layer import needs_data


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sparsemlp.prune",
        description="Remove connections of a trained MLP (a sparsemlp run, a pickled "
                    "scikit-learn MLP, a folder of W_<i>.npy, an .npz) and compensate the rest; "
                    "writes the pruned model as a run directory (evaluate, info, plot and "
                    "train --init-from read it).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="run, checkpoint or final/ directory; .pkl "
                   "or .joblib scikit-learn MLP; folder of W_<i>.npy and b_<i>.npy; .npz")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--density", type=float, help="fraction of each layer's n_in*n_out kept")
    g.add_argument("--sparsity", type=float, help="1 - density")
    g.add_argument("--n-remove", type=int, help="number of connections removed")
    p.add_argument("--criterion", default="obs", help=f"which go: {', '.join(CRITERIA)}")
    p.add_argument("--compensate", default="refit",
                   help=f"what happens to the rest: {', '.join(COMPENSATIONS)}")
    p.add_argument("--scope", default="layer", help="the target per layer, or for the pruned "
                   "layers together: " + ", ".join(SCOPES))
    p.add_argument("--steps", type=int, default=1,
                   help="rounds of prune, compensate, recompute the activations")
    p.add_argument("--layers", type=int, nargs="+", help="layers to prune (default: all)")
    p.add_argument("--damp", type=float, default=0.01,
                   help="Hessian damping: lambda = damp * mean(diag(X X^T))")
    p.add_argument("--no-bias-update", action="store_true",
                   help="compensation leaves the biases unchanged")
    c = p.add_argument_group("calibration")
    c.add_argument("--calib-samples", type=int, default=2048,
                   help="calibration samples drawn from the data set's training split (or "
                        "noise points)")
    c.add_argument("--dataset", help="data set for calibration and scoring (default: the run's "
                   "own; needed for imported models): a name or file as for train")
    c.add_argument("--data-dir", help="directory searched for data set files")
    c.add_argument("--normalize", choices=("none", "zscore", "minmax"), default="none",
                   help="scaling of --dataset for an imported model (as it was trained)")
    c.add_argument("--calib", metavar="FILE", help=".npy (or .npz with X) of calibration inputs, "
                   "scaled as the model's training data")
    c.add_argument("--calib-noise", action="store_true",
                   help="calibrate on uniform noise in [--noise-low, --noise-high] (data-free)")
    c.add_argument("--noise-low", type=float, default=0.0)
    c.add_argument("--noise-high", type=float, default=1.0)
    add_imported_model_arguments(p)
    p.add_argument("--out", help="run directory to write (default: runs/<source>-pruned)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration sample")
    p.add_argument("--threads", type=int, default=0, help="BLAS threads (0 = all cores)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0, help="tracebacks on errors")
    return p


def _choice(name, value, options):
    if value not in options:
        raise ConfigError(f"--{name} {value!r} is not one of {', '.join(options)}.")


def _calib_file(path, n_features):
    try:
        z = np.load(path, allow_pickle=False)
        X = z["X"] if isinstance(z, np.lib.npyio.NpzFile) else z
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"--calib {path} cannot be read as .npy (or .npz with X): {exc}") \
            from None
    if X.ndim != 2 or X.shape[1] != n_features:
        raise DataError(f"--calib {path} has shape {X.shape}; the model takes {n_features} "
                        f"features: pass an array of shape (n_samples, {n_features}).")
    return X


def _calibration(args, src, ds):
    """(calib argument of prune, origin text, training rows used or None)."""
    d = src.model.sizes[0]
    if args.calib:
        X = _calib_file(args.calib, d)
        return X, f"{X.shape[0]} samples of {args.calib}", None
    if args.calib_noise:
        return args.calib_samples, (f"{args.calib_samples} uniform noise points in "
                                    f"[{args.noise_low:g}, {args.noise_high:g}]"), None
    if ds is None:
        return None, "none", None
    n = ds.X_train.shape[0]
    k = min(args.calib_samples, n)
    rows = np.sort(np.random.default_rng(args.seed).choice(n, k, replace=False))
    return ds.X_train[rows], f"{k} training samples of {ds.name}", rows


def _run(args):
    _choice("criterion", args.criterion, CRITERIA)
    _choice("compensate", args.compensate, COMPENSATIONS)
    _choice("scope", args.scope, SCOPES)
    if args.calib_samples < 1:
        raise ConfigError(f"--calib-samples must be at least 1. Got {args.calib_samples}.")
    out = default_out(args, "pruned")
    plan_new_run(out)  # before any work

    def check(src):  # the settings first: a mistake costs no data loading
        try:
            check_settings(src.model, density=args.density, sparsity=args.sparsity,
                           n_remove=args.n_remove, criterion=args.criterion,
                           compensate=args.compensate, layers=args.layers, steps=args.steps,
                           scope=args.scope, damp=args.damp)
        except PruneError as exc:
            raise ConfigError(str(exc)) from None

    src, ds, run_cfg = open_source(
        args, "Prune it in Python: sparsemlp.prune.prune(model, ...).", check)
    calib, origin, rows = _calibration(args, src, ds)
    if calib is None and (needs_data(args.criterion, args.compensate)):
        raise ConfigError(f"criterion {args.criterion!r} with compensate {args.compensate!r} "
                          f"needs calibration data, and {args.source} comes without a data set: "
                          "pass --dataset NAME (with --normalize as the model was trained), "
                          "--calib FILE.npy or --calib-noise.")
    before = score(src.model, ds.X_test, ds.y_test, run_cfg.loss) if ds is not None else None
    try:
        pruned, report = prune(
            src.model, density=args.density, sparsity=args.sparsity, n_remove=args.n_remove,
            criterion=args.criterion, compensate=args.compensate, calib=calib,
            layers=args.layers, steps=args.steps, scope=args.scope, damp=args.damp,
            update_bias=not args.no_bias_update, noise_range=(args.noise_low, args.noise_high),
            seed=args.seed, threads=args.threads, progress_bar=not args.quiet)
    except PruneError as exc:
        raise ConfigError(str(exc)) from None
    train = None
    if ds is not None and rows is not None:  # the loss on the calibration (training) samples
        train = score(pruned, calib, ds.y_train[rows], run_cfg.loss)["loss"]
    after = write_run(out, pruned, args, src, ds, run_cfg, tool="prune", seconds=report.seconds,
                      entry={"pruned": report.to_dict()}, train_loss=train, initial=src.model,
                      info={"pruned_from": os.path.abspath(args.source), "calibration": origin})
    _print(args, src, origin, report, before, after, ds, out)
    return 0


def _print(args, src, origin, report, before, after, ds, out):
    if args.json:
        d = report.to_dict()
        d.update(out=out, source=src.name, source_kind=src.kind, calibration=origin,
                 accuracy_before=before and before["accuracy"],
                 accuracy_after=after and after["accuracy"])
        print(json.dumps(d))
        return
    print(f"source {src.name} ({src.kind}): sizes {src.model.sizes}; calibration: {origin}")
    print(report)
    print_accuracy_and_next(out, ds, before, after, " --topology static")


def main(argv=None):
    """Prune a trained MLP; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 failure, 2 usage, data, source or parameter error.
    """
    args, code = parse(_parser(), argv)
    if args is None:
        return code
    return run_tool(_run, args)


if __name__ == "__main__":
    sys.exit(main())
