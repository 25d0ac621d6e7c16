"""Command line: ``python -m sparsemlp.approx SOURCE --kind K --share S --out RUN`` replaces layers."""

import argparse
import inspect
import json
import os
import sys
import time

import numpy as np

from ..cli.common import parse, run_tool
from ..cli.posthoc import (
    add_imported_model_arguments,
    default_out,
    open_source,
    print_accuracy_and_next,
    write_run,
)
from ..nn.inference import never_active
from ..training.config import ConfigError
from ..training.modelrun import write_degrees
from ..training.rundir import plan_new_run
from ..training.sourcedata import score
from .common import ApproximationFailedError, budget_for
from .replace import KINDS, approximate_layer


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sparsemlp.approx",
        description="Replace layers of a trained MLP (a sparsemlp run, a pickled scikit-learn "
                    "MLP, a folder of W_<i>.npy, an .npz) by structured approximations within "
                    "a parameter budget; writes the model as a run directory (evaluate, info "
                    "and train --init-from read it; fine-tuning trains the structures).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="run, checkpoint or final/ directory; .pkl "
                   "or .joblib scikit-learn MLP; folder of W_<i>.npy and b_<i>.npy; .npz")
    p.add_argument("--kind", required=True, help=f"the structure: {', '.join(KINDS)}")
    p.add_argument("--share", type=float, required=True, help="parameter budget of each "
                   "replaced layer as a fraction of its n_in*n_out, in (0, 1]")
    p.add_argument("--layers", type=int, nargs="+", help="layers to replace (default: all)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="NAME=VALUE",
                   help="an option of the kind's builder, e.g. n_states=20 (sss), n_factors=3 "
                        "(sparse_product), levels=3 (hodlr); repeat for several")
    d = p.add_argument_group("data (test accuracy before and after)")
    d.add_argument("--dataset", help="data set to score on (default: the run's own; imported "
                   "models have none): a name or file as for train")
    d.add_argument("--data-dir", help="directory searched for data set files")
    d.add_argument("--normalize", choices=("none", "zscore", "minmax"), default="none",
                   help="scaling of --dataset for an imported model (as it was trained)")
    add_imported_model_arguments(p)
    d.add_argument("--bias-correct", type=int, default=0, metavar="N",
                   help="correct each new layer's bias on N training samples of the data set "
                        "(every output keeps its mean pre-activation; 0: off)")
    p.add_argument("--out", help="run directory to write (default: runs/<source>-<kind>)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no messages but the report")
    p.add_argument("-v", "--verbose", action="count", default=0, help="tracebacks on errors")
    return p


def _value(text):
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def kind_options(kind, items):
    """The builder options of ``--option NAME=VALUE`` items, checked against the builder.

    Parameters
    ----------
    kind : str
        An approximation kind (a key of ``KINDS``).
    items : list of str
        ``NAME=VALUE`` texts; values become int, float, None (``none``) or str.

    Returns
    -------
    dict
        Options for ``KINDS[kind]``.

    Raises
    ------
    ConfigError
        For a malformed item or a name the builder does not take.
    """
    allowed = [n for n, q in inspect.signature(KINDS[kind]).parameters.items()
               if q.kind is q.KEYWORD_ONLY and n not in ("share", "on_failure")]
    out = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name or not text.strip():
            raise ConfigError(f"--option {item!r} is not NAME=VALUE; e.g. --option "
                              f"{allowed[0] if allowed else 'name'}=VALUE.")
        if name not in allowed:
            raise ConfigError(f"--option {name!r} is not an option of {kind}; it takes "
                              f"{', '.join(allowed) or 'none'}.")
        out[name] = _value(text)
    return out


def _check(args):
    if args.kind not in KINDS:
        raise ConfigError(f"--kind {args.kind!r} is not one of {', '.join(KINDS)}.")
    if not np.isfinite(args.share) or not 0 < args.share <= 1:
        raise ConfigError(f"--share must be in (0, 1] (a fraction of each layer's n_in*n_out). "
                          f"Got {args.share}.")
    if args.bias_correct < 0:
        raise ConfigError(f"--bias-correct takes a number of training samples >= 0 (0: off). "
                          f"Got {args.bias_correct}.")
    return kind_options(args.kind, args.option)


def _layers(args, model):
    n = len(model.layers)
    layers = list(range(n)) if args.layers is None else args.layers
    bad = [i for i in layers if not 0 <= i < n]
    if bad or len(set(layers)) != len(layers):
        raise ConfigError(f"--layers must list distinct layers among 0..{n - 1} of "
                          f"{args.source} (sizes {model.sizes}). Got {args.layers}.")
    done = [i for i in layers if model.layers[i].kind != "csr"]
    if done:
        raise ConfigError(f"layer {done[0]} of {args.source} is already a "
                          f"{model.layers[done[0]].kind} layer; pass --layers with CSR layers "
                          f"only ({[i for i in range(n) if model.layers[i].kind == 'csr']}).")
    for i in layers:  # the budget of every layer before any work
        la = model.layers[i]
        budget_for((la.n_out, la.n_in), args.share)
    return sorted(layers)


