"""The data of a model source: its run's own data set, or one named for an imported model."""

import dataclasses

import numpy as np

from .._rng import Streams
from ..data import DataError
from ..data.preprocessing import describe_classes
from ..nn.functions import accuracy, loss_value
from .datasets import load_dataset
from .modelrun import model_config
from .presets import NO_DATASET

__all__ = ["source_dataset", "score"]


def source_dataset(src, *, dataset=None, data_dir=None, normalize="none", test_size=None,
                   seed=None):
    """The data set a model source is scored and calibrated on, and the run config recording it.

    A run's own data set is loaded as the run did (split, subsample, scaling, labels).
    ``dataset`` instead names another one: for a run it is scaled and labelled as the run's
    data was (its stored statistics); for an imported model it is scaled by ``normalize``
    (fitted on its training split: pass ``"none"`` for data already scaled as the model
    expects) and its labels, sorted, must be the model's classes when those are known.

    Parameters
    ----------
    src : Source
        The source (``training.sources.load_source``).
    dataset : str, optional
        A data set name or path (``sparsemlp.data.load``).
    data_dir : str, optional
        Where its files are.
    normalize : {"none", "zscore", "minmax"}, default="none"
        Scaling of ``dataset`` for imported models.
    test_size : float, optional
        Test fraction of a data set without a test split.
    seed : int, optional
        Seed of the split (default: the run's, else 0).

    Returns
    -------
    ds : Dataset or None
        The data (None when the source has no data set and none is named).
    config : TrainConfig or None
        The source's run configuration with this data set recorded (None for imported
        models without a data set).

    Raises
    ------
    DataError
        If the data set cannot be loaded or does not fit the model.
    """
    model = src.model
    if src.config is not None and (dataset is not None or src.config.dataset != NO_DATASET):
        cfg = src.config
        over = {k: v for k, v in (("dataset", dataset), ("data_dir", data_dir)) if v is not None}
        if dataset is not None:
            over.update(train_samples=0, test_samples=0)
            if not str(dataset).endswith(".csv"):
                over["label_column"] = -1
        cfg = dataclasses.replace(cfg, **over, **({} if seed is None else {"seed": seed}))
        ds = load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng),
                          preprocessing=src.preprocessing, training=False)
        run_cfg = src.config if dataset is None else cfg
    elif dataset is not None:
        run_cfg = model_config(model, dataset=dataset, normalize=normalize, data_dir=data_dir,
                               test_size=test_size, seed=0 if seed is None else seed)
        ds = load_dataset(run_cfg, Streams(run_cfg.seed), training=False)
        if src.classes is not None:
            mine = [str(c) for c in np.asarray(src.classes).tolist()]
            theirs = [str(c) for c in ds.classes.tolist()]
            if mine != theirs:
                raise DataError(f"{ds.name} has the labels {describe_classes(ds.classes)} but the "
                                f"model's outputs are the classes "
                                f"{describe_classes(np.asarray(src.classes))}. Pass the data "
                                "set the model was trained on.")
    else:
        return None, None
    n_in, n_out = model.sizes[0], model.sizes[-1]
    if ds.n_features != n_in:
        raise DataError(f"{ds.name} has {ds.n_features} features but the model takes {n_in}. "
                        "Pass the data set the model was trained on (--dataset).")
    if not src.regressor and max(ds.n_classes, 2) != max(n_out, 2):
        raise DataError(f"{ds.name} has {ds.n_classes} classes but the model has {n_out} "
                        "outputs. Pass the data set the model was trained on (--dataset).")
    return ds, run_cfg


def score(model, X, y, loss, *, batch_size=1024):
    """Loss and accuracy of a classifier on labelled data.

    Parameters
    ----------
    model : SparseMLP
        The model.
    X : ndarray of shape (n, n_features)
        Inputs (scaled).
    y : ndarray of shape (n,)
        Encoded labels.
    loss : {"cross_entropy", "mse"}
        The loss.
    batch_size : int, default=1024
        Samples per forward chunk.

    Returns
    -------
    dict
        ``loss``, ``accuracy``, ``count``.
    """
    yhat = model.predict_raw(X, batch_size=batch_size).T
    n_out = yhat.shape[0]
    Y = np.zeros(yhat.shape, yhat.dtype)
    if n_out == 1:
        Y[0] = y
    else:
        Y[y, np.arange(y.shape[0])] = 1
    return {"loss": loss_value(loss, yhat, Y), "accuracy": accuracy(yhat, y) / max(1, len(y)),
            "count": int(len(y))}
