"""Dataset container; loaders (digits, synthetic, IDX, madelon, .npz, .mat, .csv); splitting; scaling."""

import os
import re
import warnings
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ._validation import check_finite, check_param
from .download import IDX_FILES, DataError, _find, _missing, _search, fashion_mnist_dir

__all__ = ["Dataset", "load", "load_digits", "make_synthetic", "split", "normalize",
           "read_idx", "load_idx_dir", "load_madelon", "read_csv", "DataError"]

NAMES = ("digits", "synthetic", "fashion-mnist", "mnist", "madelon")
_BLOCK = 1 << 20  # elements per chunk when scaling: 8 MB of float64 scratch


@dataclass
class Dataset:
    """A train/test pair with integer labels ``0..n_classes-1``.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, n_features)
        Features in the dtype asked of :func:`load` (float64 by default; C-contiguous).
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
    X = rng.standard_normal((n_samples, n_features))
    X[:, :k] += centers[y]
    return X, y.astype(np.int64)


def _features(X, name):
    """Numeric 2-D view of ``X`` (native dtype kept: statistics are taken in float64)."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: features must be numeric, got dtype {X.dtype}. "
                        "Convert them to numbers before loading.")
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


def _labels(y, n, name):
    """Validated 1-D integer-valued labels for ``n`` samples (original dtype kept)."""
    y = np.asarray(y)
    if y.ndim != 1 and y.size == n:
        y = y.ravel()
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{name}: {n} rows of features but labels of shape {y.shape}. "
                        "Give one integer class label per row.")
    bad = None
    if y.dtype.kind == "f":
        wrong = ~np.isfinite(y) | (y != np.round(y))
        if wrong.any():
            bad = y[wrong][0]
    elif y.dtype.kind not in "biu":
        bad = y[0]
    if bad is not None:
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise DataError(f"{name}: labels must be integers, found {bad!r}. "
                        "Encode the classes as integers 0..k-1.")
    return y


def _encode(y, name):
    classes, yi = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise DataError(f"{name} has a single class ({classes}); classification needs at least 2. "
                        "Check the label column or file.")
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
        raise DataError(f"test_size={test_size} leaves an empty train or test set of {n} samples.")
    return X[tr], y[tr], X[te], y[te]


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
    dtype = np.dtype(dtype)
    if how == "none":
        return np.ascontiguousarray(X_train, dtype), np.ascontiguousarray(X_test, dtype)
    if how == "zscore":
        mu = X_train.mean(axis=0, dtype=np.float64)
        s = X_train.std(axis=0, dtype=np.float64)
        s = s + 1e-4 if reference else np.where(s > 0, s, 1.0)
        return _affine(X_train, mu, s, dtype), _affine(X_test, mu, s, dtype)
    if how == "minmax":
        lo = X_train.min(axis=0).astype(np.float64)
        hi = X_train.max(axis=0).astype(np.float64)
        d = np.where(hi > lo, hi - lo, 1.0)
        return _affine(X_train, lo, d, dtype), _affine(X_test, lo, d, dtype)
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
        The array with the shape stored in the header (read-only).

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
        raise DataError(f"{path} cannot be read: {exc}. Replace the file.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number). Replace the file.")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated inside its header. Replace the file.")
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(np.int64)
    dt = np.dtype(_IDX_TYPES[raw[2]])
    n = int(np.prod(dims)) if ndim else 0
    off = 4 + 4 * ndim
    if len(raw) < off + n * dt.itemsize:
        raise DataError(f"{path} is truncated: header promises {tuple(dims)} values. "
                        "Replace the file.")
    return np.frombuffer(raw, dt, count=n, offset=off).reshape(tuple(dims))


_IDX_NAMES = {"train": IDX_FILES[:2], "test": IDX_FILES[2:]}
_MADELON = ("madelon_train.data", "madelon_train.labels", "madelon_valid.data",
            "madelon_valid.labels")


