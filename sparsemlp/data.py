"""Dataset container; loaders (built-in digits, synthetic, .npz, .mat); splitting; scaling."""

import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ._validation import check_finite

__all__ = ["Dataset", "load", "load_digits", "make_synthetic", "split", "normalize",
           "read_idx", "load_idx_dir", "DataError"]


class DataError(ValueError):
    """A data set is unknown, missing, malformed or inconsistent (CLI exit code 2)."""


@dataclass
class Dataset:
    """A train/test pair with integer labels ``0..n_classes-1``.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, n_features)
        Features (float64 after loading; C-contiguous).
    y_train, y_test : ndarray of shape (n,)
        Integer labels.
    classes : ndarray
        Original label values; ``classes[y]`` recovers them.
    name : str
        Human-readable origin.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    name: str

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
    with resources.files("sparsemlp.datasets").joinpath("digits.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as z:
            return z["X"].astype(np.float64), z["y"].astype(np.int64)


def make_synthetic(n_samples=2000, n_features=100, n_classes=5, *, n_informative=None, rng):
    """A Gaussian-clusters classification problem for scaling runs and tests.

    Parameters
    ----------
    n_samples, n_features, n_classes : int
        Size of the problem.
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
    """
    k = min(n_features, n_informative or 20)
    y = np.arange(n_samples) % n_classes
    centers = rng.standard_normal((n_classes, k)) * 2.0
    X = rng.standard_normal((n_samples, n_features))
    X[:, :k] += centers[y]
    return X, y.astype(np.int64)


def _encode(y, name):
    y = np.asarray(y).ravel()
    classes, yi = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise DataError(f"{name} has a single class ({classes}); classification needs at least 2.")
    return classes, yi.astype(np.int64)


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
        Keep class proportions (Generator only).

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        The two parts.
    """
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
        raise DataError(f"test_size={test_size} leaves an empty train or test set of {n} samples.")
    return X[tr], y[tr], X[te], y[te]


