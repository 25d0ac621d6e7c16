"""Sparsemlp: truly sparse neural networks trained with Sparse Evolutionary Training."""

from ._show_versions import show_versions
from ._version import __version__
from .config import TrainConfig
from .evolution import EvolutionResult, evolve, importance_prune, set_thresholds
from .layers import SparseLinear
from .models import SparseMLP
from .optim import SGD, Adam
from .rbm import SparseRBM
from .rbm_trainer import RBMTrainer
from .topology import erdos_renyi, init_values
from .trainer import Callback, Trainer

__all__ = [
    "__version__", "show_versions", "TrainConfig", "SparseLinear", "SparseMLP", "SGD", "Adam",
    "Trainer", "Callback", "erdos_renyi", "init_values", "evolve", "importance_prune",
    "set_thresholds", "EvolutionResult", "SparseRBM", "RBMTrainer", "SparseMLPClassifier",
    "SparseBernoulliRBM",
]


def __getattr__(name):
    # scikit-learn costs ~1-4 s to import: load the estimators only when asked for
    if name == "SparseMLPClassifier":
        from .estimators import SparseMLPClassifier

        return SparseMLPClassifier
    if name == "SparseBernoulliRBM":
        from .rbm_estimator import SparseBernoulliRBM

        return SparseBernoulliRBM
    raise AttributeError(f"module 'sparsemlp' has no attribute {name!r}")
