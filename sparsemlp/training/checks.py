"""The rules of a TrainConfig: ranges of every field, topology and RBM combinations."""

from dataclasses import fields

import numpy as np

from .._validation import check_array, check_param
from ..data.augment import image_shape
from .presets import CLASH_KINDS, PREDEFINED, ConfigError

__all__ = ["validate", "divergence_advice"]


def validate(self):
    """Check every field and combination of a config whose mode defaults are filled.

    Parameters
    ----------
    self : TrainConfig
        The config (called ``self``: these are the config's own rules).

    Raises
    ------
    ConfigError
        If a value is invalid (the message names the field, the rule and the fix).
    """
    try:
        for f in fields(self):
            v = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and v is not None and isinstance(choices[0], str):
                check_param(f.name, v, "str", options=choices, owner="TrainConfig")
        hp = dict(owner="TrainConfig")
        if not self.hidden:
            raise ConfigError("hidden must list at least one hidden layer size.")
        for h in self.hidden:
            check_param("hidden", h, "int", low=1, **hp)
        check_param("epsilon", self.epsilon, "float", low=0, low_open=True, **hp)
        for z in self.zeta:
            check_param("zeta", z, "float", low=0, high=1, high_open=True, **hp)
        n_layers = len(self.hidden) + 1
        if len(self.zeta) not in (1, n_layers):
            raise ConfigError(
                f"zeta needs 1 value or one per layer ({n_layers}). Got {len(self.zeta)}."
            )
        check_param("epochs", self.epochs, "int", low=1, **hp)
        check_param("batch_size", self.batch_size, "int", low=1, **hp)
        check_param("lr", self.lr, "float", low=0, low_open=True, **hp)
        check_param("momentum", self.momentum, "float", low=0, high=1, high_open=True, **hp)
        check_param("weight_decay", self.weight_decay, "float", low=0, **hp)
        check_param("dropout", self.dropout, "float", low=0, high=1, high_open=True, **hp)
        check_param("test_size", self.test_size, "float", low=0, high=1, low_open=True,
                    high_open=True, **hp)
        for k in ("train_samples", "test_samples"):
            check_param(k, getattr(self, k), "int", low=0, **hp)
        check_param("synthetic_samples", self.synthetic_samples, "int", low=2, **hp)
        check_param("synthetic_features", self.synthetic_features, "int", low=1, **hp)
        check_param("synthetic_classes", self.synthetic_classes, "int", low=2, **hp)
        check_param("normal_std", self.normal_std, "float", low=0, low_open=True, **hp)
        check_param("prune_percentile", self.prune_percentile, "float", low=0, high=100,
                    high_open=True, **hp)
        check_param("prune_every", self.prune_every, "int", low=1, **hp)
        check_param("seed", self.seed, "int", low=0, **hp)
        check_param("threads", self.threads, "int", low=0, **hp)
        check_param("eval_batch_size", self.eval_batch_size, "int", low=1, **hp)
        check_param("checkpoint_every", self.checkpoint_every, "int", low=0, **hp)
        check_param("keep_checkpoints", self.keep_checkpoints, "int", low=1, **hp)
        check_param("warmup_epochs", self.warmup_epochs, "int", low=0, **hp)
        check_param("adam_eps", self.adam_eps, "float", low=0, low_open=True, **hp)
        for b in ("adam_beta1", "adam_beta2"):
            check_param(b, getattr(self, b), "float", low=0, high=1, high_open=True, **hp)
        _validate_regrowth(self)
        if self.init_from is not None and (self.model != "mlp"
                                           or self.topology not in ("set", "static")):
            raise ConfigError(f"init_from starts an MLP from trained weights and keeps their "
                              f"topology: use it with --model mlp and --topology set (SET "
                              f"evolves it) or static. Got model={self.model!r}, "
                              f"topology={self.topology!r}.")
        if self.model == "rbm":
            _validate_rbm(self)
        _validate_topology(self, n_layers)
        if self.loss == "cross_entropy" and self.output_activation == "identity":
            raise ConfigError("loss='cross_entropy' needs output_activation 'softmax' or "
                              "'sigmoid'. Set --output-activation softmax or --loss mse.")
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None

