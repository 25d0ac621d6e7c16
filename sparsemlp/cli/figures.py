"""Plumbing of the plot tools: PlotError, Agg figures, PNG files, run names, metrics.jsonl reading."""

import json
import math
import os

from ..training import checkpoint

REQUIRED = ("epoch", "train_loss", "test_loss", "test_accuracy", "seconds_train",
            "seconds_evolution", "seconds_eval")
RBM_REQUIRED = ("epoch", "train_recon", "seconds_train", "seconds_evolution", "seconds_eval")


class PlotError(ValueError):
    """A run directory, its metrics or its checkpoint cannot be plotted, or matplotlib is missing."""


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError('matplotlib is not installed; the plots need it. Install it with '
                        'pip install "sparsemlp[plot]".') from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # draw with Agg, never touching pyplot's global backend
    return fig


def _save(fig, path, dpi):
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _names(run_dirs):
    base = [os.path.basename(os.path.normpath(os.fspath(d))) for d in run_dirs]
    return base if len(set(base)) == len(base) else [os.fspath(d) for d in run_dirs]


def _run_name(run_dir):
    return _names([run_dir])[0]


def _num(v):
    return math.nan if v is None else float(v)


def read_metrics(run_dir):
    """Read the per-epoch records of a run from ``RUN_DIR/metrics.jsonl``.

    Parameters
    ----------
    run_dir : str or path-like
        Run directory written by ``python -m sparsemlp.train --out RUN_DIR``.

    Returns
    -------
    list of dict
        One record per epoch, in file order (``null`` values are kept as ``None``).

    Raises
    ------
    PlotError
        If ``run_dir`` has no ``metrics.jsonl``, the file is empty, or a line is not a JSON
        object holding the keys the figures need (the message names the line).
    """
    run_dir = os.fspath(run_dir)
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        what = "does not exist" if not os.path.isdir(run_dir) else "has no metrics.jsonl"
        raise PlotError(f"{run_dir} {what}: it is not a sparsemlp run directory. Pass a directory "
                        "written by python -m sparsemlp.train --out DIR.")
    records = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PlotError(f"{path} line {n} is not valid JSON ({exc.msg} at column "
                                f"{exc.colno}). Fix or delete that line.") from None
            if not isinstance(rec, dict):
                raise PlotError(f"{path} line {n} is a JSON {type(rec).__name__}, not an object. "
                                "Fix or delete that line.")
            missing = [k for k in (RBM_REQUIRED if "train_recon" in rec else REQUIRED)
                       if k not in rec]
            if missing:
                raise PlotError(f"{path} line {n} lacks {', '.join(missing)}. Fix or delete that "
                                "line, or rerun the training with this sparsemlp.")
            records.append(rec)
    if not records:
        raise PlotError(f"{path} is empty: the run has not finished an epoch. Train at least "
                        "one epoch (or --resume the run) before plotting.")
    return records


def _final_checkpoint(run_dir):
    final = os.path.join(run_dir, "final")
    if os.path.isdir(final):
        return final
    latest = checkpoint.read_latest(run_dir)
    if latest is None:
        raise PlotError(f"{run_dir} has no final/ or latest checkpoint, so there is no topology to "
                        "plot. Let the training finish (or --resume it) first.")
    return latest


def _curves(run_dirs):
    """(colour, name, records, epochs) of each run, for figures that overlay runs."""
    for k, (d, name) in enumerate(zip(run_dirs, _names(run_dirs))):
        recs = read_metrics(d)
        yield f"C{k % 10}", name, recs, [r["epoch"] for r in recs]


def _epoch_axes(axes):
    """Light grid and whole-number epoch ticks."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
