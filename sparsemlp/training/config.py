"""TrainConfig: the frozen single source of truth for a training run; TOML loading; validation."""

import dataclasses
import difflib
import json
import sys
from dataclasses import dataclass, field, fields

import numpy as np

from ..data.augment import IMAGE_SHAPES
from .checks import validate
from .presets import (  # noqa: F401 - importable from here, as before
    ADAM_LR,
    CLASH_KINDS,
    MODE_DEFAULTS,
    PREDEFINED,
    PRESETS,
    RBM_DEFAULTS,
    TOPOLOGIES,
    ConfigError,
    preset_augmentation,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TrainConfig", "MODE_DEFAULTS", "RBM_DEFAULTS", "TOPOLOGIES", "PREDEFINED", "load_toml",
           "ConfigError"]


def _f(default, help, **kw):
    return field(default=default, metadata={"help": help, **kw})


def _as_tuple(v):
    """A per-layer setting as a tuple of plain Python values: a scalar becomes ``(v,)``."""
    if isinstance(v, np.ndarray):
        v = v.ravel().tolist()
    elif isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
        v = (v,)
    return tuple(x.item() if isinstance(x, np.generic) else x for x in v)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; ``None`` fields take the chosen mode's default.

    ``mode="reference"`` reproduces the original SET-MLP demo (MSE with its output delta,
    sigmoid output, the original weight-decay rule, normal(0, 0.1) init with draws, the
    output layer evolved, batch 2, one legacy RandomState stream); ``mode="default"``
    uses softmax + cross-entropy, He-uniform init, dropout and coupled L2 decay;
    ``preset="keras"`` takes the Keras SET-MLP's settings first (``training.presets``).
    Call :meth:`resolve` to fill the preset's and the mode's defaults and validate.
    """

    mode: str = _f("default", "preset: 'default' (modern choices) or 'reference' (original SET demo)",
                   choices=("default", "reference"))
    preset: str = _f(None, "named settings of a published variant, taken before the mode's "
                     "defaults: 'keras' (the Keras SET-MLP of Mocanu et al. 2018 for CIFAR-10: "
                     "4000-1000-4000 SReLU units, dropout 0.3, SGD lr 0.01, batch 100, "
                     "shifts and flips; see the README)", choices=("keras",))
    model: str = _f("mlp", "model: 'mlp' (classifier) or 'rbm' (SET-RBM on the features; labels "
                    "unused)", choices=("mlp", "rbm"))
    # data
    dataset: str = _f("digits", "data set: digits (built in), fashion-mnist, mnist, madelon, "
                      "cifar10 (binary batches), synthetic, or a path to a .npz/.mat/.csv file")
    data_dir: str = _f(None, "directory searched for data set files")
    download: bool = _f(True, "download Fashion-MNIST (checksum-verified) when it is not found")
    label_column: int = _f(-1, "column of the label in a .csv data set (-1 = last)")
    test_size: float = _f(1 / 3, "test fraction when the data set has no test split")
    train_samples: int = _f(0, "use this many training samples, drawn at random (0 = all)")
    test_samples: int = _f(0, "use this many test samples, drawn at random (0 = all)")
    synthetic_samples: int = _f(2000, "samples of --dataset synthetic")
    synthetic_features: int = _f(100, "features of --dataset synthetic")
    synthetic_classes: int = _f(5, "classes of --dataset synthetic")
    normalize: str = _f(None, "feature scaling", choices=("zscore", "minmax", "none"))
    augment_shift: int = _f(None, "augmentation of image data sets: largest random shift in "
                            "pixels per training sample (0 = none, the default; seeded)")
    augment_flip: bool = _f(None, "augmentation of image data sets: random horizontal flips "
                            "(off by default)")
    # architecture and topology
    hidden: tuple = _f(None, "hidden layer sizes, e.g. --hidden 3000 3000 3000 (a single number: "
                       "one hidden layer)", nargs="+", type=int)
    epsilon: float = _f(None, "Erdős–Rényi sparsity: density = epsilon*(n_in+n_out)/(n_in*n_out)")
    er_law: str = _f(None, "topology law", choices=("bernoulli", "draws"))
    init: str = _f(None, "weight init", choices=("normal", "he_uniform", "xavier_uniform"))
    normal_std: float = _f(None, "standard deviation of init='normal'")
    activation: str = _f(None, "hidden activation ('srelu': S-shaped ReLU with four learned "
                         "parameters per unit, Jin et al. 2016)",
                         choices=("relu", "leaky_relu", "all_relu", "sigmoid", "tanh", "srelu"))
    output_activation: str = _f(None, "output activation", choices=("softmax", "sigmoid", "identity"))
    alpha: float = _f(0.6, "slope of leaky_relu / all_relu")
    loss: str = _f(None, "loss", choices=("mse", "cross_entropy"))
    dropout: float = _f(None, "dropout rate on hidden layers")
    dropout_kind: str = _f(None, "'inverted' (scale by 1/(1-rate) in training) or 'original' (the "
                           "SET tutorials: no scaling or backward mask in training, (1-rate)*z "
                           "at inference)", choices=("inverted", "original"))
    dtype: str = _f(None, "floating dtype (float32; float64 for the reference RBM)",
                    choices=("float32", "float64"))
    # SET
    topology: str = _f("set", "'set': Erdős–Rényi layers evolved by SET; 'static': Erdős–Rényi, "
                       "frozen (FixProb); 'random', 'regular', 'clash-free': the pre-defined "
                       "patterns of Dey et al. (see --fan-out, --z, --rewire)",
                       choices=TOPOLOGIES)
    rewire: str = _f("auto", "topology change after each epoch: 'set' (prune, regrow at random), "
                     "'degree-preserving' (prune, regrow by swaps that keep every degree and, "
                     "on clash-free layers, every cycle's banks), 'none' (frozen); 'auto' is "
                     "'set' for --topology set and 'none' otherwise",
                     choices=("auto", "none", "set", "degree-preserving"))
    fan_out: tuple = _f((), "pre-defined topologies: out-degree of every input, one value per "
                        "layer or one for all, e.g. --fan-out 50 10 ('random': total "
                        "connections only)",
                        nargs="+", type=int)
    z: tuple = _f((), "clash-free: memory banks (connections per clock cycle) per layer (or one "
                  "for all), e.g. --z 200 5; or give --cycles", nargs="+", type=int)
    cycles: int = _f(0, "clash-free: clock cycles per layer; z is balanced so that every layer "
                     "takes this many (0 = use --z)")
    clash_kind: int = _f(1, "clash-free address pattern: 1 random order per bank, 2 counters "
                         "from random starts, 3 as 2 with the same pattern in every sweep",
                         choices=CLASH_KINDS)
    dither: bool = _f(False, "clash-free: read the banks in a random lane order per sweep")
    swaps: float = _f(3.0, "degree-preserving rewiring: accepted swaps per regrown connection, "
                      "on average (more mixes better, costs more)")
    pad_inputs: int = _f(0, "zero-pad the features to this many inputs, e.g. 800 for 784 pixels "
                         "(Dey et al.; lets z divide the inputs); 0 = no padding")
    init_from: str = _f(None, "start from the weights and biases of a trained MLP (a run, "
                        "checkpoint or final/ directory, e.g. one written by python -m "
                        "sparsemlp.prune) instead of a random initialisation; its topology is "
                        "kept, and on the command line its sizes, activations and data set are "
                        "used unless given")
    zeta: tuple = _f((0.3,), "fraction rewired per epoch; one value or one per layer",
                     nargs="+", type=float)
    regrow: str = _f("random", "where --rewire set regrows: 'random' (SET), 'gradient' (RigL: "
                     "the missing connections with the largest |dL/dW| on a batch, blocked, no "
                     "dense gradient; new weights 0), 'gradient-sampled' (the best of "
                     "--regrow-candidates x k random missing connections)",
                     choices=("random", "gradient", "gradient-sampled"))
    regrow_batch: int = _f(256, "gradient regrowth: samples of the batch whose gradient scores "
                           "the missing connections")
    regrow_candidates: float = _f(10.0, "gradient-sampled regrowth: candidates scored per "
                                  "regrown connection (c >= 1)")
    prune_schedule: str = _f("constant", "zeta over the run: 'constant', or 'cosine' (RigL: "
                             "zeta * (1 + cos(pi * epoch / epochs)) / 2)",
                             choices=("constant", "cosine"))
    update_every: int = _f(1, "topology update every this many epochs (or optimizer steps, "
                           "with --update-unit steps)")
    update_unit: str = _f("epochs", "unit of --update-every: 'epochs' (after the epoch's "
                          "evaluation) or 'steps' (after every update_every-th optimizer step "
                          "of the run, mid-epoch too)", choices=("epochs", "steps"))
    evolve_output: bool = _f(None, "evolve the output layer too")
    prune_percentile: float = _f(0.0, "importance pruning: percentile of output neurons removed (0=off)")
    prune_every: int = _f(10, "importance pruning every this many epochs")
    prune_after: int = _f(200, "importance pruning only after this epoch")
    # optimisation
    epochs: int = _f(None, "number of epochs")
    batch_size: int = _f(None, "mini-batch size")
    drop_last: bool = _f(None, "drop the incomplete last batch of an epoch")
    optimizer: str = _f("sgd", "optimizer", choices=("sgd", "adam"))
    lr: float = _f(None, "learning rate (default: the mode's, 0.001 with --optimizer adam)")
    lr_schedule: str = _f(None, "learning-rate schedule",
                          choices=("constant", "step", "exponential", "cosine", "linear"))
    lr_gamma: float = _f(0.1, "decay factor of step/exponential schedules")
    lr_step_size: int = _f(30, "epochs per step of the step schedule")
    lr_min: float = _f(0.0, "final learning rate of cosine/linear schedules")
    warmup_epochs: int = _f(0, "epochs of linear learning-rate warm-up")
    momentum: float = _f(None, "SGD momentum")
    nesterov: bool = _f(False, "Nesterov momentum")
    weight_decay: float = _f(None, "weight decay")
    decay: str = _f(None, "'original' (SET: w += v - wd*w) or 'coupled' (L2 in the gradient)",
                    choices=("original", "coupled"))
    adam_beta1: float = _f(0.9, "Adam beta1")
    adam_beta2: float = _f(0.999, "Adam beta2")
    adam_eps: float = _f(1e-8, "Adam epsilon")
    # RBM (--model rbm)
    visible_units: str = _f("binary", "RBM visible units: 'binary' (data in [0, 1]) or 'gaussian' "
                            "(unit variance; standardise the data)",
                            choices=("binary", "gaussian"))
    cd_k: int = _f(1, "RBM: Gibbs steps per update (CD-k)")
    persistent: bool = _f(False, "RBM: persistent contrastive divergence (batch-size chains)")
    pll: str = _f(None, "RBM: test pseudo-log-likelihood per epoch: 'exact' (O(n*nnz)), "
                  "'stochastic' (one unit per sample), 'auto' (exact below 1e7 n*nnz), 'none'",
                  choices=("auto", "exact", "stochastic", "none"))
    ais_every: int = _f(None, "RBM: AIS test log-likelihood every this many epochs and at the "
                        "last (0 = never)")
    ais_chains: int = _f(100, "RBM: AIS chains")
    ais_betas: int = _f(1000, "RBM: AIS temperatures")
    # run
    seed: int = _f(0, "random seed (one seed makes the whole run reproducible)")
    legacy_rng: bool = _f(None, "one legacy RandomState stream in the original's order")
    threads: int = _f(0, "kernel threads (0 = all cores)")
    backend: str = _f("auto", "kernel backend", choices=("auto", "cython", "numba", "numpy"))
    eval_batch_size: int = _f(1024, "samples per evaluation chunk")
    out: str = _f(None, "run directory")
    checkpoint_every: int = _f(10, "checkpoint every this many epochs (0 = only final)")
    keep_checkpoints: int = _f(3, "number of epoch checkpoints kept")

    def __post_init__(self):
        # Per-layer settings (hidden, zeta, fan_out, z) accept a scalar, a list, a tuple or
        # a 1-D array; they are stored as tuples of Python numbers (hashable, JSON-ready).
        for name in PER_LAYER:
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _as_tuple(v))

    # ---------------------------------------------------------------------------------
    def resolve(self):
        """Fill ``None`` fields from ``PRESETS[preset]``, then ``MODE_DEFAULTS[mode]``; validate.

        Returns
        -------
        TrainConfig
            A complete, validated config.

        Raises
        ------
        ConfigError
            If a value is invalid (the message names the field, the rule and the fix).
        """
        if self.mode not in MODE_DEFAULTS:
            raise ConfigError(f"mode must be 'default' or 'reference'. Got {self.mode!r}.")
        defaults = dict(MODE_DEFAULTS[self.mode], ais_every=0, pll="none")
        if self.preset is not None:
            defaults.update(_preset_defaults(self))
        if self.model == "rbm":
            defaults.update(RBM_DEFAULTS[self.mode])
            if self.visible_units == "gaussian":
                defaults["normalize"] = "zscore"
        if self.optimizer == "adam":
            defaults["lr"] = ADAM_LR  # SGD's 0.05 (or 0.1) makes Adam's steps far too large
        fill = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        if self.rewire == "auto":
            fill["rewire"] = "set" if self.topology == "set" else "none"
        cfg = dataclasses.replace(self, **fill)
        validate(cfg)
        return cfg

    def per_layer(self, name, n_layers):
        """A per-layer setting with one value per layer (a single value is repeated).

        Parameters
        ----------
        name : {"zeta", "fan_out", "z"}
            The setting.
        n_layers : int
            Number of weight layers.

        Returns
        -------
        tuple
            ``n_layers`` values, or ``()`` when the setting is empty.
        """
        v = getattr(self, name)
        return v * n_layers if len(v) == 1 else v

    def zeta_for(self, layer, n_layers):
        """The zeta of one layer (a single value applies to all).

        Parameters
        ----------
        layer : int
            Layer index.
        n_layers : int
            Number of weight layers.

        Returns
        -------
        float
            The layer's zeta.
        """
        return self.zeta[0] if len(self.zeta) == 1 else self.zeta[layer]

    def to_dict(self):
        """Plain dict (tuples become lists) for JSON.

        Returns
        -------
        dict
            Field name -> value.
        """
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def to_json(self):
        """JSON text of :meth:`to_dict`.

        Returns
        -------
        str
            Indented JSON.
        """
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d, *, source="config"):
        """Build from a mapping, rejecting unknown keys with a suggestion.

        Parameters
        ----------
        d : mapping
            Field values (lists become tuples).
        source : str, default="config"
            Where the values come from, for messages.

        Returns
        -------
        TrainConfig
            Unresolved config.

        Raises
        ------
        ConfigError
            On an unknown key.
        """
        names = {f.name: f for f in fields(cls)}
        kw = {}
        for k, v in d.items():
            key = k.replace("-", "_")
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"Unknown setting {k!r} in {source}.{hint}")
            kw[key] = v  # per-layer scalars become tuples in __post_init__
        return cls(**kw)


def _preset_defaults(cfg):
    """The defaults of ``cfg.preset`` (before the mode's), refused where they cannot apply."""
    if cfg.preset not in PRESETS:
        return {}  # validate() names the choices
    if cfg.mode != "default" or cfg.model != "mlp":
        raise ConfigError(f"preset {cfg.preset!r} is a setting of the MLP in mode 'default'. Got "
                          f"mode={cfg.mode!r}, model={cfg.model!r}; drop --preset or use "
                          "--mode default --model mlp.")
    shift, flip = preset_augmentation(cfg.preset, IMAGE_SHAPES.get(cfg.dataset))
    return dict(PRESETS[cfg.preset], augment_shift=shift, augment_flip=flip)


# Settings with one value per layer (or, except hidden, one value for every layer): the
# fields that take several values on the command line.
PER_LAYER = tuple(f.name for f in fields(TrainConfig) if f.metadata.get("nargs") == "+")


def load_toml(path):
    """Read a TOML config file into a dict (top level or a ``[train]`` table).

    Parameters
    ----------
    path : str or path-like
        File to read.

    Returns
    -------
    dict
        Settings.

    Raises
    ------
    ConfigError
        If the file is missing or not valid TOML.
    """
    try:
        with open(path, "rb") as fh:
            d = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found. Check the --config path.") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder. Pass a TOML file to --config.") \
            from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror}). Check the "
                          "--config path and its permissions.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}. Write settings as "
                          "'name = value' lines (see --print-config).") from None
    if not isinstance(d.get("train", d), dict):
        raise ConfigError(f"config file {path}: [train] must be a table of settings.")
    return d.get("train", d)
