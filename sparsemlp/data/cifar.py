"""CIFAR-10 from its official binary version (``cifar-10-batches-bin``): search order and reader."""

import os

import numpy as np

from .download import cache_dir
from .preprocessing import DataError

__all__ = ["CIFAR10_TRAIN", "CIFAR10_TEST", "CIFAR10_SHAPE", "read_cifar_bin", "cifar10_dir",
           "load_cifar10_dir"]

#: The five training batches and the test batch of the binary version.
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = ("test_batch.bin",)
#: Channels, height, width of an image; a record is 1 label byte and 3072 pixel bytes
#: (the red plane, then green, then blue, each row-major).
CIFAR10_SHAPE = (3, 32, 32)
_RECORD = 1 + 3 * 32 * 32
_FIX = ("Download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
        "extract it and pass --data-dir DIR (the folder holding cifar-10-batches-bin) or set "
        "SPARSEMLP_CIFAR10.")


def read_cifar_bin(path):
    """Read one batch file of the CIFAR-10 binary version.

    Parameters
    ----------
    path : str or path-like
        A ``data_batch_N.bin`` or ``test_batch.bin`` file: records of 1 label byte (0-9)
        and 3072 pixel bytes (channel-major 3x32x32).

    Returns
    -------
    X : ndarray of uint8, shape (n, 3072)
        Images, flattened channel-major as stored.
    y : ndarray of int64, shape (n,)
        Labels.

    Raises
    ------
    DataError
        If the file cannot be read, its size is not a whole number of records, or a label
        is above 9.
    """
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc}). Check the file or replace it.") \
            from None
    if raw.size == 0 or raw.size % _RECORD:
        raise DataError(f"{path} is not a CIFAR-10 binary batch: {raw.size} bytes is not a "
                        f"whole number of {_RECORD}-byte records (truncated or the pickled "
                        f"version?). {_FIX}")
    rec = raw.reshape(-1, _RECORD)
    y = rec[:, 0].astype(np.int64)
    if y.max() > 9:
        raise DataError(f"{path} holds label {int(y.max())}; CIFAR-10 labels are 0-9 (a "
                        f"CIFAR-100 file?). {_FIX}")
    return np.ascontiguousarray(rec[:, 1:]), y


def _candidates(data_dir):
    env = os.environ.get("SPARSEMLP_CIFAR10")
    roots = [d for d in (data_dir, env, cache_dir()) if d]
    out = []
    for r in roots:
        r = os.fspath(r)
        out += [r, os.path.join(r, "cifar-10-batches-bin")]
    return out


def cifar10_dir(data_dir=None):
    """The folder holding the six batch files of the CIFAR-10 binary version.

    Search order: ``data_dir`` and ``data_dir/cifar-10-batches-bin``, the same under
    ``$SPARSEMLP_CIFAR10``, then under the user cache
    (:func:`~sparsemlp.data.download.cache_dir`). Nothing is downloaded.

    Parameters
    ----------
    data_dir : str or path-like, optional
        First folder searched.

    Returns
    -------
    str
        The folder.

    Raises
    ------
    DataError
        If no folder holds all six files (the message lists the folders searched).
    """
    cands = _candidates(data_dir)
    names = CIFAR10_TRAIN + CIFAR10_TEST
    for d in cands:
        if all(os.path.isfile(os.path.join(d, n)) for n in names):
            return d
    raise DataError(f"cifar10: no folder with {', '.join(names)} (searched {', '.join(cands)}). "
                    f"{_FIX}")


def load_cifar10_dir(directory):
    """Load the training and test batches of a ``cifar-10-batches-bin`` folder.

    Parameters
    ----------
    directory : str or path-like
        Folder with the five ``data_batch_N.bin`` files and ``test_batch.bin``.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        uint8 images of shape (n, 3072) (channel-major 3x32x32, :data:`CIFAR10_SHAPE`) and
        int64 labels; 50000 and 10000 samples for the official files.

    Raises
    ------
    DataError
        If a file is missing or malformed.
    """
    parts = []
    for names in (CIFAR10_TRAIN, CIFAR10_TEST):
        xs, ys = [], []
        for n in names:
            p = os.path.join(directory, n)
            if not os.path.isfile(p):
                raise DataError(f"cifar10: {p} is missing. {_FIX}")
            x, y = read_cifar_bin(p)
            xs.append(x)
            ys.append(y)
        parts += [np.concatenate(xs), np.concatenate(ys)]
    return tuple(parts)
