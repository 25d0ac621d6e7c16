"""The real Fashion-MNIST (Debian's dataset-fashion-mnist) through load() and the CLI, when installed."""

import os

import numpy as np
import pytest
from conftest import shared_data

from sparsemlp.data import load, read_idx
from sparsemlp.data.download import FASHION_DIRS

FMNIST = next((d for d in FASHION_DIRS if os.path.isdir(d)), None)
pytestmark = pytest.mark.skipif(
    FMNIST is None, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


def test_real_fashion_mnist_matches_upstream_labels():
    ds = load("fashion-mnist", rng=np.random.default_rng(0), dtype=np.float32, download=False)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.X_train.dtype == np.float32
    # oracle: the upstream label files (md5-verified copies in the shared data folder)
    ytr = read_idx(shared_data("fashion-mnist", "train-labels-idx1-ubyte.gz"))
    yte = read_idx(shared_data("fashion-mnist", "t10k-labels-idx1-ubyte.gz"))
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    # z-score from training statistics: per-feature train means are ~0
    assert np.abs(ds.X_train.mean(axis=0, dtype=np.float64)).max() < 1e-3


@pytest.mark.slow
def test_default_mode_reaches_0_89(tmp_path):
    """Issue 3 acceptance: 784-1000-1000-1000-10, default mode, test accuracy >= 0.89."""
    import json

    from sparsemlp.cli.train import main

    out = tmp_path / "fm"
    assert main(["--dataset", "fashion-mnist", "--no-download", "--epochs", "20", "--seed", "0",
                 "--checkpoint-every", "0", "--out", str(out), "-q"]) == 0
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["test_accuracy"] >= 0.89, last