def normalize(X_train, X_test, how, *, reference=False):
    """Scale features with training statistics.

    Parameters
    ----------
    X_train, X_test : ndarray
        Features (float64).
    how : {"zscore", "minmax", "none"}
        ``zscore``: ``(x - mean)/std``; ``minmax``: to [0, 1] by training min/max.
    reference : bool, default=False
        Use the original's ``std + 1e-4`` denominator; otherwise constant features get
        denominator 1.

    Returns
    -------
    X_train, X_test : ndarray
        Scaled copies.
    """
    if how == "none":
        return X_train, X_test
    if how == "zscore":
        mu = X_train.mean(axis=0)
        s = X_train.std(axis=0)
        s = s + 1e-4 if reference else np.where(s > 0, s, 1.0)
        return (X_train - mu) / s, (X_test - mu) / s
    if how == "minmax":
        lo, hi = X_train.min(axis=0), X_train.max(axis=0)
        d = np.where(hi > lo, hi - lo, 1.0)
        return (X_train - lo) / d, (X_test - lo) / d
    raise DataError(f"normalize must be 'zscore', 'minmax' or 'none'. Got {how!r}.")


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read an IDX file (MNIST format), plain or gzip-compressed.

    Parameters
    ----------
    path : str or path-like
        File name (``.gz`` is decompressed).

    Returns
    -------
    ndarray
        The array with the shape stored in the header.

    Raises
    ------
    DataError
        If the header is not IDX or the file is truncated.
    """
    import gzip

    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} cannot be read: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number).")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(np.int64)
    dt = np.dtype(_IDX_TYPES[raw[2]])
    n = int(np.prod(dims)) if ndim else 0
    off = 4 + 4 * ndim
    if len(raw) < off + n * dt.itemsize:
        raise DataError(f"{path} is truncated: header promises {tuple(dims)} values.")
    return np.frombuffer(raw, dt, count=n, offset=off).reshape(tuple(dims))


_IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(directory, stem):
    for suffix in ("", ".gz"):
        p = os.path.join(directory, stem + suffix)
        if os.path.exists(p):
            return p
    return None


def load_idx_dir(directory):
    """Load the four MNIST-style IDX files of a directory (plain or .gz).

    Parameters
    ----------
    directory : str or path-like
        Folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        Flattened float64 images and integer labels.

    Raises
    ------
    DataError
        If a file is missing or the counts do not match.
    """
    out = []
    for part in ("train", "test"):
        paths = [_find(directory, stem) for stem in _IDX_NAMES[part]]
        missing = [stem for stem, p in zip(_IDX_NAMES[part], paths) if p is None]
        if missing:
            raise DataError(f"{directory} lacks {', '.join(missing)} (plain or .gz).")
        X, y = read_idx(paths[0]), read_idx(paths[1])
        if X.shape[0] != y.shape[0]:
            raise DataError(f"{paths[0]} has {X.shape[0]} images but {paths[1]} has "
                            f"{y.shape[0]} labels.")
        out += [X.reshape(X.shape[0], -1).astype(np.float64), y.astype(np.int64)]
    return tuple(out)


FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


def _load_mat(path):
    from scipy.io import loadmat

    try:
        m = loadmat(path)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path} is not a readable MATLAB .mat file: {exc}") from None
    if "X" not in m or "Y" not in m:
        found = sorted(k for k in m if not k.startswith("__"))
        raise DataError(f"{path} must hold variables 'X' and 'Y' (found {found}).")
    X = np.asarray(m["X"], dtype=np.float64)
    if hasattr(m["X"], "toarray"):
        X = m["X"].toarray().astype(np.float64)
    return X, np.asarray(m["Y"]).ravel()


def _load_npz(path):
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path} is not a readable .npz file: {exc}") from None
    with z:
        keys = set(z.files)
        if {"xtr", "ytr", "xte", "yte"} <= keys:
            def lab(a):
                a = np.asarray(a)
                return a.argmax(axis=1) if a.ndim == 2 else a.ravel()
            xtr, ytr = z["xtr"], lab(z["ytr"])
            if {"xva", "yva"} <= keys:
                xtr = np.concatenate([xtr, z["xva"]])
                ytr = np.concatenate([ytr, lab(z["yva"])])
            return (xtr.reshape(xtr.shape[0], -1).astype(np.float64), ytr,
                    z["xte"].reshape(z["xte"].shape[0], -1).astype(np.float64), lab(z["yte"]))
        if {"X", "y"} <= keys:
            return z["X"].reshape(z["X"].shape[0], -1).astype(np.float64), z["y"].ravel()
    raise DataError(f"{path} must hold arrays xtr,ytr,xte,yte (optionally xva,yva) or X,y; "
                    f"found {sorted(keys)}.")


def load(name="digits", *, test_size=1 / 3, normalize_how="zscore", reference=False, rng,
         data_dir=None, synthetic=None):
    """Load a data set by name or path, split it if needed and scale it.

    Parameters
    ----------
    name : str, default="digits"
        ``"digits"`` (built in), ``"synthetic"``, ``"fashion-mnist"`` / ``"mnist"`` (IDX
        files in ``data_dir``, ``$SPARSEMLP_FASHION_MNIST`` / ``$SPARSEMLP_MNIST`` or, for
        Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``), or a path to a
        ``.npz`` or ``.mat`` file.
    test_size : float, default=1/3
        Test fraction when the set has no test split.
    normalize_how : {"zscore", "minmax", "none"}, default="zscore"
        Feature scaling from training statistics.
    reference : bool, default=False
        Original SET data handling (shuffle split, ``std + 1e-4``).
    rng : numpy.random.Generator or RandomState
        Split randomness.
    data_dir : str, optional
        Directory searched for relative file names.
    synthetic : dict, optional
        Keyword arguments of :func:`make_synthetic`.

    Returns
    -------
    Dataset
        Scaled float64 train/test data with labels ``0..n_classes-1``.

    Raises
    ------
    DataError
        Unknown name, missing or malformed file, inconsistent labels, NaN/inf values.
    """
    given_test = None
    if name == "digits":
        X, y = load_digits()
        label = "digits (built in, 1797x64)"
    elif name in ("fashion-mnist", "mnist"):
        env = os.environ.get("SPARSEMLP_FASHION_MNIST" if name == "fashion-mnist"
                             else "SPARSEMLP_MNIST")
        cands = [d for d in (data_dir, env) if d]
        if name == "fashion-mnist":
            cands += list(FASHION_DIRS)
        found = next((d for d in cands if _find(d, _IDX_NAMES["train"][0])), None)
        if found is None:
            hint = (" (apt-get install dataset-fashion-mnist installs it under "
                    "/usr/share/datasets/fashion-mnist)" if name == "fashion-mnist" else "")
            raise DataError(f"{name}: no IDX files found in {cands or 'any directory'}. "
                            f"Pass --data-dir DIR{hint}.")
        X, y, Xte, yte = load_idx_dir(found)
        given_test = (Xte, yte)
        label = f"{name} ({found})"
    elif name == "synthetic":
        X, y = make_synthetic(**(synthetic or {}), rng=rng)
        label = f"synthetic {X.shape}"
    else:
        path = name
        if data_dir and not os.path.isabs(path) and not os.path.exists(path):
            path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            if not path.endswith((".npz", ".mat")):
                raise DataError(f"Unknown data set {name!r}. Use 'digits', 'synthetic', or a path "
                                "to a .npz or .mat file.")
            raise DataError(f"data file {path} not found. Check the path or --data-dir.")
        if path.endswith(".mat"):
            X, y = _load_mat(path)
        elif path.endswith(".npz"):
            r = _load_npz(path)
            if len(r) == 4:
                X, y, given_test = r[0], r[1], (r[2], r[3])
            else:
                X, y = r
        else:
            raise DataError(f"Cannot read {path}: supported files are .npz and .mat.")
        label = os.path.basename(path)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or y.shape[0] != X.shape[0]:
        raise DataError(f"{label}: {X.shape[0]} samples but {y.shape[0]} labels.")
    try:
        check_finite(X, f"{label} features")
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if given_test is not None:
        Xte = np.ascontiguousarray(given_test[0], dtype=np.float64)
        if Xte.shape[1] != X.shape[1]:
            raise DataError(f"{label}: train has {X.shape[1]} features but test {Xte.shape[1]}.")
        classes, yall = _encode(np.concatenate([y, given_test[1]]), label)
        Xtr, ytr, yte = X, yall[:X.shape[0]], yall[X.shape[0]:]
    else:
        classes, yi = _encode(y, label)
        Xtr, ytr, Xte, yte = split(X, yi, test_size, rng=rng)
    Xtr, Xte = normalize(Xtr, Xte, normalize_how, reference=reference)
    return Dataset(np.ascontiguousarray(Xtr), ytr, np.ascontiguousarray(Xte), yte, classes, label)
