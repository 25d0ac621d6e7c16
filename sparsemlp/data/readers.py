"""File readers for data sets: IDX (MNIST format), Madelon text files, .csv, .mat and .npz."""

import os
import re
import warnings

import numpy as np

from .download import IDX_FILES, DataError, _find, _missing

__all__ = ["read_idx", "load_idx_dir", "load_madelon", "read_csv"]


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
    n = int(np.prod(dims))  # 1 for 0 dimensions: a scalar, like NumPy's shape ()
    off = 4 + 4 * ndim
    if len(raw) < off + n * dt.itemsize:
        raise DataError(f"{path} is truncated: header promises {tuple(dims.tolist())} values. "
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
        why = _csv_problem(path, delimiter, skip) or re.sub(r";.*", "", str(exc)).rstrip(".")
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


def _npz_array(z, key, path):
    """``z[key]``, or a DataError when it cannot be read without pickle (object arrays)."""
    try:
        return z[key]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise DataError(f"{path}: array {key!r} cannot be read ({exc}). Re-save it with "
                            "numpy.savez.") from None
        what = "numbers" if key.startswith("x") or key == "X" else "integers or strings"
        raise DataError(f"{path}: array {key!r} holds Python objects (dtype object), which "
                        f"sparsemlp does not unpickle. Save it as {what}, e.g. "
                        f"np.savez(..., {key}=np.asarray({key}, dtype=" +
                        ("float" if what == "numbers" else "int") + ")).") from None
    except Exception as exc:  # noqa: BLE001 - a damaged member of the zip archive
        raise DataError(f"{path}: array {key!r} cannot be read ({exc}). Re-save it with "
                        "numpy.savez.") from None


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

        def get(k):
            return _npz_array(z, k, path)

        if {"xtr", "ytr", "xte", "yte"} <= keys:
            def lab(a):
                a = np.asarray(a)
                return a.argmax(axis=1) if a.ndim == 2 and a.shape[1] > 1 else a.ravel()
            xtr, ytr = get("xtr"), lab(get("ytr"))
            if {"xva", "yva"} <= keys:
                xva = get("xva")
                parts = [a.reshape(a.shape[0], -1) if a.ndim >= 2 else a for a in (xtr, xva)]
                if any(a.ndim != 2 for a in parts) or parts[0].shape[1] != parts[1].shape[1]:
                    raise DataError(f"{path}: xtr and xva must be (samples, features) arrays "
                                    f"with the same features; got shapes {xtr.shape} and "
                                    f"{xva.shape}. Save matching training and validation "
                                    "arrays.")
                xtr = np.concatenate(parts)
                ytr = np.concatenate([ytr, lab(get("yva"))])
            return xtr, ytr, get("xte"), lab(get("yte"))
        if {"X", "y"} <= keys:
            return get("X"), get("y")
    raise DataError(f"{path} must hold arrays xtr,ytr,xte,yte (optionally xva,yva) or X,y; "
                    f"found {sorted(keys)}.")