def _validate_regrowth(self):
    hp = dict(owner="TrainConfig")
    check_param("regrow_batch", self.regrow_batch, "int", low=1, **hp)
    check_param("regrow_candidates", self.regrow_candidates, "float", low=1, **hp)
    check_param("update_every", self.update_every, "int", low=1, **hp)
    check_param("augment_shift", self.augment_shift, "int", low=0, **hp)
    if self.augment_shift or self.augment_flip:
        if self.model != "mlp":
            raise ConfigError("augmentation (--augment-shift, --augment-flip) is for the MLP. "
                              "Drop it with --model rbm.")
        image_shape(self.dataset)
    if self.update_unit == "steps" and (self.model != "mlp" or self.legacy_rng
                                        or self.prune_percentile):
        raise ConfigError(f"update_unit='steps' changes an MLP's topology between optimizer "
                          f"steps from keyed random streams, without importance pruning. Got "
                          f"model={self.model!r}, legacy_rng={self.legacy_rng}, "
                          f"prune_percentile={self.prune_percentile:g}; use --update-unit epochs "
                          "(or --mode default --model mlp --prune-percentile 0).")
    if self.regrow != "random" and self.rewire == "degree-preserving" and self.model == "mlp":
        raise ConfigError(f"regrow={self.regrow!r} is a rule of --rewire set: it cannot keep "
                          "every degree. Regrowing where the gradient is largest while each "
                          "input and output regains exactly what it lost is a maximum-weight "
                          "degree-constrained matching over all free positions of the rows and "
                          "columns that lost connections (nearly all of them: dense), not a "
                          "per-row or per-column top-k. Use --regrow random with --rewire "
                          "degree-preserving, or --rewire set with --regrow gradient (degrees "
                          "then drift).")
    if self.regrow != "random" and (self.rewire != "set" or self.model != "mlp"):
        raise ConfigError(f"regrow={self.regrow!r} is a rule of --rewire set on the MLP. Got "
                          f"model={self.model!r}, rewire={self.rewire!r}; use --topology set "
                          "(--rewire set) with --model mlp, or drop --regrow.")


def _validate_topology(self, n_layers):
    hp = dict(owner="TrainConfig")
    check_param("cycles", self.cycles, "int", low=0, **hp)
    check_param("swaps", self.swaps, "float", low=0, **hp)
    check_param("pad_inputs", self.pad_inputs, "int", low=0, **hp)
    if self.clash_kind not in CLASH_KINDS or isinstance(self.clash_kind, bool):
        raise ConfigError(f"clash_kind must be 1, 2 or 3. Got {self.clash_kind!r}.")
    for name in ("fan_out", "z"):
        for v in getattr(self, name):
            check_param(name, v, "int", low=1, **hp)
        if len(getattr(self, name)) not in (0, 1, n_layers):
            raise ConfigError(f"{name} needs 1 value (for every layer) or one value per "
                              f"layer ({n_layers} for hidden={list(self.hidden)}). Got "
                              f"{len(getattr(self, name))}: {list(getattr(self, name))}.")
    flag = {"set": "--topology static", "static": "--topology set"}
    if (self.topology, self.rewire) in (("set", "none"), ("static", "set"),
                                        ("static", "degree-preserving")):
        raise ConfigError(f"topology={self.topology!r} contradicts rewire={self.rewire!r}. Use "
                          f"{flag[self.topology]} or drop --rewire.")
    pre = self.topology in PREDEFINED
    if not pre:
        for name in ("fan_out", "z"):
            if getattr(self, name):
                raise ConfigError(f"{name} applies to the pre-defined topologies only "
                                  f"({', '.join(PREDEFINED)}). Got topology={self.topology!r}; "
                                  "pass --topology regular or clash-free, or drop "
                                  f"--{name.replace('_', '-')}.")
        return
    if not self.fan_out and self.topology != "random":
        raise ConfigError(f"topology={self.topology!r} needs fan_out, one value per layer "
                          f"({n_layers}) or one for all, e.g. --fan-out 50 10 for "
                          "hidden=[100].")
    if self.topology != "clash-free":
        if self.z or self.cycles:
            raise ConfigError("z and cycles apply to topology 'clash-free' only. Drop them "
                              "or pass --topology clash-free.")
        return
    if bool(self.z) == bool(self.cycles):
        raise ConfigError("topology 'clash-free' needs either z (memory banks per layer, e.g. "
                          "--z 200 5) or cycles (z balanced so every layer takes that many "
                          f"cycles, e.g. --cycles 200). Got z={list(self.z)}, "
                          f"cycles={self.cycles}.")

