"""Training runs: configuration, trainers of the MLP and the RBM, run directories and checkpoints."""

from .callbacks import Callback
from .checkpoint import CheckpointError
from .config import ConfigError, TrainConfig
from .loading import LoadedRun, load_model, load_run
from .mlp import Trainer
from .rbm import RBMTrainer

__all__ = ["TrainConfig", "ConfigError", "Trainer", "RBMTrainer", "Callback", "CheckpointError",
           "load_model", "load_run", "LoadedRun"]
