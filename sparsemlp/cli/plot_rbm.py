"""Figures of SET-RBM run directories: learning curves, reconstruction and Gibbs-sample grids."""

import math
import os

import numpy as np

from .figures import RBM_REQUIRED as RBM_REQUIRED  # importable from here, as before
from .figures import (
    PlotError,
    _curves,
    _epoch_axes,
    _figure,
    _final_checkpoint,
    _num,
    _run_name,
    _save,
    read_metrics,
)

__all__ = ["is_rbm_run", "image_layout", "plot_rbm_curves", "plot_reconstructions",
           "plot_samples", "SAMPLE_STEPS"]

SAMPLE_STEPS = (1, 10, 100, 1000)


def is_rbm_run(records):
    """Whether ``metrics.jsonl`` records come from a ``--model rbm`` run.

    Parameters
    ----------
    records : list of dict
        Records from :func:`sparsemlp.plot.read_metrics`.

    Returns
    -------
    bool
        True when the first record holds ``train_recon``.
    """
    return bool(records) and "train_recon" in records[0]


def image_layout(n_features, dataset="", shape=None, order=None):
    """Image height, width and pixel order of a data set's feature vectors, or None.

    Parameters
    ----------
    n_features : int
        Number of visible units.
    dataset : str, default=""
        The run's ``--dataset``: ``.mat`` files (MATLAB, e.g. COIL20) store images
        column-major, so their order is ``"F"``; everything else ``"C"``.
    shape : tuple of int, optional
        ``(height, width)`` given by the user (``--image-shape``).
    order : {"C", "F"}, optional
        Pixel order given by the user (``--image-order``).

    Returns
    -------
    tuple or None
        ``(height, width, order)``, or None when ``n_features`` is not a perfect square and
        no shape is given (not image data).

    Raises
    ------
    ValueError
        If ``shape`` does not multiply to ``n_features``.
    """
    if shape is not None:
        h, w = (int(s) for s in shape)
        if h * w != n_features:
            raise ValueError(f"--image-shape {h} {w} has {h * w} pixels but the model has "
                             f"{n_features} visible units. Pass two numbers whose product is "
                             f"{n_features}.")
    else:
        side = math.isqrt(n_features)
        if side * side != n_features or side < 4:
            return None
        h = w = side
    if order is None:
        order = "F" if str(dataset).lower().endswith(".mat") else "C"
    return h, w, order


def _rbm_curves_figure(run_dirs):
    fig = _figure(15, 4.2)
    ax_rec, ax_pll, ax_ll = fig.subplots(1, 3)
    for c, name, recs, ep in _curves(run_dirs):
        ax_rec.plot(ep, [_num(r.get("train_recon")) for r in recs], color=c, ls="--",
                    label=f"{name} train")
        ax_rec.plot(ep, [_num(r.get("test_recon")) for r in recs], color=c, label=f"{name} test")
        ax_pll.plot(ep, [_num(r.get("test_pll")) for r in recs], color=c, label=name)
        pts = [(r["epoch"], r["test_log_likelihood"]) for r in recs
               if r.get("test_log_likelihood") is not None]
        if pts:
            ax_ll.plot(*zip(*pts), color=c, marker="o", ms=4, label=name)
    ax_rec.set(title="Reconstruction error (dashed: train, solid: test)", xlabel="epoch",
               ylabel="mean squared error")
    ax_rec.set_yscale("log")
    ax_pll.set(title="Test pseudo-log-likelihood", xlabel="epoch", ylabel="nats per sample")
    ax_ll.set(title="Test log-likelihood (AIS)", xlabel="epoch", ylabel="nats per sample")
    _epoch_axes((ax_rec, ax_pll, ax_ll))
    for ax in (ax_rec, ax_pll, ax_ll):
        if ax.has_data():
            ax.legend(fontsize="small")
    return fig


def plot_rbm_curves(run_dirs, path, *, dpi=120):
    """Plot reconstruction error, test pseudo-log-likelihood and AIS log-likelihood per epoch.

    Parameters
    ----------
    run_dirs : list of str or path-like
        ``--model rbm`` run directories, overlaid.
    path : str or path-like
        PNG file to write.
    dpi : int, default=120
        Resolution.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlotError
        If a directory is not an RBM run directory or matplotlib is missing.
    """
    run_dirs = list(run_dirs)
    for d in run_dirs:
        if not is_rbm_run(read_metrics(d)):
            raise PlotError(f"{d} is not a --model rbm run; plot MLP and RBM runs separately.")
    return _save(_rbm_curves_figure(run_dirs), path, dpi)