def _validate_rbm(self):
    hp = dict(owner="TrainConfig")
    if self.topology not in ("set", "static") or self.rewire == "degree-preserving":
        raise ConfigError(f"--model rbm supports --topology set or static (Erdős–Rényi, "
                          f"evolved or frozen). Got topology={self.topology!r}, "
                          f"rewire={self.rewire!r}; the pre-defined topologies are for the "
                          "MLP.")
    if len(self.hidden) != 1:
        raise ConfigError(f"--model rbm takes one hidden layer size (--hidden N). Got "
                          f"{len(self.hidden)}: {list(self.hidden)}.")
    if len(self.zeta) != 1:
        raise ConfigError(f"--model rbm takes one zeta value. Got {list(self.zeta)}.")
    if self.prune_percentile:
        raise ConfigError("importance pruning (--prune-percentile) is for the MLP; set it to "
                          "0 with --model rbm.")
    check_param("cd_k", self.cd_k, "int", low=1, **hp)
    check_param("ais_every", self.ais_every, "int", low=0, **hp)
    check_param("ais_chains", self.ais_chains, "int", low=1, **hp)
    check_param("ais_betas", self.ais_betas, "int", low=2, **hp)
    if self.visible_units == "gaussian" and self.normalize == "minmax":
        raise ConfigError("Gaussian visible units have unit variance: standardise the data "
                          "with --normalize zscore (or none if it already is).")


def divergence_advice(cfg, X, preprocessing=None):
    """What to change after a training run diverged, from its settings and the inputs' range.

    Parameters
    ----------
    cfg : TrainConfig
        The run's resolved configuration.
    X : ndarray or sparse matrix
        The training inputs (as scaled for training).
    preprocessing : Preprocessing, optional
        The run's label map and scaling (``scaling.how`` names the scaling applied).

    Returns
    -------
    str
        ``"Try to ...; ...."``: one sentence of tips.
    """
    tips = [f"lower the learning rate (now {cfg.lr:g}; e.g. --lr {cfg.lr / 10:g})"]
    if not cfg.warmup_epochs:
        tips.append("ramp it up over the first epochs (--warmup-epochs 5)")
    if cfg.momentum and cfg.optimizer == "sgd" and cfg.momentum > 0.9:
        tips.append(f"lower the momentum (now {cfg.momentum:g})")
    v = X.data if hasattr(X, "tocsr") else X
    big = max(float(v.max()), -float(v.min())) if v.size else 0.0
    how = None if preprocessing is None else preprocessing.scaling.how
    if big > 10 and how == "zscore":
        tips.append(f"bound the inputs: after z-scoring they reach |x| = {big:.3g} (features "
                    "that are almost constant in training); --normalize minmax keeps them in "
                    "[0, 1]")
    elif big > 10:
        tips.append(f"scale the inputs: they reach |x| = {big:.3g} (--normalize zscore or "
                    "minmax on the command line; sparsemlp.data.normalize in Python)")
    return "Try to " + "; ".join(tips) + "."


def check_xy(model, X, y, xn, yn):
    """Validate training or test data of an MLP.

    Features are checked against the model's inputs, labels as integer class indices of
    its outputs.

    Parameters
    ----------
    model : SparseMLP
        The model (its first layer's ``n_in`` and last layer's ``n_out``).
    X : array-like or scipy.sparse matrix
        Samples, shape (n_samples, n_in).
    y : array-like
        Class indices, shape (n_samples,).
    xn, yn : str
        Names of ``X`` and ``y`` in error messages.

    Returns
    -------
    X : ndarray or scipy.sparse.csr_matrix
        Validated features (sparse input as CSR).
    y : ndarray
        The labels.

    Raises
    ------
    ValueError
        Naming the problem and the fix: wrong width, shape mismatch, labels outside
        ``[0, n_out)`` or not integers.
    """
    import scipy.sparse as sp

    n_in = model.layers[0].n_in
    if sp.issparse(X):
        if X.shape[1] != n_in:
            raise ValueError(f"{xn} has {X.shape[1]} features, but this SparseMLP was built "
                             f"for {n_in} inputs. Pass {n_in} columns or build a new model.")
        X = X.tocsr()
    else:
        X = check_array(X, xn, n_cols=n_in, owner="SparseMLP")
    y = np.asarray(y)
    n_out = model.layers[-1].n_out
    if y.shape != (X.shape[0],):
        raise ValueError(f"{yn} must have shape ({X.shape[0]},) to match {xn}. Got {y.shape}.")
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= n_out)):
        raise ValueError(f"{yn} must hold integer class labels in [0, {n_out}).")
    return X, y
