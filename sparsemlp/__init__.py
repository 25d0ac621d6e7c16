"""Sparsemlp: truly sparse neural networks trained with Sparse Evolutionary Training."""

from ._show_versions import show_versions
from ._version import __version__
from .evolution import EvolutionResult, evolve, importance_prune, set_thresholds
from .nn.layers import SparseLinear
from .nn.mlp import SparseMLP
from .nn.optim import SGD, Adam
from .rbm import SparseRBM
from .topology import erdos_renyi, init_values
from .training.config import TrainConfig
from .training.mlp import Callback, Trainer
from .training.rbm import RBMTrainer

__all__ = [
    "__version__", "show_versions", "TrainConfig", "SparseLinear", "SparseMLP", "SGD", "Adam",
    "Trainer", "Callback", "erdos_renyi", "init_values", "evolve", "importance_prune",
    "set_thresholds", "EvolutionResult", "SparseRBM", "RBMTrainer", "SparseMLPClassifier",
    "SparseBernoulliRBM",
]


def __getattr__(name):
    # scikit-learn costs ~1-4 s to import: load the estimators only when asked for
    if name == "SparseMLPClassifier":
        from .estimators.mlp import SparseMLPClassifier

        return SparseMLPClassifier
    if name == "SparseBernoulliRBM":
        from .estimators.rbm import SparseBernoulliRBM

        return SparseBernoulliRBM
    raise AttributeError(f"module 'sparsemlp' has no attribute {name!r}")
