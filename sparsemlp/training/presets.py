"""Presets of a training run: the modes' defaults, topology names, the configuration error."""

__all__ = ["ConfigError", "TOPOLOGIES", "PREDEFINED", "CLASH_KINDS", "MODE_DEFAULTS", "RBM_DEFAULTS",
           "ADAM_LR"]


class ConfigError(ValueError):
    """A configuration value, file or combination is invalid (CLI exit code 2)."""


# --topology values; the last three are pre-defined (Dey et al.) and need --fan-out.
TOPOLOGIES = ("set", "static", "random", "regular", "clash-free")
PREDEFINED = ("random", "regular", "clash-free")
CLASH_KINDS = (1, 2, 3)


# Fields left None take the value of the chosen mode (see MODE_DEFAULTS).
MODE_DEFAULTS = {
    "reference": dict(
        hidden=(3000, 3000, 3000), epochs=100, batch_size=2, lr=0.01, lr_schedule="constant",
        momentum=0.9,
        weight_decay=2e-4, decay="original", activation="relu", output_activation="sigmoid",
        loss="mse", dropout=0.0, dropout_kind="original", init="normal", er_law="draws",
        evolve_output=True, epsilon=20.0, normal_std=0.1, dtype="float32",
        drop_last=True, legacy_rng=True, normalize="zscore",
    ),
    "default": dict(
        hidden=(1000, 1000, 1000), epochs=50, batch_size=32, lr=0.05, lr_schedule="cosine",
        momentum=0.9,
        weight_decay=2e-4, decay="coupled", activation="relu", output_activation="softmax",
        loss="cross_entropy", dropout=0.2, dropout_kind="inverted", init="he_uniform",
        er_law="bernoulli", epsilon=20.0, normal_std=0.1, dtype="float32",
        evolve_output=False, drop_last=False, legacy_rng=False, normalize="zscore",
    ),
}

# --model rbm: taken before MODE_DEFAULTS (fields the RBM does not use keep the MLP's).
RBM_DEFAULTS = {
    # the original SET-RBM demo (Mocanu et al. 2018): COIL20 as given (already in [0, 1])
    "reference": dict(
        hidden=(200,), epsilon=10.0, epochs=1000, batch_size=10, lr=0.1,
        lr_schedule="constant", momentum=0.0, weight_decay=2e-7, decay="original",
        init="normal", normal_std=0.05, er_law="draws", drop_last=True, legacy_rng=True,
        normalize="none", ais_every=100, pll="stochastic", dtype="float64",
    ),
    "default": dict(
        hidden=(200,), epsilon=10.0, epochs=30, batch_size=10, lr=0.05,
        lr_schedule="constant", momentum=0.5, weight_decay=1e-4, decay="coupled",
        init="normal", normal_std=0.05, er_law="bernoulli", drop_last=False, legacy_rng=False,
        normalize="minmax", ais_every=10, pll="auto",
    ),
}

#: Learning rate of ``optimizer="adam"`` when none is given (Kingma & Ba 2015's default).
ADAM_LR = 1e-3
