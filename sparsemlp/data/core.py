"""Dataset container, the load() entry point, built-in and synthetic data, splitting, scaling."""

import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .._validation import check_param
from .download import IDX_FILES, DataError, _missing, _search, fashion_mnist_dir
from .preprocessing import (
    Preprocessing,
    Scaling,
    check_features,
    check_labels,
    describe_classes,
    encode_labels,
)
from .readers import _MADELON, _load_mat, _load_npz, load_idx_dir, load_madelon, read_csv, read_idx

__all__ = ["Dataset", "load", "load_digits", "make_synthetic", "split", "normalize", "Scaling",
           "Preprocessing", "read_idx", "load_idx_dir", "load_madelon", "read_csv", "DataError"]

NAMES = ("digits", "synthetic", "fashion-mnist", "mnist", "madelon")


@dataclass
class Dataset:
    """A train/test pair with labels encoded as ``0..n_classes-1``.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, n_features)
        Features in the dtype asked of :func:`load` (float64 by default; C-contiguous).
    y_train, y_test : ndarray of shape (n,)
        Encoded int64 labels.
    classes : ndarray
        The original labels in encoded order (integers or strings); ``classes[y]``
        recovers them, and output ``i`` of a model trained on the set is ``classes[i]``.
    name : str
        Human-readable origin.
    scaling : Scaling, optional
        The feature scaling fitted on the training split (to scale new data alike).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    name: str
    scaling: Scaling = None

    @property
    def preprocessing(self):
        """The label map and scaling, as a model keeps them.

        Returns
        -------
        Preprocessing
            ``classes`` and ``scaling`` (``"none"`` when unknown).
        """
        return Preprocessing(self.classes, self.scaling or Scaling("none"))

    @property
    def n_features(self):
        """Number of input features."""
        return self.X_train.shape[1]

    @property
    def n_classes(self):
        """Number of classes."""
        return int(self.classes.shape[0])


def load_digits():
    """The built-in handwritten digits set (1797 x 64, values 0..16, 10 classes).

    The UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin & Kaynak,
    CC BY 4.0), shipped as package data so that sparsemlp runs with no download.

    Returns
    -------
    X : ndarray of shape (1797, 64)
        float64 pixel counts.
    y : ndarray of shape (1797,)
        Labels 0..9.
    """
    with resources.files("sparsemlp.data").joinpath("digits.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as z:
            return z["X"].astype(np.float64), z["y"].astype(np.int64)


def make_synthetic(n_samples=2000, n_features=100, n_classes=5, *, n_informative=None, rng):
    """A Gaussian-clusters classification problem for scaling runs and tests.

    Parameters
    ----------
    n_samples, n_features, n_classes : int
        Size of the problem: ``n_samples >= 2``, ``n_features >= 1``,
        ``2 <= n_classes <= n_samples``.
    n_informative : int, optional
        Features that carry class signal (default ``min(n_features, 20)``).
    rng : numpy.random.Generator or RandomState
        Random source.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Features.
    y : ndarray of shape (n_samples,)
        Labels ``0..n_classes-1``.

    Raises
    ------
    DataError
        If a size is not an integer or out of range.
    """
    try:
        n_samples = check_param("n_samples", n_samples, "int", low=2, owner="synthetic")
        n_features = check_param("n_features", n_features, "int", low=1, owner="synthetic")
        n_classes = check_param("n_classes", n_classes, "int", low=2, high=n_samples,
                                owner="synthetic")
        if n_informative is not None:
            check_param("n_informative", n_informative, "int", low=1, owner="synthetic")
    except (TypeError, ValueError) as exc:
        raise DataError(str(exc)) from None
    k = min(n_features, n_informative or 20)
    y = np.arange(n_samples) % n_classes
    centers = rng.standard_normal((n_classes, k)) * 2.0
    try:
        X = rng.standard_normal((n_samples, n_features))
    except MemoryError:
        raise DataError(f"synthetic data of {n_samples} x {n_features} float64 values "
                        f"({n_samples * n_features * 8 / 2**30:.3g} GiB) does not fit in memory. "
                        "Lower --synthetic-samples or --synthetic-features.") from None
    X[:, :k] += centers[y]
    return X, y.astype(np.int64)


def split(X, y, test_size, *, rng, stratify=True):
    """Split into train and test.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        Features.
    y : ndarray of shape (n,)
        Labels.
    test_size : float
        Test fraction in (0, 1).
    rng : numpy.random.Generator or RandomState
        With a RandomState (reference mode) the split is the original's:
        ``idx = arange(n); rng.shuffle(idx)``, the first ``int(n*(1-test_size))`` train.
    stratify : bool, default=True
        Keep class proportions (Generator only): each class is shuffled and
        ``round(n_c * test_size)`` of its ``n_c`` samples go to the test set.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        The two parts, each in the original order.

    Raises
    ------
    DataError
        If ``test_size`` is outside (0, 1) or a part would be empty.
    """
    if not isinstance(test_size, (int, float, np.floating)) or not 0 < test_size < 1:
        raise DataError(f"test_size must be a fraction in (0, 1); got {test_size!r}.")
    n = X.shape[0]
    if isinstance(rng, np.random.RandomState) or not stratify:
        idx = np.arange(n)
        rng.shuffle(idx)
        n_train = int(round(n * (1 - test_size), 9))
        tr, te = idx[:n_train], idx[n_train:]
    else:
        tr, te = [], []
        for c in np.unique(y):
            ic = np.flatnonzero(y == c)
            ic = ic[rng.permutation(ic.shape[0])]
            k = int(round(ic.shape[0] * test_size))
            te.append(ic[:k])
            tr.append(ic[k:])
        tr = np.sort(np.concatenate(tr))
        te = np.sort(np.concatenate(te))
    if tr.size == 0 or te.size == 0:
        part, fix = ("test", "larger") if te.size == 0 else ("train", "smaller")
        raise DataError(f"test_size={test_size} leaves an empty {part} set of {n} samples. Use "
                        f"a {fix} --test-size, or more samples.")
    return X[tr], y[tr], X[te], y[te]


def normalize(X_train, X_test, how, *, reference=False, dtype=np.float64):
    """Scale features with training statistics.

    Statistics and arithmetic are float64 whatever the input and output dtypes; the
    inputs are read in row blocks, so beyond the outputs at most one full-size float64
    temporary (inside ``std``) is made.

    Parameters
    ----------
    X_train, X_test : ndarray
        Numeric features (any integer or floating dtype).
    how : {"zscore", "minmax", "none"}
        ``zscore``: ``(x - mean)/std``; ``minmax``: to [0, 1] by training min/max.
    reference : bool, default=False
        Use the original's ``std + 1e-4`` denominator; otherwise constant features get
        denominator 1.
    dtype : {float64, float32}, default=float64
        dtype of the returned arrays.

    Returns
    -------
    X_train, X_test : ndarray
        Scaled C-contiguous arrays of ``dtype`` (for ``"none"`` the inputs when they
        already are).

    Raises
    ------
    DataError
        If ``how`` is not one of the three names.
    """
    sc = Scaling.fit(X_train, how, reference=reference)
    return sc.apply(X_train, dtype), sc.apply(X_test, dtype)


def _unknown(name):
    return DataError(f"Unknown data set {name!r}. Use one of {', '.join(NAMES)}, a path to a "
                     ".npz, .mat or .csv file, or a folder of IDX or Madelon files.")


def _from_dir(d, kind):
    X, y, Xte, yte = load_madelon(d) if kind == "madelon" else load_idx_dir(d, dtype=None)
    return X, y, (Xte, yte), f"{kind} ({d})"


def _read(name, data_dir, rng, synthetic, label_column, download, url, progress):
    """-> (X, y, (X_test, y_test) or None, label) with native dtypes."""
    if name == "digits":
        X, y = load_digits()
        return X, y, None, "digits (built in, 1797x64)"
    if name == "synthetic":
        opts = dict(synthetic or {})
        extra = set(opts) - {"n_samples", "n_features", "n_classes", "n_informative"}
        if extra:
            raise DataError(f"synthetic: unknown option(s) {sorted(extra)}. Use n_samples, "
                            "n_features, n_classes, n_informative.")
        X, y = make_synthetic(**opts, rng=rng)
        return X, y, None, f"synthetic {X.shape}"
    if name == "fashion-mnist":
        d = fashion_mnist_dir(data_dir, download=download, url=url, progress=progress)
        return _from_dir(d, name)
    if name in ("mnist", "madelon"):
        env = f"SPARSEMLP_{name.upper()}"
        names = IDX_FILES if name == "mnist" else _MADELON
        cands = _search(name, data_dir, env)
        d = next((c for c in cands if not _missing(c, names, gz=name == "mnist")), None)
        if d is None:
            where = f"searched {', '.join(cands)}" if cands else "no folder given"
            raise DataError(f"{name}: no folder with {', '.join(names)} ({where}). Pass --data-dir "
                            f"DIR or set {env}.")
        return _from_dir(d, name)
    path = os.fspath(name)
    if os.path.isdir(path) and path.endswith((".npz", ".mat", ".csv")):
        raise DataError(f"{path} is a folder, not a data file. Pass the file itself (or a "
                        "folder of IDX or Madelon files).")
    if data_dir and not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(data_dir, path)
    if not os.path.exists(path):
        if not path.endswith((".npz", ".mat", ".csv")):
            raise _unknown(name)
        raise DataError(f"data file {path} not found. Check the path or --data-dir.")
    if os.path.isdir(path):
        if not _missing(path, _MADELON, gz=False):
            return _from_dir(path, "madelon")
        if not _missing(path, IDX_FILES):
            return _from_dir(path, "IDX")
        raise DataError(f"folder {path} holds neither the four Madelon files ({', '.join(_MADELON)}) "
                        "nor the four IDX files. Point to the folder that has them.")
    label = os.path.basename(path)
    if path.endswith(".mat"):
        X, y = _load_mat(path)
    elif path.endswith(".npz"):
        r = _load_npz(path)
        if len(r) == 4:
            return r[0], r[1], (r[2], r[3]), label
        X, y = r
    elif path.endswith(".csv"):
        X, y = read_csv(path, label_column=label_column)
    else:
        raise DataError(f"Cannot read {path}: supported files are .npz, .mat and .csv.")
    return X, y, None, label


def load(name="digits", *, test_size=1 / 3, normalize_how="zscore", reference=False, rng,
         data_dir=None, synthetic=None, dtype=np.float64, label_column=-1, download=True,
         download_url=None, progress=True, preprocessing=None, supervised=True):
    """Load a data set by name or path, split it if needed and scale it.

    Labels are kept as the user gave them in ``Dataset.classes`` and encoded as their
    index there (one INFO line says so when they are not already ``0..k-1``).

    Parameters
    ----------
    name : str, default="digits"
        ``"digits"`` (built in), ``"synthetic"``, ``"fashion-mnist"`` (see
        :func:`fashion_mnist_dir`), ``"mnist"`` (IDX files in ``data_dir`` or
        ``$SPARSEMLP_MNIST``), ``"madelon"`` (challenge text files in ``data_dir`` or
        ``$SPARSEMLP_MADELON``), a path to a ``.npz``, ``.mat`` or ``.csv`` file, or a
        folder holding IDX or Madelon files.
    test_size : float, default=1/3
        Test fraction when the set has no test split.
    normalize_how : {"zscore", "minmax", "none"}, default="zscore"
        Feature scaling from training statistics.
    reference : bool, default=False
        Original SET data handling (shuffle split, ``std + 1e-4``).
    rng : numpy.random.Generator or RandomState
        Split randomness.
    data_dir : str, optional
        Directory searched for relative file names and named sets.
    synthetic : dict, optional
        Keyword arguments of :func:`make_synthetic`.
    dtype : {float64, float32}, default=float64
        dtype of the returned features (statistics are always computed in float64).
    label_column : int, default=-1
        Label column of a ``.csv`` file (any other value is refused for other sets).
    download : bool, default=True
        Allow downloading Fashion-MNIST into the user cache.
    download_url : str, optional
        Base address of the Fashion-MNIST files (default ``$SPARSEMLP_FASHION_MNIST_URL``,
        else the official one).
    progress : bool, default=True
        Show progress bars while downloading.
    preprocessing : Preprocessing, optional
        A trained model's label map and scaling, used instead of the set's own (to
        evaluate the model on other data): labels outside its classes are refused and
        ``normalize_how`` is ignored.
    supervised : bool, default=True
        The labels are targets: at least two classes, and every test class must occur in
        the training split. False (an RBM) only encodes them.

    Returns
    -------
    Dataset
        Scaled train/test features of ``dtype`` with labels ``0..n_classes-1``.

    Raises
    ------
    DataError
        Unknown name, missing or malformed file, labels that are not integers or strings,
        a test class absent from training, labels the model never saw, NaN/inf values.
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise DataError("dtype must be float32 or float64. Pass --dtype float32 or float64.")
    if label_column != -1 and not os.fspath(name).endswith(".csv"):
        raise DataError(f"label_column={label_column} applies to .csv files only; {name} keeps "
                        "its labels apart from the features. Drop --label-column.")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise DataError(f"--data-dir {data_dir} "
                        f"{'is a file' if os.path.exists(data_dir) else 'does not exist'}. Pass "
                        "the folder that holds the data files.")
    X, y, given_test, label = _read(name, data_dir, rng, synthetic, label_column, download,
                                    download_url, progress)
    Xtr = check_features(X, label if given_test is None else f"{label} train")
    ytr = check_labels(y, Xtr.shape[0], label)
    del X, y
    known = None if preprocessing is None else preprocessing.classes
    if given_test is not None:
        Xte = check_features(given_test[0], f"{label} test")
        yte = check_labels(given_test[1], Xte.shape[0], f"{label} test")
        if Xte.shape[1] != Xtr.shape[1]:
            raise DataError(f"{label}: train has {Xtr.shape[1]} features but test {Xte.shape[1]}. "
                            "Use train and test files of the same data set.")
        classes, ytr, yte = encode_labels(label, ytr, yte, classes=known, supervised=supervised)
    else:
        classes, yi, _ = encode_labels(label, ytr, classes=known, supervised=supervised)
        Xtr, ytr, Xte, yte = split(Xtr, yi, test_size, rng=rng)
        lost = np.setdiff1d(yte, ytr)
        if supervised and known is None and lost.size:
            raise DataError(f"{label}: the split put every sample of class(es) "
                            f"{describe_classes(classes[lost])} into the test set, so the model "
                            "could never learn them. Lower --test-size or give those classes "
                            "more samples.")
    if preprocessing is None:
        scaling = Scaling.fit(Xtr, normalize_how, reference=reference)
    else:
        scaling = preprocessing.scaling
        if scaling.n_features not in (None, Xtr.shape[1]):
            raise DataError(f"{label} has {Xtr.shape[1]} features but the model takes "
                            f"{scaling.n_features}. Evaluate on data with the model's features.")
    Xtr, Xte = scaling.apply(Xtr, dtype), scaling.apply(Xte, dtype)
    return Dataset(Xtr, ytr, Xte, yte, classes, label, scaling)
