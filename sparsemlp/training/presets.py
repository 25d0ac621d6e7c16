"""Presets of a training run: the modes' defaults, topology names, the configuration error."""

__all__ = ["ConfigError", "TOPOLOGIES", "PREDEFINED", "CLASH_KINDS", "MODE_DEFAULTS", "RBM_DEFAULTS",
           "PRESETS", "preset_augmentation", "ADAM_LR", "NO_DATASET"]


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
        drop_last=True, legacy_rng=True, normalize="zscore", augment_shift=0, augment_flip=False,
    ),
    "default": dict(
        hidden=(1000, 1000, 1000), epochs=50, batch_size=32, lr=0.05, lr_schedule="cosine",
        momentum=0.9,
        weight_decay=2e-4, decay="coupled", activation="relu", output_activation="softmax",
        loss="cross_entropy", dropout=0.2, dropout_kind="inverted", init="he_uniform",
        er_law="bernoulli", epsilon=20.0, normal_std=0.1, dtype="float32",
        evolve_output=False, drop_last=False, legacy_rng=False, normalize="zscore",
        augment_shift=0, augment_flip=False,
    ),
}

# --preset NAME: named settings of a published variant, taken before the mode's defaults
# (fields given in a file or as flags still win). Only with mode "default" and the MLP.
PRESETS = {
    # The Keras SET-MLP of Mocanu et al. (Nature Communications 9:2383, 2018), the masked-dense
    # variant for CIFAR-10: 3072-4000-1000-4000-10, Erdős–Rényi masks with epsilon 20 (the
    # 4000-10 output layer is then dense), Glorot-uniform init, S-shaped ReLUs (Jin et al.,
    # AAAI 2016) and dropout 0.3 after every hidden layer, softmax and cross-entropy, SGD with
    # lr 0.01 and momentum 0.9, no weight decay, batch 100 (the incomplete batch dropped),
    # 1000 epochs, zeta 0.3 after every epoch, z-score inputs, shifts of up to a tenth of the
    # image and horizontal flips (see preset_augmentation).
    "keras": dict(
        hidden=(4000, 1000, 4000), epsilon=20.0, er_law="bernoulli", init="xavier_uniform",
        activation="srelu", output_activation="softmax", loss="cross_entropy", dropout=0.3,
        dropout_kind="inverted", epochs=1000, batch_size=100, drop_last=True, lr=0.01,
        lr_schedule="constant", momentum=0.9, weight_decay=0.0, decay="coupled",
        evolve_output=False, normalize="zscore",
    ),
}


def preset_augmentation(preset, image_shape):
    """The augmentation a preset asks for on a data set: ``(augment_shift, augment_flip)``.

    Parameters
    ----------
    preset : str or None
        The preset (``None``: no augmentation).
    image_shape : tuple of int or None
        ``(channels, height, width)`` of an image data set, None for other data.

    Returns
    -------
    shift : int
        Largest shift in pixels: for ``keras`` a tenth of the image width, rounded (3 on
        CIFAR-10's 32 x 32 images); 0 for data that are not images.
    flip : bool
        Random horizontal flips (``keras`` on images).
    """
    if preset != "keras" or image_shape is None:
        return 0, False
    return int(round(0.1 * image_shape[2])), True

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

#: ``dataset`` of a run whose model came without one (an imported, then pruned model):
#: ``python -m sparsemlp.evaluate`` then needs ``--dataset``.
NO_DATASET = "none"