def load_run(run_dir):
    """The final SparseRBM of a run, its config and its own train/test data (as trained).

    Parameters
    ----------
    run_dir : str or path-like
        Run directory of ``python -m sparsemlp.train --model rbm``.

    Returns
    -------
    trainer : RBMTrainer
        Restored from the final (else latest) checkpoint.
    X_train, X_test : ndarray
        The run's data, loaded, split and scaled as in training.

    Raises
    ------
    PlotError
        If there is no checkpoint, it is not an RBM one, or the data set cannot be loaded.
    """
    from .._rng import Streams
    from ..data import DataError
    from ..training import checkpoint
    from ..training.rbm import RBMTrainer
    from .train import load_dataset, rbm_data

    try:
        tr = RBMTrainer.from_checkpoint(_final_checkpoint(os.fspath(run_dir)), verbose=False)
        cfg = tr.config
        ds = load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng), progress=False)
        X_train, X_test = rbm_data(cfg, ds)
    except (checkpoint.CheckpointError, DataError) as exc:
        raise PlotError(f"{run_dir}: {exc}") from None
    return tr, X_train, X_test


def _image_run(run_dir, layout):
    """The run's trainer, its test data and the image layout (given, else inferred)."""
    tr, _, X = load_run(run_dir)
    layout = layout or image_layout(tr.model.n_visible, tr.config.dataset)
    if layout is None:
        raise PlotError(f"{tr.model.n_visible} visible units are not a square image; pass "
                        "--image-shape H W.")
    return tr, X, layout


def _grid(fig, rows, layout, row_labels, title, gaussian):
    h, w, order = layout
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, (row, label) in enumerate(zip(rows, row_labels)):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(row):
                img = np.asarray(row[j], np.float64).reshape(h, w, order=order)
                lo, hi = (img.min(), img.max()) if gaussian else (0.0, 1.0)
                ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1,
                          interpolation="nearest")
            if j == 0:
                ax.set_ylabel(label, fontsize="small")
    fig.suptitle(title)


def plot_reconstructions(run_dir, path, *, n=10, layout=None, seed=0, dpi=120):
    """Grid of test images (top row) and their one-step reconstructions ``E[v | h ~ p(h|v)]``.

    Parameters
    ----------
    run_dir : str or path-like
        ``--model rbm`` run directory.
    path : str or path-like
        PNG file to write.
    n : int, default=10
        Images (the first ``n`` test samples).
    layout : tuple, optional
        ``(height, width, order)`` from :func:`image_layout` (default: inferred).
    seed : int, default=0
        Seed of the sampling of ``h``.
    dpi : int, default=120
        Resolution.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlotError
        If the run or its data cannot be loaded, the data are not images, or matplotlib is
        missing.
    """
    tr, X, layout = _image_run(run_dir, layout)
    m = tr.model
    x = np.ascontiguousarray(X[:n].T, dtype=m.dtype)
    rec = m.visible_probs(m.sample(m.hidden_probs(x), np.random.default_rng(seed)))
    err = float(np.mean((x - rec) ** 2))
    fig = _figure(1.2 * x.shape[1] + 0.8, 3.0)
    _grid(fig, [x.T, rec.T], layout, ["data", "reconstruction"],
          f"{_run_name(run_dir)}: test reconstructions, "
          f"epoch {tr.epoch} (MSE of these {x.shape[1]}: {err:.4g})", m.visible == "gaussian")
    return _save(fig, path, dpi)


def plot_samples(run_dir, path, *, n_chains=10, steps=SAMPLE_STEPS, layout=None, seed=0,
                 dpi=120):
    """Grid of Gibbs samples: chains started at test images, snapshots after ``steps`` sweeps.

    Each sweep samples ``h ~ p(h|v)`` then ``v ~ p(v|h)``; the images show the mean
    ``E[v | h]`` of the last sweep (less noisy than the binary sample).

    Parameters
    ----------
    run_dir : str or path-like
        ``--model rbm`` run directory.
    path : str or path-like
        PNG file to write.
    n_chains : int, default=10
        Chains (columns), started at random test images.
    steps : sequence of int, default=(1, 10, 100, 1000)
        Sweeps after which a row is shown (ascending).
    layout : tuple, optional
        ``(height, width, order)`` (default: inferred).
    seed : int, default=0
        Seed of the chains.
    dpi : int, default=120
        Resolution.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    PlotError
        If the run or its data cannot be loaded, the data are not images, or matplotlib is
        missing.
    """
    tr, X, layout = _image_run(run_dir, layout)
    m = tr.model
    rng = np.random.default_rng(seed)
    start = X[rng.choice(X.shape[0], min(n_chains, X.shape[0]), replace=False)]
    v = np.ascontiguousarray(start.T, dtype=m.dtype)
    rows, labels, done = [start], ["start"], 0
    for s in sorted(steps):
        for _ in range(s - done):
            mean = m.visible_probs(m.sample(m.hidden_probs(v), rng))
            v = m.sample_visible(mean, rng)
        done = s
        rows.append(mean.T.copy())
        labels.append(f"{s} sweep{'s' if s > 1 else ''}")
    fig = _figure(1.2 * start.shape[0] + 0.8, 1.3 * len(rows) + 0.5)
    _grid(fig, rows, layout, labels,
          f"{_run_name(run_dir)}: Gibbs chains from test "
          f"images, epoch {tr.epoch}", m.visible == "gaussian")
    return _save(fig, path, dpi)
