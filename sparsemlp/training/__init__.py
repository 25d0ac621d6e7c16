"""Training runs: configuration, trainers of the MLP and the RBM, run directories and checkpoints."""

from .checkpoint import CheckpointError
from .config import ConfigError, TrainConfig
from .mlp import Callback, Trainer
from .rbm import RBMTrainer

__all__ = ["TrainConfig", "ConfigError", "Trainer", "RBMTrainer", "Callback", "CheckpointError"]