def load_idx_dir(directory, *, dtype=np.float64):
    """Load the four MNIST-style IDX files of a directory (plain or .gz).

    Parameters
    ----------
    directory : str or path-like
        Folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).
    dtype : dtype or None, default=float64
        dtype of the flattened images; None keeps the stored one (uint8 for MNIST).

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        Flattened images and int64 labels.

    Raises
    ------
    DataError
        If a file is missing or malformed, or the counts do not match.
    """
    out = []
    for part in ("train", "test"):
        paths = [_find(directory, stem) for stem in _IDX_NAMES[part]]
        missing = [stem for stem, p in zip(_IDX_NAMES[part], paths) if p is None]
        if missing:
            raise DataError(f"{directory} lacks {', '.join(missing)} (plain or .gz). "
                            "Put all four IDX files in one folder.")
        X, y = read_idx(paths[0]), read_idx(paths[1])
        if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise DataError(f"{paths[0]} holds images of shape {X.shape} but {paths[1]} labels "
                            f"of shape {y.shape}. Use image and label files of the same set.")
        X = X.reshape(X.shape[0], -1)
        out += [X if dtype is None else X.astype(dtype), y.astype(np.int64)]
    return tuple(out)


def _loadtxt(path, what):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        why = re.sub(r";.*", "", str(exc))
        raise DataError(f"{path} is not a whitespace-separated numeric table ({why}). "
                        f"Use the challenge's original {what} file.") from None
    if a.size == 0:
        raise DataError(f"{path} is empty. Use the challenge's original {what} file.")
    return a


