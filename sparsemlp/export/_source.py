"""Where an export's model, label map and input scaling come from: the run's stored ones."""

import dataclasses

import numpy as np

from .._rng import Streams
from ..data import DataError
from ..training.loading import load_run
from ._codegen import InputScaling
from ._emit import ExportError

__all__ = ["load_source", "run_preprocessing", "input_scaling", "run_test_set"]


def load_source(path):
    """The model and what its run stored with it, from a run, checkpoint or ``final/`` directory.

    A run directory gives its ``final/`` model, else its ``latest`` checkpoint
    (:func:`sparsemlp.training.loading.load_run`).

    Parameters
    ----------
    path : str or path-like
        Directory.

    Returns
    -------
    LoadedRun
        ``model``, ``config``, ``path`` (the checkpoint read) and ``preprocessing`` (the
        run's label map and feature scaling, None for checkpoints written without them).

    Raises
    ------
    CheckpointError
        If no checkpoint is found, or it is corrupted or incompatible.
    """
    return load_run(path)


def run_preprocessing(run):
    """The label map and feature scaling the run applied: ``(Preprocessing, origin)``.

    The checkpoint's stored copy when it has one (what ``sparsemlp.evaluate`` applies);
    for older or library-made checkpoints without it, the one the run's own data set
    gives when loaded as in training (``evaluate``'s fallback too).

    Parameters
    ----------
    run : LoadedRun
        From :func:`load_source` (``config.data_dir`` may be overridden before).

    Returns
    -------
    prep : Preprocessing
        Classes and scaling.
    origin : str
        Where the statistics come from, for the header.

    Raises
    ------
    ExportError
        If the checkpoint stores none and the run's data set cannot be loaded.
    """
    from ..training.datasets import load_dataset

    cfg = run.config
    if run.preprocessing is not None:
        return run.preprocessing, f"stored in {run.path} (the run's training split)"
    try:
        ds = load_dataset(dataclasses.replace(cfg, train_samples=0, test_samples=0, pad_inputs=0),
                          Streams(cfg.seed, legacy=cfg.legacy_rng), progress=False,
                          training=False)
    except DataError as exc:
        raise ExportError(
            f"{run.path} does not store the run's scaling and label map, and its data set, "
            f"needed to recover them, cannot be loaded: {exc} Pass --data-dir, or --input "
            "scaled for C code that takes scaled features.") from None
    return ds.preprocessing, f"of the {ds.name} training split"


def input_scaling(run, prep, origin, n_inputs):
    """The :class:`InputScaling` the C code applies to raw features (None for ``"none"``).

    Parameters
    ----------
    run : LoadedRun
        The run (its config: padding, RBM visible units).
    prep : Preprocessing
        From :func:`run_preprocessing`.
    origin : str
        Where the statistics come from.
    n_inputs : int
        Inputs of the model (features plus ``pad_inputs`` zero features).

    Returns
    -------
    InputScaling or None
        Shift and scale per model input (padding: 0 and 1), clipped to [0, 1] for a
        binary RBM under min-max scaling, as training and evaluation clip.

    Raises
    ------
    ExportError
        If the statistics do not fit the model.
    """
    cfg, sc = run.config, prep.scaling
    if sc.how == "none":
        return None
    d = sc.n_features
    if d > n_inputs:
        raise ExportError(f"the run's scaling holds {d} features but the model takes {n_inputs}. "
                          "The checkpoint is inconsistent: export another checkpoint.")
    pad = n_inputs - d  # zero features appended after scaling: shift 0, scale 1
    clip = (0.0, 1.0) if getattr(cfg, "model", "mlp") == "rbm" \
        and cfg.visible_units == "binary" and sc.how == "minmax" else None
    return InputScaling(
        np.concatenate([sc.shift, np.zeros(pad)]), np.concatenate([sc.scale, np.ones(pad)]), clip,
        f"{sc.how} statistics {origin}"
        + (f"; inputs {d}..{n_inputs - 1} are zero padding" if pad else ""))


def run_test_set(run, prep, n_inputs):
    """The run's test set, raw and as ``sparsemlp.evaluate`` feeds it to the model.

    Both are loaded and split as training did (same config and seed); the scaled copy
    goes through the same code as ``evaluate`` (the stored ``prep``, padding, the RBM's
    clipping).

    Parameters
    ----------
    run : LoadedRun
        The run (``config.data_dir`` may be overridden before).
    prep : Preprocessing
        From :func:`run_preprocessing`.
    n_inputs : int
        Inputs of the model.

    Returns
    -------
    X_raw : ndarray of shape (n, n_inputs)
        Raw float64 test features (zero padding appended).
    X_scaled : ndarray of shape (n, n_inputs)
        What the model sees in evaluation.
    name : str
        The data set's name.

    Raises
    ------
    DataError
        If the data set cannot be loaded.
    """
    from ..data import Preprocessing, Scaling
    from ..training.datasets import load_dataset, rbm_data

    cfg = dataclasses.replace(run.config, train_samples=0, test_samples=0)
    streams = lambda: Streams(cfg.seed, legacy=cfg.legacy_rng)  # noqa: E731 - fresh per load
    raw = load_dataset(dataclasses.replace(cfg, dtype="float64", pad_inputs=0), streams(),
                       progress=False, training=False,
                       preprocessing=Preprocessing(prep.classes, Scaling("none")))
    scaled = load_dataset(cfg, streams(), progress=False, training=False, preprocessing=prep)
    Xs = rbm_data(cfg, scaled)[1] if getattr(cfg, "model", "mlp") == "rbm" else scaled.X_test
    Xr = raw.X_test
    if Xr.shape[1] < n_inputs:
        Xr = np.hstack([Xr, np.zeros((Xr.shape[0], n_inputs - Xr.shape[1]))])
    return Xr, Xs, scaled.name
