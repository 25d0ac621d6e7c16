"""Issue 14 acceptance on the CTO setting (slow): a dense [196, 10, 10, 10] trained by
scikit-learn on the 10,000 MNIST test images at 14 x 14 (8,000 train / 2,000 test), pruned
against the published figures of the output-distance method (0.865 ± 0.061 at 499 removals;
accuracy >= 0.85 held to 78 % sparsity)."""

import warnings

import numpy as np
import pytest
from conftest import shared_data

from sparsemlp.data import read_idx
from sparsemlp.prune import prune
from sparsemlp.training.sources import load_source

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.neural_network import MLPClassifier

    X = read_idx(shared_data("mnist", "t10k-images-idx3-ubyte.gz")).astype(np.float64) / 255.0
    y = read_idx(shared_data("mnist", "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    X = X.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(-1, 196)
    perm = np.random.default_rng(0).permutation(10000)
    tr, te = perm[:8000], perm[8000:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((10, 10), max_iter=200, random_state=0).fit(X[tr], y[tr])
    model = load_source(clf).model
    assert sum(model.nnz()) == 2160
    calib = X[tr][np.random.default_rng(0).choice(8000, 2048, replace=False)]
    return model, calib, X[te], y[te], clf.score(X[te], y[te])


def _acc(model, X, y):
    return float(np.mean(np.argmax(model.predict_raw(X), axis=1) == y))


def test_499_removals_lose_at_most_a_point(net):
    model, calib, X, y, dense = net
    assert dense >= 0.90 and _acc(model, X, y) == pytest.approx(dense, abs=1e-12)
    for crit in ("obs", "magnitude"):
        p, rep = prune(model, n_remove=499, criterion=crit, compensate="refit", calib=calib,
                       scope="global")
        assert rep.nnz_after == 2160 - 499
        assert _acc(p, X, y) >= dense - 0.01, crit


def test_obs_keeps_0_85_at_75_percent_sparsity(net):
    model, calib, X, y, _ = net
    for comp in ("obs", "refit"):
        p, rep = prune(model, sparsity=0.75, criterion="obs", compensate=comp, calib=calib,
                       scope="global")
        assert rep.nnz_after == 540
        assert _acc(p, X, y) >= 0.85, comp
