"""What a run does to its data, kept with the model: the label map and the feature scaling."""

import logging
from dataclasses import dataclass

import numpy as np

from .._validation import check_finite

__all__ = ["DataError", "Scaling", "Preprocessing", "check_features", "check_labels", "encode_labels",
           "describe_classes"]

logger = logging.getLogger("sparsemlp.data")



class DataError(ValueError):
    """A data set is unknown, missing, malformed or inconsistent (CLI exit code 2)."""


_BLOCK = 1 << 20  # elements per chunk when scaling: 8 MB of float64 scratch
_HOW = ("zscore", "minmax", "none")


def _affine(X, shift, scale, dtype):
    """``(X - shift) / scale`` in float64, written in row blocks into a new ``dtype`` array."""
    out = np.empty(X.shape, dtype=dtype)
    step = max(1, _BLOCK // max(1, X.shape[1]))
    for i in range(0, X.shape[0], step):
        if dtype == np.float64:
            o = out[i:i + step]
            np.subtract(X[i:i + step], shift, out=o)
            np.divide(o, scale, out=o)
        else:
            t = np.subtract(X[i:i + step], shift, dtype=np.float64)
            out[i:i + step] = np.divide(t, scale, out=t)
    return out


@dataclass
class Scaling:
    """A per-feature affine scaling ``(x - shift) / scale`` fitted on training data.

    Attributes
    ----------
    how : {"zscore", "minmax", "none"}
        The rule it was fitted with.
    shift, scale : ndarray of shape (n_features,) or None
        float64 statistics (None for ``"none"``).
    """

    how: str
    shift: np.ndarray = None
    scale: np.ndarray = None

    @classmethod
    def fit(cls, X, how, *, reference=False):
        """Statistics of ``X`` (float64 whatever its dtype).

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
            Training features (any integer or floating dtype).
        how : {"zscore", "minmax", "none"}
            ``zscore``: ``(x - mean)/std``; ``minmax``: to [0, 1] by min/max.
        reference : bool, default=False
            Use the original SET code's ``std + 1e-4`` denominator; otherwise constant
            features get denominator 1.

        Returns
        -------
        Scaling
            The fitted scaling.

        Raises
        ------
        DataError
            If ``how`` is not one of the three names.
        """
        if how == "none":
            return cls("none")
        if how == "zscore":
            mu = X.mean(axis=0, dtype=np.float64)
            s = X.std(axis=0, dtype=np.float64)
            return cls(how, mu, s + 1e-4 if reference else np.where(s > 0, s, 1.0))
        if how == "minmax":
            lo = X.min(axis=0).astype(np.float64)
            hi = X.max(axis=0).astype(np.float64)
            return cls(how, lo, np.where(hi > lo, hi - lo, 1.0))
        raise DataError(f"normalize must be 'zscore', 'minmax' or 'none'. Got {how!r}.")

    @property
    def n_features(self):
        """Number of features the statistics are for (None for ``"none"``)."""
        return None if self.shift is None else int(self.shift.shape[0])

    def apply(self, X, dtype=np.float64):
        """Scale ``X`` into a new C-contiguous array of ``dtype`` (arithmetic in float64).

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
            Features.
        dtype : {float64, float32}, default=float64
            dtype of the result.

        Returns
        -------
        ndarray
            The scaled features (for ``"none"``, ``X`` itself when it already fits).

        Raises
        ------
        DataError
            If ``X`` has another number of features than the statistics.
        """
        dtype = np.dtype(dtype)
        if self.how == "none":
            return np.ascontiguousarray(X, dtype)
        if X.shape[1] != self.shift.shape[0]:
            raise DataError(f"the data has {X.shape[1]} features but the scaling statistics "
                            f"are for {self.shift.shape[0]}. Use data with the same features.")
        return _affine(X, self.shift, self.scale, dtype)


@dataclass
class Preprocessing:
    """The label map and feature scaling a model was trained with (saved in checkpoints).

    Attributes
    ----------
    classes : ndarray
        The user's labels in encoded order: output ``i`` of the model is ``classes[i]``.
    scaling : Scaling
        Feature scaling fitted on the training split.
    """

    classes: np.ndarray
    scaling: Scaling

    def state_dict(self, prefix="data."):
        """Arrays for a checkpoint's ``state.npz`` (O(features) bytes).

        Parameters
        ----------
        prefix : str, default="data."
            Key prefix.

        Returns
        -------
        dict of str to ndarray
            ``classes``, ``normalize`` and, unless ``"none"``, ``shift`` and ``scale``.
        """
        out = {prefix + "classes": np.asarray(self.classes),
               prefix + "normalize": np.asarray(self.scaling.how)}
        if self.scaling.shift is not None:
            out[prefix + "shift"] = self.scaling.shift
            out[prefix + "scale"] = self.scaling.scale
        return out

    @classmethod
    def from_state_dict(cls, arrays, prefix="data."):
        """The inverse of :meth:`state_dict`; None when the arrays hold none.

        Parameters
        ----------
        arrays : mapping of str to ndarray
            A checkpoint's arrays.
        prefix : str, default="data."
            Key prefix.

        Returns
        -------
        Preprocessing or None
            None for checkpoints written without it (library runs, older versions).
        """
        if prefix + "classes" not in arrays:
            return None
        how = str(arrays[prefix + "normalize"])
        sc = Scaling(how, *(np.asarray(arrays[prefix + k], np.float64)
                            for k in ("shift", "scale") if prefix + k in arrays))
        return cls(np.asarray(arrays[prefix + "classes"]), sc)


def check_features(X, name):
    """Numeric 2-D view of ``X`` (native dtype kept: statistics are taken in float64).

    Parameters
    ----------
    X : array_like
        Features; more than two dimensions are flattened per sample.
    name : str
        Origin, for messages.

    Returns
    -------
    ndarray of shape (n, n_features)
        The features.

    Raises
    ------
    DataError
        If they are not numeric, empty, or hold NaN or infinity.
    """
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: features must be numbers, got dtype {X.dtype}. "
                        "Convert them to a numeric array (e.g. X.astype(float)) before saving.")
    if X.dtype.kind == "b":
        X = X.view(np.uint8)
    if X.ndim < 2 or X.shape[0] == 0 or X.size == 0:
        raise DataError(f"{name}: features have shape {X.shape}; expected a non-empty "
                        "(samples, features) array.")
    X = X.reshape(X.shape[0], -1)
    try:
        check_finite(X, f"{name} features")
    except ValueError as exc:
        raise DataError(str(exc)) from None
    return X


