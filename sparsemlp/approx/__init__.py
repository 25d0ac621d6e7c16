"""Structured approximations of (trained) weight matrices within a parameter budget."""

from .base import (
    DENSE_LIMIT,
    Approximation,
    ApproximationFailedError,
    InfeasibleBudgetError,
    budget_for,
    from_arrays,
)
from .lowrank import LowRank, low_rank
from .semiseparable import Semiseparable, sss

__all__ = [
    "Approximation", "ApproximationFailedError", "InfeasibleBudgetError", "DENSE_LIMIT", "budget_for",
    "from_arrays", "LowRank", "low_rank", "Semiseparable", "sss",
]
