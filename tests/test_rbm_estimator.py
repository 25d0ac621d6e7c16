"""scikit-learn compatibility of SparseBernoulliRBM and RBM features feeding a classifier."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sparsemlp.rbm_estimator import SparseBernoulliRBM  # noqa: E402

SMALL = SparseBernoulliRBM(n_components=8, epsilon=3.0, n_iter=5, clip=True, random_state=0)


@parametrize_with_checks([SMALL])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_rbm_features_feed_a_classifier():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    pipe = make_pipeline(SparseBernoulliRBM(n_components=200, epsilon=10, n_iter=15,
                                            learning_rate=0.05, random_state=0),
                         LogisticRegression(max_iter=2000))
    pipe.fit(Xtr, ytr)
    rbm = pipe[0]
    assert rbm.components_.shape == (200, 64)
    assert rbm.history_[-2]["train_recon"] < rbm.history_[0]["train_recon"]
    assert pipe.score(Xte, yte) > 0.85
    s = rbm.score_samples(Xte[:5])
    assert s.shape == (5,) and np.all(s <= 0)
    g = rbm.gibbs(Xte[:5])
    assert set(np.unique(g)) <= {0.0, 1.0}


def test_out_of_range_input_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(30, 6))
    with pytest.raises(ValueError, match=r"inputs in \[0, 1\].*clip=True"):
        SparseBernoulliRBM(n_components=4, n_iter=1).fit(X)


def test_example_rbm_features_feed_a_classifier():
    """examples/rbm_features_classifier.py runs and RBM features classify digits."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "rbm_features_classifier.py"
    spec = importlib.util.spec_from_file_location("rbm_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rbm_acc, raw_acc = mod.main(["--n-components", "150", "--n-iter", "5"])
    assert rbm_acc > 0.9 and raw_acc > 0.9


def test_momentum_and_persistent_are_parameters():
    X = (np.random.default_rng(0).random((60, 10)) > 0.5).astype(float)
    est = SparseBernoulliRBM(n_components=6, epsilon=2, n_iter=3, momentum=0.5, persistent=True,
                             random_state=0).fit(X)
    assert est.get_params()["persistent"] is True and est.rbm_.W.shape == (10, 6)
    assert est.history_[-1]["nnz"] < est.history_[0]["nnz"]
