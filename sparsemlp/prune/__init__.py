"""Post-hoc pruning of trained networks: magnitude, OBD, OBS and output distance, with compensation."""

from .core import prune
from .errors import COMPENSATIONS, CRITERIA, SCOPES, PruneError
from .obs import obs_path
from .report import LayerReport, PruneReport

__all__ = ["prune", "PruneReport", "LayerReport", "PruneError", "CRITERIA", "COMPENSATIONS",
           "SCOPES", "obs_path"]