def load_madelon(directory):
    """Load the NIPS 2003 Madelon challenge text files; the validation split is the test split.

    Parameters
    ----------
    directory : str or path-like
        Folder with ``madelon_train.data``, ``madelon_train.labels``,
        ``madelon_valid.data`` and ``madelon_valid.labels`` (the test labels were never
        published, so ``madelon_test.data`` is not used).

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        float64 features (2000 x 500 and 600 x 500) and int64 labels, -1/+1 mapped to 0/1.

    Raises
    ------
    DataError
        If a file is missing or malformed, or the labels are not -1/+1 or do not match.
    """
    missing = _missing(directory, _MADELON, gz=False)
    if missing:
        raise DataError(f"{directory} lacks {', '.join(missing)}. Put the four Madelon files "
                        "in one folder (--data-dir or SPARSEMLP_MADELON).")
    out = []
    for part in ("train", "valid"):
        px, py = (os.path.join(directory, f"madelon_{part}.{e}") for e in ("data", "labels"))
        X, lab = _loadtxt(px, "data"), _loadtxt(py, "labels")
        if lab.shape[1] != 1 or not np.isin(lab, (-1, 1)).all():
            raise DataError(f"{py} must hold one label per line, each -1 or +1. "
                            "Use the challenge's original labels file.")
        if X.shape[0] != lab.shape[0]:
            raise DataError(f"{px} has {X.shape[0]} rows but {py} has {lab.shape[0]} labels. "
                            "Use data and labels files of the same split.")
        out += [X, (lab[:, 0] > 0).astype(np.int64)]
    return tuple(out)


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_problem(path, delimiter, skip):
    """The first ragged row or non-numeric cell of a csv file, as a message (or None)."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        width = None
        for lineno, line in enumerate(fh, 1):
            if lineno <= skip or not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = line.rstrip("\r\n").split(delimiter)
            if width is None:
                width = len(cells)
            elif len(cells) != width:
                return (f"line {lineno} has {len(cells)} cells but the first row has {width} "
                        "(ragged rows)")
            for col, cell in enumerate(cells, 1):
                if not _is_number(cell):
                    return f"line {lineno}, column {col}: {cell.strip()!r} is not a number"
    return None


def read_csv(path, *, label_column=-1, delimiter=","):
    """Read a numeric csv file with one class label per row.

    A first line with any non-numeric cell is taken as a header and skipped; blank lines
    and lines starting with ``#`` are ignored.

    Parameters
    ----------
    path : str or path-like
        The file.
    label_column : int, default=-1
        Column holding the integer labels (negative counts from the end).
    delimiter : str, default=","
        Cell separator.

    Returns
    -------
    X : ndarray of shape (n, n_columns - 1)
        float64 features.
    y : ndarray of shape (n,)
        Labels (float64, integer-valued once validated by :func:`load`).

    Raises
    ------
    DataError
        If the file is empty, ragged or holds non-numeric cells, or ``label_column`` is
        out of range.
    """
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            first = next(((i, ln) for i, ln in enumerate(fh)
                          if ln.strip() and not ln.lstrip().startswith("#")), None)
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}. Check the path.") from None
    if first is None:
        raise DataError(f"{path} is empty. Give a csv file with one sample per row.")
    header = any(c.strip() and not _is_number(c) for c in first[1].split(delimiter))
    skip = first[0] + 1 if header else 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            data = np.loadtxt(path, dtype=np.float64, delimiter=delimiter, skiprows=skip,
                              ndmin=2, encoding="utf-8-sig")
    except ValueError as exc:
        why = _csv_problem(path, delimiter, skip) or re.sub(r";.*", "", str(exc))
        raise DataError(f"{path}: {why}. Every row needs the same number of numeric "
                        "cells.") from None
    if data.shape[0] == 0:
        raise DataError(f"{path} has a header but no data rows. Add one sample per row.")
    n_col = data.shape[1]
    if n_col < 2 or not -n_col <= label_column < n_col:
        raise DataError(f"{path} has {n_col} columns, so label_column={label_column} does not "
                        "leave a label and at least one feature. Choose another label column.")
    return np.delete(data, label_column, axis=1), data[:, label_column]


def _load_mat(path):
    from scipy.io import loadmat

    try:
        m = loadmat(path)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path} is not a readable MATLAB .mat file ({exc}). Re-save it with "
                        "MATLAB's save or scipy.io.savemat.") from None
    if "X" not in m or "Y" not in m:
        found = sorted(k for k in m if not k.startswith("__"))
        raise DataError(f"{path} must hold variables 'X' and 'Y' (found {found}).")
    X = m["X"].toarray() if hasattr(m["X"], "toarray") else m["X"]
    return X, np.asarray(m["Y"])


def _load_npz(path):
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a zip archive")
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path} is not a readable .npz file ({exc}). Re-save it with "
                        "numpy.savez.") from None
    with z:
        keys = set(z.files)
        if {"xtr", "ytr", "xte", "yte"} <= keys:
            def lab(a):
                a = np.asarray(a)
                return a.argmax(axis=1) if a.ndim == 2 and a.shape[1] > 1 else a.ravel()
            xtr, ytr = z["xtr"], lab(z["ytr"])
            if {"xva", "yva"} <= keys:
                xtr = np.concatenate([xtr.reshape(xtr.shape[0], -1),
                                      z["xva"].reshape(z["xva"].shape[0], -1)])
                ytr = np.concatenate([ytr, lab(z["yva"])])
            return xtr, ytr, z["xte"], lab(z["yte"])
        if {"X", "y"} <= keys:
            return z["X"], z["y"]
    raise DataError(f"{path} must hold arrays xtr,ytr,xte,yte (optionally xva,yva) or X,y; "
                    f"found {sorted(keys)}.")


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
         download_url=None, progress=True):
    """Load a data set by name or path, split it if needed and scale it.

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
        Label column of a ``.csv`` file.
    download : bool, default=True
        Allow downloading Fashion-MNIST into the user cache.
    download_url : str, optional
        Base address of the Fashion-MNIST files (default ``$SPARSEMLP_FASHION_MNIST_URL``,
        else the official one).
    progress : bool, default=True
        Show progress bars while downloading.

    Returns
    -------
    Dataset
        Scaled train/test features of ``dtype`` with labels ``0..n_classes-1``.

    Raises
    ------
    DataError
        Unknown name, missing or malformed file, inconsistent labels, NaN/inf values.
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise DataError("dtype must be float32 or float64. Pass --dtype float32 or float64.")
    X, y, given_test, label = _read(name, data_dir, rng, synthetic, label_column, download,
                                    download_url, progress)
    Xtr = _features(X, label if given_test is None else f"{label} train")
    ytr = _labels(y, Xtr.shape[0], label)
    del X, y
    if given_test is not None:
        Xte = _features(given_test[0], f"{label} test")
        yte = _labels(given_test[1], Xte.shape[0], f"{label} test")
        if Xte.shape[1] != Xtr.shape[1]:
            raise DataError(f"{label}: train has {Xtr.shape[1]} features but test {Xte.shape[1]}. "
                            "Use train and test files of the same data set.")
        classes, yall = _encode(np.concatenate([ytr, yte]), label)
        ytr, yte = yall[:Xtr.shape[0]], yall[Xtr.shape[0]:]
    else:
        classes, yi = _encode(ytr, label)
        Xtr, ytr, Xte, yte = split(Xtr, yi, test_size, rng=rng)
    Xtr, Xte = normalize(Xtr, Xte, normalize_how, reference=reference, dtype=dtype)
    return Dataset(Xtr, ytr, Xte, yte, classes, label)
