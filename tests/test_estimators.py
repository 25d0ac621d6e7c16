"""scikit-learn compatibility of SparseMLPClassifier (parametrize_with_checks) and basic use."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sparsemlp import SparseMLPClassifier  # noqa: E402

# Small, stable, single-thread instances keep the checks fast.
SMALL = SparseMLPClassifier(hidden_layer_sizes=(32,), epsilon=5.0, max_iter=20, n_threads=1,
                            random_state=0)


@parametrize_with_checks([SMALL])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_digits_accuracy_and_attributes():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    clf = SparseMLPClassifier(hidden_layer_sizes=(200, 200), max_iter=15, random_state=0)
    clf.fit(sc.transform(Xtr), ytr)
    assert clf.score(sc.transform(Xte), yte) > 0.9
    assert len(clf.coefs_) == 3 and clf.coefs_[0].shape == (64, 200)
    assert clf.n_iter_ == 15 and len(clf.history_) == 15
    # same seed, same model
    clf2 = SparseMLPClassifier(hidden_layer_sizes=(200, 200), max_iter=15, random_state=0)
    clf2.fit(sc.transform(Xtr), ytr)
    for a, b in zip(clf.coefs_, clf2.coefs_):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)
