"""Fetching data sets: Fashion-MNIST search order, user cache, checksum-verified atomic downloads."""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request

from .preprocessing import DataError

__all__ = ["DataError", "cache_dir", "fetch", "file_md5", "fashion_mnist_dir"]

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_MD5 = {  # the official .gz files (github.com/zalandoresearch/fashion-mnist)
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_FASHION_FIX = ("Pass --data-dir DIR holding the four IDX files, or apt-get install "
                "dataset-fashion-mnist (read from /usr/share/datasets/fashion-mnist).")
TIMEOUT = 30.0  # seconds without an answer before a download gives up
_CHUNK = 1 << 16


def cache_dir(subdir=None):
    """The user cache folder of sparsemlp (not created).

    ``$SPARSEMLP_CACHE`` if set, else ``$XDG_CACHE_HOME/sparsemlp``, else
    ``~/.cache/sparsemlp``.

    Parameters
    ----------
    subdir : str, optional
        A subfolder, e.g. ``"fashion-mnist"``.

    Returns
    -------
    str
        The folder's path.
    """
    root = os.environ.get("SPARSEMLP_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "sparsemlp")
    return os.path.join(root, subdir) if subdir else root


def file_md5(path):
    """MD5 hex digest of a file, read in chunks.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    str
        32 lowercase hex digits.
    """
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def fetch(url, dest, *, md5, progress=True, timeout=TIMEOUT, hint=None):
    """Download ``url`` to ``dest``, verifying its MD5 before the file appears.

    The bytes go to a hidden temporary file ``.<name>.<random>.part`` in ``dest``'s
    folder; only when the checksum matches is it renamed to ``dest`` (``os.replace``,
    atomic). On any failure, including Ctrl-C, the temporary file is deleted, so nothing
    partial is left.

    Parameters
    ----------
    url : str
        Address to read (``http``, ``https`` or ``file``).
    dest : str or path-like
        Final file name; its folder is created if needed.
    md5 : str
        Expected MD5 hex digest of the downloaded bytes.
    progress : bool, default=True
        Show a tqdm progress bar on stderr while downloading (removed when done).
    timeout : float, default=30.0
        Seconds to wait for the connection and for each read.
    hint : str, optional
        The fix suggested in error messages (default: check the network or fetch the
        file by hand to ``dest``).

    Returns
    -------
    str
        ``dest``.

    Raises
    ------
    DataError
        If the server cannot be reached, the transfer fails or the checksum differs.
    """
    from tqdm import tqdm

    dest = os.fspath(dest)
    folder = os.path.dirname(os.path.abspath(dest))
    fix = hint or f"Check the network connection, or download the file by hand to {dest}."
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".part",
                                   dir=folder)
    except OSError as exc:
        raise DataError(f"cannot write the download of {url} to {folder}: {exc}. "
                        "Set SPARSEMLP_CACHE to a writable folder.") from None
    h = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = resp.headers.get("Content-Length")
                    total = int(total) if total and total.isdigit() else None
                    size = 0
                    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                              leave=False, desc=os.path.basename(dest),
                              disable=not progress) as bar:
                        for block in iter(lambda: resp.read(_CHUNK), b""):
                            out.write(block)
                            h.update(block)
                            size += len(block)
                            bar.update(len(block))
                if total is not None and size != total:
                    raise OSError(f"connection closed after {size} of {total} bytes")
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                is_http = isinstance(exc, urllib.error.HTTPError)
                reason = exc if is_http else getattr(exc, "reason", None) or exc
                raise DataError(f"download of {url} failed ({reason}); nothing was saved. "
                                f"{fix}") from None
        got = h.hexdigest()
        if got != md5.lower():
            raise DataError(f"download of {url} has md5 {got}, expected {md5}; the file was "
                            f"discarded. {fix}")
        os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise
    return dest


def _find(directory, stem):
    for suffix in ("", ".gz"):
        p = os.path.join(directory, stem + suffix)
        if os.path.isfile(p):
            return p
    return None


def _missing(directory, names, gz=True):
    """Names of ``names`` absent from ``directory`` (with ``gz``, ``name.gz`` also counts)."""
    if gz:
        return [n for n in names if _find(directory, n) is None]
    return [n for n in names if not os.path.isfile(os.path.join(directory, n))]


def _search(name, data_dir, env):
    """Candidate folders for a named set: data_dir, data_dir/name, then $env."""
    cands = [data_dir, data_dir and os.path.join(data_dir, name), os.environ.get(env)]
    return [os.fspath(d) for d in cands if d]


def fashion_mnist_dir(data_dir=None, *, download=True, url=None, progress=True, md5=None):
    """Folder holding the four Fashion-MNIST IDX files, downloading them if needed.

    Search order: ``data_dir`` (and its ``fashion-mnist`` subfolder),
    ``$SPARSEMLP_FASHION_MNIST``, ``/usr/share/datasets/fashion-mnist`` (Debian's
    ``dataset-fashion-mnist``), the user cache (``cache_dir("fashion-mnist")``); then,
    if ``download``, the official files are fetched into the cache with MD5 checks.

    Parameters
    ----------
    data_dir : str, optional
        First folder searched.
    download : bool, default=True
        Fetch the missing files when no folder holds all four.
    url : str, optional
        Base address (default ``$SPARSEMLP_FASHION_MNIST_URL``, else the official one).
    progress : bool, default=True
        Show progress bars while downloading.
    md5 : dict, optional
        File name to MD5 digest (default: the official files' ``FASHION_MNIST_MD5``).

    Returns
    -------
    str
        The folder.

    Raises
    ------
    DataError
        If no folder has the files and downloading is off or fails.
    """
    cache = cache_dir("fashion-mnist")
    cands = _search("fashion-mnist", data_dir, "SPARSEMLP_FASHION_MNIST") + [*FASHION_DIRS, cache]
    for d in cands:
        if not _missing(d, IDX_FILES):
            return d
    if not download:
        raise DataError(f"fashion-mnist: no folder with all four IDX files (searched "
                        f"{', '.join(cands)}) and downloading is off. {_FASHION_FIX}")
    base = (url or os.environ.get("SPARSEMLP_FASHION_MNIST_URL") or FASHION_MNIST_URL)
    for fname, digest in (md5 or FASHION_MNIST_MD5).items():
        if _find(cache, fname[:-3] if fname.endswith(".gz") else fname) is None:
            fetch(base.rstrip("/") + "/" + fname, os.path.join(cache, fname), md5=digest,
                  progress=progress, hint=_FASHION_FIX)
    return cache
