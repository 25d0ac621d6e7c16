"""Data for a run: load, subsample, pad and check the data set a TrainConfig names."""

import logging

import numpy as np

from ..data import DataError
from ..data import load as load_data

__all__ = ["load_dataset", "pad_features", "rbm_data"]

logger = logging.getLogger("sparsemlp")


def load_dataset(cfg, streams, *, progress=True, preprocessing=None, training=True):
    """Load, split, scale and (optionally) subsample the data set a config names.

    The same config and seed always give the same split, so ``evaluate`` sees the run's
    own test set.

    Parameters
    ----------
    cfg : TrainConfig
        Resolved configuration (``dataset``, ``data_dir``, ``test_size``, ``normalize``,
        ``train_samples``, ``test_samples``, ``synthetic_*``, ``download``, ``mode``,
        ``model``).
    streams : Streams
        The run's random streams (``split`` and ``subsample`` are used).
    progress : bool, default=True
        Show a progress bar if a download is needed.
    preprocessing : Preprocessing, optional
        A trained model's label map and scaling, used instead of the data's own.
    training : bool, default=True
        Check the sizes for training: a ``batch_size`` above the training samples is
        refused with ``drop_last`` (no step would run) and noted otherwise (full-batch
        steps); a test set with fewer samples than classes is noted.

    Returns
    -------
    Dataset
        The data, features in ``cfg.dtype``.

    Raises
    ------
    DataError
        If the data set is unknown, missing or malformed, or too small for the batch.
    """
    kw = {}
    if cfg.dataset == "synthetic":
        kw["synthetic"] = dict(n_samples=cfg.synthetic_samples, n_features=cfg.synthetic_features,
                               n_classes=cfg.synthetic_classes)
    if cfg.mode != "reference":  # reference mode keeps the original's float64 data path
        kw["dtype"] = np.dtype(cfg.dtype)
    ds = load_data(cfg.dataset, test_size=cfg.test_size, normalize_how=cfg.normalize,
                   reference=cfg.mode == "reference", rng=streams.get("split"),
                   data_dir=cfg.data_dir, download=cfg.download, label_column=cfg.label_column,
                   progress=progress, preprocessing=preprocessing,
                   supervised=cfg.model != "rbm", **kw)
    if cfg.train_samples or cfg.test_samples:
        rng = streams.get("subsample")
        for part, n in (("train", cfg.train_samples), ("test", cfg.test_samples)):
            X, y = getattr(ds, f"X_{part}"), getattr(ds, f"y_{part}")
            if not n:
                continue
            if n > X.shape[0]:
                raise DataError(f"--{part}-samples {n} exceeds the {X.shape[0]} {part} samples "
                                f"of {ds.name}. Use at most {X.shape[0]} (or 0 for all).")
            idx = np.sort(rng.choice(X.shape[0], n, replace=False))
            setattr(ds, f"X_{part}", np.ascontiguousarray(X[idx]))
            setattr(ds, f"y_{part}", y[idx])
        ds.name += f" (subsample {ds.X_train.shape[0]} train / {ds.X_test.shape[0]} test)"
    if cfg.pad_inputs:
        pad_features(ds, cfg.pad_inputs)
    if training:
        _size_notes(cfg, ds)
    return ds


def _size_notes(cfg, ds):
    n, n_test = ds.X_train.shape[0], ds.X_test.shape[0]
    if cfg.batch_size > n:
        if cfg.drop_last:
            raise DataError(f"--batch-size {cfg.batch_size} exceeds the {n} training samples of "
                            f"{ds.name}, and drop_last (on in --mode reference) drops the "
                            f"incomplete batch, so no step would run. Use --batch-size {n} or "
                            "less.")
        logger.warning("note: --batch-size %d exceeds the %d training samples: every step uses "
                       "all of them (one full-batch step per epoch). Lower --batch-size for "
                       "mini-batch steps.", cfg.batch_size, n)
    if cfg.model != "rbm" and n_test < ds.n_classes:
        logger.warning("note: the test set has %d sample(s) for %d classes: the test accuracy "
                       "moves in steps of %.3g and some classes are never scored. Use a larger "
                       "--test-size or --test-samples.", n_test, ds.n_classes, 1 / n_test)


