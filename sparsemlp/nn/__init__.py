"""Sparse network building blocks: CSR layers, the sparse MLP, activations and losses, optimizers."""

from .functions import ACTIVATIONS, LOSSES, kl_divergence, make_activation
from .layers import SparseLinear
from .mlp import SparseMLP
from .optim import SGD, Adam, lr_at, make_optimizer

__all__ = ["SparseLinear", "SparseMLP", "SGD", "Adam", "make_optimizer", "lr_at", "ACTIVATIONS",
           "LOSSES", "make_activation", "kl_divergence"]
