"""Structured approximations of (trained) weight matrices within a parameter budget."""

from .base import DENSE_LIMIT, Approximation, from_arrays
from .common import ApproximationFailedError, InfeasibleBudgetError, budget_for
from .displacement import ToeplitzLike, toeplitz_like
from .hierarchical import HEDLR, HODLR, BlockLowRank, HMatrix, hedlr, hmatrix, hodlr
from .lowrank import LowRank, low_rank
from .semiseparable import Semiseparable, sss
from .sparse_factors import SparseProduct, sparse_product

__all__ = [
    "Approximation", "ApproximationFailedError", "InfeasibleBudgetError", "DENSE_LIMIT", "budget_for",
    "from_arrays", "LowRank", "low_rank", "Semiseparable", "sss",
    "SparseProduct", "sparse_product", "BlockLowRank", "HODLR", "HEDLR", "HMatrix", "hodlr", "hedlr",
    "hmatrix", "ToeplitzLike", "toeplitz_like",
]
