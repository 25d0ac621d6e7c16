"""The pruning error and the names of the criteria and compensations."""

__all__ = ["PruneError", "CRITERIA", "COMPENSATIONS", "SCOPES"]

#: Saliency criteria: which weights go.
CRITERIA = ("magnitude", "obd", "obs", "output_distance")
#: What happens to the weights that stay.
COMPENSATIONS = ("none", "obs", "refit")
#: Whether a density applies to every layer or to the pruned layers together.
SCOPES = ("layer", "global")


class PruneError(ValueError):
    """Pruning parameters, calibration inputs or a model that cannot be pruned as asked."""
