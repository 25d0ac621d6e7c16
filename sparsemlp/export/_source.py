"""Where an export's model and input scaling come from: a run, checkpoint or final/ directory."""

import dataclasses
import json
import os

import numpy as np

from .._rng import Streams
from ..training.checkpoint import CheckpointError, read_latest
from ._codegen import InputScaling
from ._emit import ExportError

__all__ = ["load_source", "run_data", "scaling_statistics"]


def _checkpoint_dir(path):
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ExportError(f"{path} does not exist or is not a directory. Pass a run directory "
                          "(python -m sparsemlp.train --out DIR), a checkpoint or a final/ "
                          "directory.")
    for cand in (path, os.path.join(path, "final")):
        if os.path.exists(os.path.join(cand, "meta.json")):
            return cand
    latest = read_latest(path)
    if latest is None or not os.path.exists(os.path.join(latest, "meta.json")):
        raise ExportError(f"{path} holds no checkpoint (no meta.json, final/ or 'latest'). Pass a "
                          "run directory written by python -m sparsemlp.train.")
    return latest


def load_source(path):
    """The model and resolved config saved in a run, checkpoint or ``final/`` directory.

    A run directory gives its ``final/`` model, else its ``latest`` checkpoint. (The one
    place that reads models from disk: it will become ``sparsemlp.load_model``.)

    Parameters
    ----------
    path : str or path-like
        Directory.

    Returns
    -------
    model : SparseMLP or SparseRBM
        The model.
    config : TrainConfig
        The run's resolved configuration.
    checkpoint : str
        The checkpoint directory read.

    Raises
    ------
    ExportError
        If no checkpoint is found.
    CheckpointError
        If it is corrupted, incompatible or of an unknown model class.
    """
    from ..training.mlp import Trainer
    from ..training.rbm import RBMTrainer

    ck = _checkpoint_dir(path)
    try:
        with open(os.path.join(ck, "meta.json")) as fh:
            cls = json.load(fh).get("model_class")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{ck}/meta.json cannot be read ({exc}).") from None
    trainers = {"SparseMLP": Trainer, "SparseRBM": RBMTrainer}
    if cls not in trainers:
        raise CheckpointError(f"{ck} holds a {cls!r}; sparsemlp.export reads SparseMLP and "
                              "SparseRBM checkpoints.")
    tr = trainers[cls].from_checkpoint(ck, verbose=False)
    return tr.model, tr.config, ck


def scaling_statistics(X_train, how, *, reference=False):
    """``(shift, scale)`` of ``sparsemlp.data.normalize`` for raw training features.

    Parameters
    ----------
    X_train : ndarray of shape (n, d)
        Raw training features.
    how : {"zscore", "minmax"}
        Scaling.
    reference : bool, default=False
        The original SET code's ``std + 1e-4`` denominator.

    Returns
    -------
    shift, scale : ndarray of shape (d,)
        float64; the scaled features are ``(x - shift) / scale``.
    """
    if how == "zscore":
        s = X_train.std(axis=0, dtype=np.float64)
        return (X_train.mean(axis=0, dtype=np.float64),
                s + 1e-4 if reference else np.where(s > 0, s, 1.0))
    lo = X_train.min(axis=0).astype(np.float64)
    hi = X_train.max(axis=0).astype(np.float64)
    return lo, np.where(hi > lo, hi - lo, 1.0)


def run_data(cfg, n_inputs, *, with_test=False):
    """The input scaling of a run, its class labels and, optionally, its test set.

    The run's data set is loaded and split as training did (same config and seed), once
    raw and, with ``with_test``, once scaled.

    Parameters
    ----------
    cfg : TrainConfig
        The run's resolved configuration (``data_dir`` may be overridden before).
    n_inputs : int
        Inputs of the model (features plus ``pad_inputs`` zero features).
    with_test : bool, default=False
        Also return the test set raw and scaled.

    Returns
    -------
    dict
        ``scaling`` (:class:`InputScaling`, or None for ``normalize="none"``), ``labels``,
        ``name`` and, with ``with_test``, ``X_raw`` and ``X_scaled`` (test features).

    Raises
    ------
    DataError
        If the data set cannot be loaded.
    ExportError
        If it does not fit the model.
    """
    from ..training.datasets import load_dataset, rbm_data

    base = dataclasses.replace(cfg, train_samples=0, test_samples=0)
    raw = load_dataset(dataclasses.replace(base, normalize="none", dtype="float64", pad_inputs=0),
                       Streams(cfg.seed, legacy=cfg.legacy_rng), progress=False)
    d = raw.X_train.shape[1]
    if d > n_inputs:
        raise ExportError(f"{raw.name} has {d} features but the model takes {n_inputs}. Export "
                          "with the data set the model was trained on (--data-dir).")
    out = {"scaling": None, "labels": list(raw.classes.tolist()), "name": raw.name}
    rbm = getattr(cfg, "model", "mlp") == "rbm"
    if cfg.normalize != "none":
        shift, scale = scaling_statistics(raw.X_train, cfg.normalize,
                                          reference=cfg.mode == "reference")
        pad = n_inputs - d  # zero features appended after scaling: shift 0, scale 1
        clip = (0.0, 1.0) if rbm and cfg.visible_units == "binary" \
            and cfg.normalize == "minmax" else None
        out["scaling"] = InputScaling(
            np.concatenate([shift, np.zeros(pad)]), np.concatenate([scale, np.ones(pad)]), clip,
            f"{cfg.normalize} statistics of the {raw.name} training split"
            + (f"; inputs {d}..{n_inputs - 1} are zero padding" if pad else ""))
    if with_test:
        scaled = load_dataset(base, Streams(cfg.seed, legacy=cfg.legacy_rng), progress=False)
        Xs = rbm_data(cfg, scaled)[1] if rbm else scaled.X_test
        Xr = raw.X_test
        if Xr.shape[1] < n_inputs:
            Xr = np.hstack([Xr, np.zeros((Xr.shape[0], n_inputs - Xr.shape[1]))])
        out["X_raw"], out["X_scaled"] = Xr, Xs
    return out
