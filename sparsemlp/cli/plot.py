"""Figures of run directories (learning curves, time per epoch, degrees): ``python -m sparsemlp.plot``."""

import argparse
import math
import os
import sys

import numpy as np

from ..training.checkpoint import CheckpointError
from ..training.loading import load_run
from . import plot_rbm
from .figures import REQUIRED as REQUIRED  # the keys read_metrics needs, importable from here
from .figures import (
    PlotError,
    _curves,
    _epoch_axes,
    _figure,
    _final_checkpoint,
    _names,
    _num,
    _run_name,
    _save,
    read_metrics,
)
from .plot_rbm import image_layout, is_rbm_run

__all__ = ["PlotError", "read_metrics", "degrees", "degree_histogram", "read_degrees",
           "plot_learning_curves", "plot_time_per_epoch", "plot_degrees", "main"]

PHASES = (("seconds_train", "training"), ("seconds_evolution", "evolution"),
          ("seconds_eval", "evaluation"))
INITIAL_DEGREES = "initial_degrees.npz"


def degrees(W):
    """Connections per neuron of one sparse layer.

    Parameters
    ----------
    W : scipy.sparse.csr_array
        Weights of shape ``(n_in, n_out)``; every stored entry counts as a connection,
        including weights of exactly 0.0.

    Returns
    -------
    out_degree : numpy.ndarray of int64, shape (n_in,)
        Connections leaving each input neuron (row counts).
    in_degree : numpy.ndarray of int64, shape (n_out,)
        Connections entering each output neuron (column counts).
    """
    out_deg = np.diff(np.asarray(W.indptr, dtype=np.int64))
    in_deg = np.bincount(np.asarray(W.indices, dtype=np.int64), minlength=W.shape[1])
    return out_deg, in_deg.astype(np.int64)


def degree_histogram(degree):
    """Number of neurons with each degree.

    Parameters
    ----------
    degree : array-like of int
        Degree of every neuron, as returned by :func:`degrees`.

    Returns
    -------
    numpy.ndarray of int64
        ``h[d]`` is the number of neurons with exactly ``d`` connections
        (``numpy.bincount``; length ``max(degree) + 1``).
    """
    return np.bincount(np.asarray(degree, dtype=np.int64)).astype(np.int64)


def read_degrees(run_dir):
    """Degrees of the final topology of a run and, when recorded, of its initial one.

    Parameters
    ----------
    run_dir : str or path-like
        Run directory; its ``final/`` checkpoint (else the one named by ``latest``) is loaded
        and verified, and ``initial_degrees.npz`` is read when present.

    Returns
    -------
    dict
        ``"final"``: list of ``(out_degree, in_degree)`` per layer; ``"initial"``: the same
        from ``initial_degrees.npz`` (keys ``out_<i>``, ``in_<i>``) or ``None`` when the file
        is absent; ``"shapes"``: list of ``(n_in, n_out)``; ``"nnz"``: list of int;
        ``"epoch"``: epoch of the checkpoint; ``"checkpoint"``: its path.

    Raises
    ------
    PlotError
        If there is no checkpoint, it fails verification, or ``initial_degrees.npz`` does not
        match the layers.
    """
    run_dir = os.fspath(run_dir)
    ckpt = _final_checkpoint(run_dir)
    try:
        run = load_run(ckpt)
    except CheckpointError as exc:
        raise PlotError(str(exc)) from None
    weights, meta = [layer.W for layer in run.model.sparse_layers()], run.meta
    out = {"final": [degrees(W) for W in weights], "initial": None,
           "shapes": [tuple(int(s) for s in W.shape) for W in weights],
           "nnz": [int(W.nnz) for W in weights], "epoch": meta.get("epoch"), "checkpoint": ckpt}
    ipath = os.path.join(run_dir, INITIAL_DEGREES)
    if os.path.exists(ipath):
        initial = []
        try:
            with np.load(ipath, allow_pickle=False) as z:
                for i, (n_in, n_out) in enumerate(out["shapes"]):
                    o, d = z[f"out_{i}"].astype(np.int64), z[f"in_{i}"].astype(np.int64)
                    if o.shape != (n_in,) or d.shape != (n_out,):
                        raise PlotError(f"{ipath}: out_{i}/in_{i} have lengths {o.shape}/{d.shape}"
                                        f" but layer {i} is {n_in}x{n_out}. Delete the file to "
                                        "plot without the initial topology.")
                    initial.append((o, d))
        except PlotError:
            raise
        except Exception as exc:  # noqa: BLE001 - any read failure is a bad file
            raise PlotError(f"{ipath} cannot be read ({exc}). Delete the file to plot without "
                            "the initial topology.") from None
        out["initial"] = initial
    return out


