"""Shared fixtures: seeds, backends, dtypes, small random CSR layers, shared data, trainer helpers."""

import os
import pathlib
import time

import numpy as np
import pytest

from sparsemlp import Callback, _kernels

SHARED_DATA = pathlib.Path(
    os.environ.get("SPARSEMLP_SHARED_DATA", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_data(*parts):
    """Path under ../shared/data, or skip the test with a clear message when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data set not found: {p} (set SPARSEMLP_SHARED_DATA to its folder)")
    return p


def _seeds():
    s = os.environ.get("SPARSEMLP_TEST_SEED", "42")
    return list(range(100)) if s == "all" else [int(s)]


@pytest.fixture(params=_seeds())
def seed(request):
    return request.param


@pytest.fixture(params=_kernels.available())
def backend(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture(params=[np.int32, np.int64], ids=["i32", "i64"])
def index_dtype(request):
    return np.dtype(request.param)


def random_csr(n_in, n_out, density, rng, dtype=np.float64, index_dtype=np.int32,
               empty_rows=(), empty_cols=()):
    """Canonical random CSR (indptr, indices, data) with chosen rows/columns left empty."""
    mask = rng.random((n_in, n_out)) < density
    if len(empty_rows):
        mask[list(empty_rows), :] = False
    if len(empty_cols):
        mask[:, list(empty_cols)] = False
    rows, cols = np.nonzero(mask)
    indptr = np.zeros(n_in + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=n_in), out=indptr[1:])
    indices = cols.astype(index_dtype)
    data = rng.standard_normal(rows.shape[0]).astype(dtype)
    return indptr, indices, data


def tol(dtype, scale=1.0):
    """Absolute tolerance scaled by dtype and the magnitude of the result."""
    return (1e-5 if np.dtype(dtype) == np.float32 else 1e-12) * max(1.0, scale)


def assert_same(a, b):
    """Same keys and bitwise-equal arrays: two trainer states (exact-resume tests)."""
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


class StopAt(Callback):
    """Stops training after epoch ``n`` (a crash after that epoch's checkpoint)."""

    def __init__(self, n):
        self.n = n

    def on_epoch_end(self, trainer, record):
        return record["epoch"] >= self.n


class InterruptAfter:
    """Stands in for the SIGINT flag: reports an interrupt at the n-th check (the trainer
    checks after every batch and once more at the end of every epoch)."""

    def __init__(self, n):
        self.n = n
        self.calls = 0

    @property
    def set(self):
        self.calls += 1
        return self.calls >= self.n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def wait_until_training(p, pause=2.0):
    """Read a ``sparsemlp.train`` subprocess's stderr up to its ``model ...`` line (logged just
    before ``fit`` installs the signal handlers), then wait ``pause`` seconds; returns what was
    read. Waiting for config.json instead races with the set-up on a loaded machine."""
    lines = []
    for line in iter(p.stderr.readline, ""):
        lines.append(line)
        if line.startswith("model "):
            break
    time.sleep(pause)
    return "".join(lines)


def interrupt_training(args, out, signum):
    """Run ``python -m sparsemlp.train *args --out out``, send ``signum`` once it trains and
    wait; returns ``(returncode, stderr, latest checkpoint or None)``."""
    import subprocess
    import sys

    from sparsemlp.training import checkpoint

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-m", "sparsemlp.train", *args, "--out", str(out)],
                         stderr=subprocess.PIPE, text=True, env=env)
    head = wait_until_training(p)
    p.send_signal(signum)
    err = head + p.communicate(timeout=120)[1]
    return p.returncode, err, checkpoint.read_latest(out)