def pad_features(ds, n_inputs):
    """Append zero features to both splits of a data set (in place), as Dey et al. pad 784 -> 800.

    Zero inputs add nothing to any pre-activation, so the padded net computes what it would
    without them; padding only lets a layer's input count meet the divisibility rules of the
    pre-defined topologies (z must divide the inputs of a clash-free layer).

    Parameters
    ----------
    ds : Dataset
        The data set; ``X_train`` and ``X_test`` are replaced.
    n_inputs : int
        Features after padding (at least the current number).

    Raises
    ------
    DataError
        If ``n_inputs`` is smaller than the number of features.
    """
    n = ds.n_features
    if n_inputs < n:
        raise DataError(f"--pad-inputs {n_inputs} is smaller than the {n} features of {ds.name}. "
                        f"Pass at least {n} (or 0 for no padding).")
    if n_inputs == n:
        return
    for part in ("X_train", "X_test"):
        X = getattr(ds, part)
        if hasattr(X, "tocsr"):
            import scipy.sparse as sp

            X = sp.csr_matrix(X)
            X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_inputs))
        else:
            out = np.zeros((X.shape[0], n_inputs), dtype=X.dtype)
            out[:, :n] = X
            X = out
        setattr(ds, part, X)
    ds.name += f" (features zero-padded {n} -> {n_inputs})"


def rbm_data(cfg, ds, *, new_data=False):
    """The train and test features of a data set, checked for a ``--model rbm`` config.

    Binary visible units need values in [0, 1]. With ``--normalize minmax`` the test set,
    scaled by training statistics, may leave [0, 1] slightly: it is clipped (and logged).

    Parameters
    ----------
    cfg : TrainConfig
        Resolved config.
    ds : Dataset
        Loaded data.
    new_data : bool, default=False
        Both splits were scaled with another data set's statistics (a trained model's,
        for evaluation): both are treated like a test set.

    Returns
    -------
    X_train, X_test : ndarray
        Features.

    Raises
    ------
    DataError
        If binary visible units get training data outside [0, 1] (the message names the
        fix: ``--normalize minmax`` or ``--visible-units gaussian``).
    """
    Xtr, Xte = ds.X_train, ds.X_test
    if cfg.visible_units != "binary":
        return Xtr, Xte
    lo, hi = float(Xtr.min()), float(Xtr.max())
    if not new_data and (lo < 0 or hi > 1):
        raise DataError(f"--model rbm with binary visible units needs data in [0, 1]; "
                        f"{ds.name} ({cfg.normalize} scaling) has training values in "
                        f"[{lo:.4g}, {hi:.4g}]. Pass --normalize minmax, or --visible-units "
                        "gaussian --normalize zscore for real-valued data.")
    return ((_clip01(cfg, ds, Xtr, "train") if new_data else Xtr), _clip01(cfg, ds, Xte, "test"))


def _clip01(cfg, ds, X, part):
    """``X`` scaled by training statistics, clipped to [0, 1] under minmax (else refused)."""
    out = (X < 0) | (X > 1)
    if not out.any():
        return X
    if cfg.normalize != "minmax":
        raise DataError(f"--model rbm with binary visible units needs data in [0, 1]; the "
                        f"{part} set of {ds.name} ({cfg.normalize} scaling) has values in "
                        f"[{X.min():.4g}, {X.max():.4g}]. Pass --normalize minmax (training), "
                        "or scale the data to [0, 1] as the training data was.")
    logger.info("clipped %d %s values outside [0, 1] (min-max scaling by the training set)",
                int(out.sum()), part)
    return np.clip(X, 0, 1)