def _approximate(model, layers, args, options, calib=None):
    """Replace the layers in place; one report dict per layer."""
    report = []
    for i in layers:
        la = model.layers[i]
        t = time.perf_counter()
        try:
            a = approximate_layer(model, i, args.kind, share=args.share, calib=calib, **options)
        except ApproximationFailedError as exc:
            raise ConfigError(f"layer {i} ({la.n_in} x {la.n_out}): {exc} Try another --share, "
                              "--kind or --option.") from None
        except (ValueError, TypeError) as exc:  # infeasible budgets, bad option values
            raise ConfigError(f"layer {i} ({la.n_in} x {la.n_out}): {exc}") from None
        r = {"layer": i, "shape": [la.n_in, la.n_out], "kind": args.kind,
             "budget": a.budget, "n_params": a.n_params, "dense_params": la.n_in * la.n_out,
             "rel_error": a.rel_error, "seconds": time.perf_counter() - t}
        if hasattr(a, "budget_convention_params"):
            r["budget_convention_params"] = a.budget_convention_params
        report.append(r)
    return report


def _run(args):
    options = _check(args)
    out = default_out(args, args.kind)
    plan_new_run(out)  # before any work
    src, ds, run_cfg = open_source(
        args, "Use sparsemlp.approx.approximate_layer in Python.",
        lambda src: _layers(args, src.model))
    layers = _layers(args, src.model)
    before = score(src.model, ds.X_test, ds.y_test, run_cfg.loss) if ds is not None else None
    calib = None
    if args.bias_correct:
        if ds is None:
            raise ConfigError(f"--bias-correct needs training samples, and {args.source} has no "
                              "data set: pass --dataset (and --normalize as the model was trained).")
        n = len(ds.y_train)
        rows = np.random.default_rng(0).choice(n, min(args.bias_correct, n), replace=False)
        calib = ds.X_train[np.sort(rows)]
    model = src.model  # changed in place
    probe = None if ds is None else ds.X_test[:_PROBE_SAMPLES]
    dead = ({} if probe is None else
            {i: never_active(model, i, probe) for i in _relu_hidden(model, layers)})
    report = _approximate(model, layers, args, options, calib)
    for r in report:
        if r["layer"] in dead:
            r["never_active_before"] = dead[r["layer"]]
            r["never_active"] = never_active(model, r["layer"], probe)
    warnings = [] if probe is None else _dead_warnings(report, probe.shape[0], args.bias_correct)
    after = write_run(out, model, args, src, ds, run_cfg, tool="approx",
                      seconds=sum(r["seconds"] for r in report), entry={"approximated": report},
                      info={"approximated_from": os.path.abspath(args.source)})
    # the plot tool pairs initial degrees with the CSR layers (unchanged here), in order
    write_degrees(os.path.join(out, "initial_degrees.npz"), model)
    _print(args, src, report, before, after, ds, out, warnings)
    return 0


_PROBE_SAMPLES = 2048  # test samples on which the approximated layers' dead units are counted


def _relu_hidden(model, layers):
    """The approximated hidden layers behind a ReLU (where a unit can die)."""
    n = len(model.layers)
    return [i for i in layers if i < n - 1 and model.activations[i].name == "relu"]


def _dead_warnings(report, n_probe, bias_correct):
    """One warning per layer whose units mostly never fire after the approximation."""
    lines = []
    for r in report:
        if "never_active" not in r:
            continue
        units, was, now = r["shape"][1], r["never_active_before"], r["never_active"]
        if now > was and now > units // 2:
            fix = ("a larger --share or another --kind" if bias_correct else
                   "--bias-correct 2048 (keeps each unit's mean pre-activation)")
            lines.append(f"warning: layer {r['layer']}: {now} of {units} units are never active "
                         f"on {n_probe:,} test samples after the approximation ({was} before); "
                         f"no gradient reaches them in fine-tuning. Try {fix}.")
    return lines


def _print(args, src, report, before, after, ds, out, warnings):
    acc = (None, None) if before is None else (before["accuracy"], after["accuracy"])
    for line in warnings:
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps({"out": out, "source": src.name, "source_kind": src.kind,
                          "layers": report, "accuracy_before": acc[0],
                          "accuracy_after": acc[1]}))
        return
    print(f"source {src.name} ({src.kind}): sizes {src.model.sizes}")
    print(f"{'layer':>5} {'n_in x n_out':>13} {'budget':>9} {'n_params':>9} {'share':>7} "
          f"{'rel_error':>9} {'seconds':>8}")
    for r in report:
        n_in, n_out = r["shape"]
        print(f"{r['layer']:>5} {f'{n_in} x {n_out}':>13} {r['budget']:>9,} {r['n_params']:>9,} "
              f"{r['n_params'] / r['dense_params']:>7.4f} {r['rel_error']:>9.4f} "
              f"{r['seconds']:>8.2f}" + (f"  (P(d) = {r['budget_convention_params']:,})"
                                         if "budget_convention_params" in r else ""))
    print_accuracy_and_next(out, ds, before, after, "")


def main(argv=None):
    """Replace layers of a trained MLP by structured approximations; return the exit code.

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
