"""Sparsemlp: truly sparse neural networks trained with Sparse Evolutionary Training."""

from ._show_versions import show_versions
from ._version import __version__
from .evolution import EvolutionResult, evolve, importance_prune, set_thresholds
from .nn import SGD, Adam, SparseLinear, SparseMLP
from .rbm import SparseRBM
from .topology import erdos_renyi, init_values
from .training import Callback, RBMTrainer, TrainConfig, Trainer
from .training.loading import load_model

__all__ = [
    "__version__", "show_versions", "TrainConfig", "SparseLinear", "SparseMLP", "SGD", "Adam",
    "Trainer", "Callback", "erdos_renyi", "init_values", "evolve", "importance_prune",
    "set_thresholds", "EvolutionResult", "SparseRBM", "RBMTrainer", "SparseMLPClassifier",
    "SparseBernoulliRBM", "load_model",
]


def __getattr__(name):
    # scikit-learn costs ~1-4 s to import: load the estimators only when asked for
    if name in ("SparseMLPClassifier", "SparseBernoulliRBM"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'sparsemlp' has no attribute {name!r}")
