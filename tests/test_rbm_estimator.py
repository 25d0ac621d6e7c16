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
