"""Topology change of trained layers: SET, degree-preserving rewiring, importance pruning, one remap."""

from .importance import importance_prune
from .remap import RULES, apply, remap_optimizer
from .rewiring import evolve_degree_preserving, swap_rows
from .set import evolve, evolve_original, regrow
from .steps import EvolutionResult
from .thresholds import kept_positions, removal_mask, set_thresholds

__all__ = ["EvolutionResult", "evolve", "evolve_original", "regrow", "importance_prune", "removal_mask",
           "set_thresholds", "kept_positions", "evolve_degree_preserving", "swap_rows", "apply",
           "remap_optimizer", "RULES"]
