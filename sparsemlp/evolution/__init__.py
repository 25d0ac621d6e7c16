"""Topology change of trained layers: SET prune-and-regrow, degree-preserving rewiring, importance pruning."""

from .rewiring import evolve_degree_preserving, swap_rows
from .set import (
           EvolutionResult,
           evolve,
           evolve_original,
           importance_prune,
           regrow,
           removal_mask,
           set_thresholds,
)

__all__ = ["EvolutionResult", "evolve", "evolve_original", "regrow", "importance_prune", "removal_mask",
           "set_thresholds", "evolve_degree_preserving", "swap_rows"]