def check_labels(y, n, name):
    """Validated 1-D labels for ``n`` samples: integers (int64) or strings.

    Parameters
    ----------
    y : array_like
        Labels; floats must be integer-valued (they become int64).
    n : int
        Number of samples.
    name : str
        Origin, for messages.

    Returns
    -------
    ndarray of shape (n,)
        int64, bool or str labels.

    Raises
    ------
    DataError
        If the shape does not match or a label is neither an integer nor a string.
    """
    y = np.asarray(y)
    if y.ndim != 1 and y.size == n:
        y = y.ravel()
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{name}: {n} rows of features but labels of shape {y.shape}. "
                        "Give one class label per row.")
    if y.dtype.kind == "S":
        y = y.astype(str)
    if y.dtype.kind in "Ub":
        return y
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        wrong = ~np.isfinite(y) | (y != np.round(y)) | (np.abs(y) > 2 ** 53)
        if not wrong.any():
            return y.astype(np.int64)
        bad = y[wrong][0].item()
    else:
        bad = y.flat[0] if y.size else y.dtype
    raise DataError(f"{name}: labels must be integers or strings, found {bad!r} (dtype "
                    f"{y.dtype}). Give every sample its class as a whole number.")


def describe_classes(classes, limit=8):
    """``"{0, 5, 9}"``: the labels of a class list, shortened past ``limit``.

    Parameters
    ----------
    classes : sequence
        Labels.
    limit : int, default=8
        Most labels shown.

    Returns
    -------
    str
        The set notation.
    """
    items = [repr(c) if isinstance(c, str) else str(c) for c in np.asarray(classes).tolist()]
    if len(items) > limit:
        items = items[:limit - 2] + ["...", items[-1]]
    return "{" + ", ".join(items) + "}"


def _unknown(y, classes):
    """The labels of ``y`` that are not in ``classes`` (sorted, unique)."""
    if (y.dtype.kind == "U") != (np.asarray(classes).dtype.kind == "U"):
        return np.unique(y)
    return np.setdiff1d(y, classes)


def encode_labels(name, y_train, y_test=None, *, classes=None, supervised=True):
    """Map labels to ``0..k-1``; return the classes (the user's labels in that order).

    Parameters
    ----------
    name : str
        Data set, for messages.
    y_train : ndarray
        Labels validated by :func:`check_labels`.
    y_test : ndarray, optional
        Labels of a given test split.
    classes : ndarray, optional
        A model's label map: labels outside it are refused (evaluation of a trained model).
    supervised : bool, default=True
        Without ``classes``: at least two classes are needed and every test label must
        occur in the training labels (a class the model never trained on is refused).

    Returns
    -------
    classes : ndarray
        Sorted original labels.
    y_train, y_test : ndarray of int64
        Encoded labels (``y_test`` None when not given).

    Raises
    ------
    DataError
        On labels the model never saw, a single class, or test-only classes.
    """
    parts = [y_train] if y_test is None else [y_train, y_test]
    if classes is not None:
        classes = np.asarray(classes)
        new = _unknown(np.concatenate(parts), classes)
        if new.size:
            raise DataError(f"{name} has label(s) {describe_classes(new)} that the model never "
                            f"saw (its classes are {describe_classes(classes)}). Remove those "
                            "samples or evaluate a model trained on them.")
    elif supervised:
        classes = np.unique(y_train)
        if classes.shape[0] < 2:
            raise DataError(f"{name} has a single class ({describe_classes(classes)}) in its "
                            "training labels; classification needs at least 2. Check the label "
                            "column or file.")
        if y_test is not None:
            new = _unknown(y_test, classes)
            if new.size:
                raise DataError(f"{name}: the test labels {describe_classes(new)} never occur "
                                f"in the training labels {describe_classes(classes)}, so the "
                                "model could never predict them. Remove those test samples or "
                                "add training samples of those classes.")
    else:
        classes = np.unique(np.concatenate(parts))
    enc = [np.searchsorted(classes, y).astype(np.int64) for y in parts]
    if not np.array_equal(classes, np.arange(classes.shape[0])):
        logger.info("%s: labels %s -> classes 0..%d (outputs and per-class results use the "
                    "original labels)", name, describe_classes(classes), classes.shape[0] - 1)
    return classes, enc[0], (enc[1] if len(enc) > 1 else None)