def _learning_curves_figure(run_dirs):
    fig = _figure(11, 4.2)
    ax_acc, ax_loss = fig.subplots(1, 2)
    positive = True
    for c, name, recs, ep in _curves(run_dirs):
        acc = [_num(r["test_accuracy"]) for r in recs]
        tr, te = [_num(r["train_loss"]) for r in recs], [_num(r["test_loss"]) for r in recs]
        ax_acc.plot(ep, acc, color=c, marker="o", ms=3, label=name)
        ax_loss.plot(ep, tr, color=c, ls="--", label=f"{name} train")
        ax_loss.plot(ep, te, color=c, ls="-", marker="o", ms=3, label=f"{name} test")
        positive &= all(v > 0 for v in tr + te if math.isfinite(v))
    ax_acc.set(title="Test accuracy", xlabel="epoch", ylabel="accuracy")
    ax_loss.set(title="Loss (dashed: train, solid: test)", xlabel="epoch", ylabel="loss")
    if positive:
        ax_loss.set_yscale("log")
    _epoch_axes((ax_acc, ax_loss))
    ax_acc.legend(title="run", fontsize="small")
    ax_loss.legend(fontsize="small", ncol=1 if len(run_dirs) < 4 else 2)
    return fig


def plot_learning_curves(run_dirs, path, *, dpi=120):
    """Plot test accuracy and train/test loss per epoch, one colour per run.

    Parameters
    ----------
    run_dirs : list of str or path-like
        Run directories, overlaid in one figure; the legend names them by directory name.
    path : str or path-like
        PNG file to write (parent directories are created).
    dpi : int, default=120
        Resolution.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlotError
        If a directory is not a run directory or its metrics are malformed, or matplotlib is
        missing.
    """
    return _save(_learning_curves_figure(list(run_dirs)), path, dpi)


def plot_time_per_epoch(run_dirs, path, *, dpi=120):
    """Plot seconds per epoch as stacked bars of training, evolution and evaluation.

    Parameters
    ----------
    run_dirs : list of str or path-like
        Run directories; each gets its own panel (stacked vertically, same colours).
    path : str or path-like
        PNG file to write (parent directories are created).
    dpi : int, default=120
        Resolution.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlotError
        If a directory is not a run directory or its metrics are malformed, or matplotlib is
        missing.
    """
    run_dirs = list(run_dirs)
    data = [read_metrics(d) for d in run_dirs]
    fig = _figure(9, 1.0 + 2.6 * len(run_dirs))
    axes = fig.subplots(len(run_dirs), 1, squeeze=False)[:, 0]
    for ax, recs, name in zip(axes, data, _names(run_dirs)):
        ep = np.array([r["epoch"] for r in recs])
        bottom = np.zeros(len(recs))
        for (key, label), color in zip(PHASES, ("C0", "C1", "C2")):
            v = np.nan_to_num(np.array([_num(r[key]) for r in recs]))
            ax.bar(ep, v, bottom=bottom, color=color, label=label, width=0.8)
            bottom += v
        ax.set(ylabel="seconds", xlabel="epoch",
               title=f"{name}: {bottom.mean():.3g} s per epoch on average "
                     f"(evolution {100 * _share(recs, 'seconds_evolution', bottom):.1f}%)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small", loc="upper right")
    return _save(fig, path, dpi)


def _share(recs, key, total):
    s = float(np.sum(total))
    return float(np.nansum([_num(r[key]) for r in recs])) / s if s > 0 else 0.0


def _stairs(ax, hist_a, hist_b, labels, colors):
    hists = [h for h in (hist_a, hist_b) if h is not None and h.any()]
    max_bins = int(np.clip(2 * math.sqrt(hist_b.sum()), 10, 60))
    hi = max(len(h) for h in hists) - 1
    lo = min(int(np.flatnonzero(h)[0]) for h in hists)
    width = max(1, math.ceil((hi - lo + 1) / max_bins))
    edges = np.arange(lo, hi + width + 1, width) - 0.5
    for h, label, color in zip((hist_a, hist_b), labels, colors):
        if h is None:
            continue
        deg = np.arange(len(h))
        counts, _ = np.histogram(deg, bins=edges, weights=h)
        fill = color == "C7"
        ax.stairs(counts, edges, fill=fill, alpha=0.45 if fill else 1.0, color=color, label=label,
                  lw=1.6)


