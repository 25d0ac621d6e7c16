"""Scikit-learn estimators: SparseMLPClassifier and SparseBernoulliRBM (scikit-learn loaded on use)."""

__all__ = ["SparseMLPClassifier", "SparseBernoulliRBM"]


def __getattr__(name):
    # importing scikit-learn costs seconds: load an estimator's module only when it is asked for
    if name == "SparseMLPClassifier":
        from .mlp import SparseMLPClassifier

        return SparseMLPClassifier
    if name == "SparseBernoulliRBM":
        from .rbm import SparseBernoulliRBM

        return SparseBernoulliRBM
    raise AttributeError(f"module 'sparsemlp.estimators' has no attribute {name!r}")