def plot_degrees(run_dir, path, *, dpi=120):
    """Plot the degree distributions of the final topology against the initial Erdős–Rényi one.

    One row per sparse layer (fully dense layers are left out unless all are dense): the
    histogram of in-degrees (connections per output neuron) and of out-degrees (connections
    per input neuron). The initial curve comes from ``RUN_DIR/initial_degrees.npz`` and is
    left out when that file is absent.

    Parameters
    ----------
    run_dir : str or path-like
        Run directory with a ``final/`` (or ``latest``) checkpoint.
    path : str or path-like
        PNG file to write (parent directories are created).
    dpi : int, default=120
        Resolution.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlotError
        If the checkpoint is missing or fails verification, ``initial_degrees.npz`` does not
        match, or matplotlib is missing.
    """
    run_dir = os.fspath(run_dir)
    deg = read_degrees(run_dir)
    layers = [i for i, (s, n) in enumerate(zip(deg["shapes"], deg["nnz"])) if n < s[0] * s[1]]
    layers = layers or list(range(len(deg["shapes"])))
    fig = _figure(11, 0.8 + 2.8 * len(layers))
    axes = fig.subplots(len(layers), 2, squeeze=False)
    name = _run_name(run_dir)
    dense = [str(i) for i in range(len(deg["shapes"])) if i not in layers]
    fig.suptitle(f"{name}: degree distribution, epoch {deg['epoch']} vs initial Erdős–Rényi"
                 + ("" if deg["initial"] is not None else f" (no {INITIAL_DEGREES})")
                 + (f"; fully dense layer {', '.join(dense)} not shown" if dense else ""))
    for row, i in enumerate(layers):
        (n_in, n_out), nnz = deg["shapes"][i], deg["nnz"][i]
        for col, (j, what, who) in enumerate(((1, "in-degree", "output"),
                                              (0, "out-degree", "input"))):
            ax = axes[row, col]
            fin = deg["final"][i][j]
            ini = deg["initial"][i][j] if deg["initial"] is not None else None
            labels = (f"initial (mean {ini.mean():.1f})" if ini is not None else None,
                      f"final (mean {fin.mean():.1f}, max {fin.max()})")
            _stairs(ax, None if ini is None else degree_histogram(ini), degree_histogram(fin),
                    labels, ("C7", "C3"))
            ax.set(xlabel=f"{what} (connections per {who} neuron)", ylabel="neurons",
                   title=f"layer {i} ({n_in}x{n_out}, {nnz} connections, "
                         f"{100 * nnz / (n_in * n_out):.2g}%): {what}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    return _save(fig, path, dpi)


def _rbm_grids(run_dir, out, args):
    """reconstructions.png and samples.png of an RBM run on image data (else a note)."""
    tr, _, _ = plot_rbm.load_run(run_dir)
    try:
        layout = image_layout(tr.model.n_visible, tr.config.dataset, args.image_shape,
                              args.image_order)
    except ValueError as exc:
        raise PlotError(str(exc)) from None
    if layout is None:
        print(f"note: {tr.model.n_visible} visible units are not a square image; no "
              "reconstruction or sample grids (pass --image-shape H W if they are images)")
        return []
    return [plot_rbm.plot_reconstructions(run_dir, os.path.join(out, "reconstructions.png"),
                                          layout=layout, dpi=args.dpi),
            plot_rbm.plot_samples(run_dir, os.path.join(out, "samples.png"), layout=layout,
                                  dpi=args.dpi)]


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sparsemlp.plot",
        description="Write PNG figures of sparsemlp run directories: learning_curves.png "
                    "(all runs overlaid), time_per_epoch.png (one panel per run) and degrees.png "
                    "(first run); for --model rbm runs on image data also reconstructions.png "
                    "and samples.png (grids of test reconstructions and Gibbs samples).",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directory (several: overlaid)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: RUN_DIR/plots of the "
                                                "first run)")
    p.add_argument("--dpi", type=int, default=120, help="resolution of the PNG files")
    p.add_argument("--image-shape", type=int, nargs=2, metavar=("H", "W"),
                   help="RBM runs: image height and width (default: square, e.g. 32x32 COIL20)")
    p.add_argument("--image-order", choices=("C", "F"),
                   help="RBM runs: pixel order (default: F for .mat data sets, else C)")
    p.add_argument("-v", "--verbose", action="store_true", help="tracebacks on unexpected errors")
    return p


def main(argv=None):
    """Write the figures of one or more run directories; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 unexpected failure, 2 usage error, bad run directory or missing matplotlib.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.dpi <= 0:
            raise PlotError(f"--dpi must be a positive integer. Got {args.dpi} instead.")
        kinds = {is_rbm_run(read_metrics(d)) for d in args.run_dirs}
        if len(kinds) > 1:
            raise PlotError("the run directories mix --model mlp and --model rbm runs; plot "
                            "each kind in its own call.")
        rbm = kinds.pop()
        _figure(1, 1)  # fail early, before any file is written, when matplotlib is missing
        first = args.run_dirs[0]
        out = args.out or os.path.join(first, "plots")
        if rbm:
            curves = plot_rbm.plot_rbm_curves(args.run_dirs, os.path.join(out, "learning_curves.png"),
                                              dpi=args.dpi)
        else:
            curves = plot_learning_curves(args.run_dirs, os.path.join(out, "learning_curves.png"),
                                          dpi=args.dpi)
        written = [curves,
                   plot_time_per_epoch(args.run_dirs, os.path.join(out, "time_per_epoch.png"),
                                       dpi=args.dpi)]
        if not os.path.exists(os.path.join(first, INITIAL_DEGREES)):
            print(f"note: {first} has no {INITIAL_DEGREES} (it is written at the start of "
                  "training by newer sparsemlp); degrees.png shows the final topology only")
        written.append(plot_degrees(first, os.path.join(out, "degrees.png"), dpi=args.dpi))
        if rbm:
            written += _rbm_grids(first, out, args)
    except PlotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, traceback with -v
        if args.verbose:
            raise
        print(f"error: {type(exc).__name__}: {exc} (rerun with -v for the traceback)",
              file=sys.stderr)
        return 1
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
