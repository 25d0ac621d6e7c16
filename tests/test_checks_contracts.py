"""training/checks.py: the augmentation, update-unit, regrowth and init_from refusals; check_xy; tips."""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import TrainConfig
from sparsemlp.training.checks import check_xy, divergence_advice
from sparsemlp.training.config import ConfigError


def _refused(want, **kw):
    with pytest.raises(ConfigError, match=f"^{re.escape(want)}$"):
        TrainConfig(**kw).resolve()


# ---- augmentation -----------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(augment_shift=2), dict(augment_flip=True)])
def test_augmentation_is_refused_for_the_rbm(kw):
    _refused("augmentation (--augment-shift, --augment-flip) is for the MLP. Drop it with "
             "--model rbm.", model="rbm", dataset="digits", **kw)


@pytest.mark.parametrize("kw", [dict(augment_shift=2), dict(augment_flip=True)])
def test_augmentation_needs_an_image_data_set(kw):
    with pytest.raises(ValueError, match="^augmentation needs image data: dataset 'synthetic' "):
        TrainConfig(dataset="synthetic", **kw).resolve()
    cfg = TrainConfig(dataset="digits", **kw).resolve()  # 8 x 8 images
    assert (cfg.augment_shift, cfg.augment_flip) == (kw.get("augment_shift", 0),
                                                     kw.get("augment_flip", False))


# ---- update_unit="steps" ----------------------------------------------------------------
@pytest.mark.parametrize("kw, got", [
    (dict(model="rbm"), "model='rbm', legacy_rng=False, prune_percentile=0"),
    (dict(legacy_rng=True), "model='mlp', legacy_rng=True, prune_percentile=0"),
    (dict(prune_percentile=12.5), "model='mlp', legacy_rng=False, prune_percentile=12.5"),
])
def test_update_steps_is_refused_where_it_cannot_apply(kw, got):
    _refused("update_unit='steps' changes an MLP's topology between optimizer steps from keyed "
             f"random streams, without importance pruning. Got {got}; use --update-unit epochs "
             "(or --mode default --model mlp --prune-percentile 0).", update_unit="steps", **kw)


def test_update_steps_is_taken_by_the_default_mlp():
    assert TrainConfig(update_unit="steps", update_every=3).resolve().update_unit == "steps"


# ---- regrowth rules -----------------------------------------------------------------------
@pytest.mark.parametrize("regrow", ["gradient", "gradient-sampled"])
def test_gradient_regrowth_cannot_keep_degrees(regrow):
    _refused(f"regrow={regrow!r} is a rule of --rewire set: it cannot keep every degree. "
             "Regrowing where the gradient is largest while each input and output regains "
             "exactly what it lost is a maximum-weight degree-constrained matching over all free "
             "positions of the rows and columns that lost connections (nearly all of them: "
             "dense), not a per-row or per-column top-k. Use --regrow random with --rewire "
             "degree-preserving, or --rewire set with --regrow gradient (degrees then drift).",
             regrow=regrow, rewire="degree-preserving")


@pytest.mark.parametrize("kw, got", [
    (dict(rewire="none", topology="static"), "model='mlp', rewire='none'"),
    (dict(model="rbm"), "model='rbm', rewire='set'"),
    (dict(model="rbm", rewire="degree-preserving"), "model='rbm', rewire='degree-preserving'"),
])
def test_gradient_regrowth_is_a_rule_of_set_on_the_mlp(kw, got):
    _refused(f"regrow='gradient' is a rule of --rewire set on the MLP. Got {got}; use "
             "--topology set (--rewire set) with --model mlp, or drop --regrow.",
             regrow="gradient", **kw)


@pytest.mark.parametrize("regrow", ["gradient", "gradient-sampled"])
def test_gradient_regrowth_is_taken_with_set_on_the_mlp(regrow):
    cfg = TrainConfig(regrow=regrow, rewire="set").resolve()
    assert (cfg.regrow, cfg.rewire, cfg.model) == (regrow, "set", "mlp")
    # random regrowth keeps every rewiring rule
    assert TrainConfig(rewire="degree-preserving").resolve().regrow == "random"
    assert TrainConfig(model="rbm").resolve().regrow == "random"


# ---- check_xy -----------------------------------------------------------------------------
# only the first layer's n_in and the last layer's n_out matter; the middle layer differs
# from both so that reading the wrong layer shows
MODEL = SimpleNamespace(layers=[SimpleNamespace(n_in=5, n_out=4), SimpleNamespace(n_in=4, n_out=3),
                                SimpleNamespace(n_in=3, n_out=2)])


def _raises(want, *args):
    with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
        check_xy(MODEL, *args)


def test_check_xy_accepts_and_returns_dense_and_sparse_data():
    X = np.arange(20, dtype=np.float64).reshape(4, 5)
    y = np.array([0, 1, 1, 0])
    Xd, yd = check_xy(MODEL, X, list(y), "X", "y")
    assert isinstance(Xd, np.ndarray) and np.array_equal(Xd, X)
    assert isinstance(yd, np.ndarray) and np.array_equal(yd, y)
    Xs, ys = check_xy(MODEL, sp.coo_matrix(X), y.astype(np.uint8), "X", "y")
    assert Xs.format == "csr" and np.array_equal(Xs.toarray(), X)
    assert ys.dtype == np.uint8
    # no samples' labels to check when there are no samples
    Xe, ye = check_xy(MODEL, sp.csr_matrix((0, 5)), np.array([], dtype=np.int64), "X", "y")
    assert Xe.shape == (0, 5) and ye.shape == (0,)


@pytest.mark.parametrize("make", [np.asarray, sp.csr_matrix])
def test_check_xy_names_a_wrong_width(make):
    X = make(np.ones((4, 3)))
    _raises("X_test has 3 features, but this SparseMLP was built for 5 inputs. Pass 5 columns "
            "or build a new model.", X, np.zeros(4, dtype=int), "X_test", "y_test")


def test_check_xy_names_a_label_shape_mismatch():
    _raises("y_test must have shape (4,) to match X_test. Got (3,).",
            np.ones((4, 5)), np.zeros(3, dtype=int), "X_test", "y_test")
    _raises("y must have shape (4,) to match X. Got (4, 1).",
            sp.csr_matrix(np.ones((4, 5))), np.zeros((4, 1), dtype=int), "X", "y")


@pytest.mark.parametrize("y", [[0.0, 1.0, 1.0, 0.0],   # floats, even whole ones in range
                               [-1, 0, 1, 1],          # below 0 (the rest in range)
                               [0, 1, 2, 1],           # n_out = 2 itself
                               [0, 1, 7, 0]])
def test_check_xy_refuses_labels_that_are_not_class_indices(y):
    _raises("y must hold integer class labels in [0, 2).", np.ones((4, 5)), np.asarray(y),
            "X", "y")


# ---- divergence_advice ------------------------------------------------------------------
def _cfg(**kw):
    return TrainConfig(**kw).resolve()


def _prep(how):
    return SimpleNamespace(scaling=SimpleNamespace(how=how))


def test_divergence_advice_on_small_inputs_names_the_rate_and_the_warm_up():
    X = np.array([[0.5, -1.0], [10.0, -10.0]])  # |x| = 10 is not "large"
    assert divergence_advice(_cfg(lr=0.05), X) == (
        "Try to lower the learning rate (now 0.05; e.g. --lr 0.005); ramp it up over the first "
        "epochs (--warmup-epochs 5).")
    # with a warm-up, momentum 0.9 (not above it) and sparse inputs: the rate only
    got = divergence_advice(_cfg(lr=0.3, warmup_epochs=2, momentum=0.9), sp.csr_matrix(X),
                            _prep("zscore"))
    assert got == "Try to lower the learning rate (now 0.3; e.g. --lr 0.03)."


def test_divergence_advice_names_a_high_sgd_momentum_only():
    X = np.zeros((2, 3))
    assert divergence_advice(_cfg(lr=0.1, warmup_epochs=1, momentum=0.99), X) == (
        "Try to lower the learning rate (now 0.1; e.g. --lr 0.01); lower the momentum (now "
        "0.99).")
    got = divergence_advice(_cfg(optimizer="adam", lr=0.01, warmup_epochs=1, momentum=0.99), X)
    assert got == "Try to lower the learning rate (now 0.01; e.g. --lr 0.001)."


@pytest.mark.parametrize("make", [np.asarray, sp.csr_matrix])
def test_divergence_advice_on_large_inputs(make):
    cfg = _cfg(lr=0.1, warmup_epochs=1)
    head = "Try to lower the learning rate (now 0.1; e.g. --lr 0.01); "
    X = make(np.array([[0.0, 3.0], [-12.5, 0.0]]))  # largest magnitude from a negative value
    assert divergence_advice(cfg, X, _prep("zscore")) == head + (
        "bound the inputs: after z-scoring they reach |x| = 12.5 (features that are almost "
        "constant in training); --normalize minmax keeps them in [0, 1].")
    scale = ("scale the inputs: they reach |x| = 12.5 (--normalize zscore or minmax on the "
             "command line; sparsemlp.data.normalize in Python).")
    assert divergence_advice(cfg, X) == head + scale
    assert divergence_advice(cfg, X, _prep("none")) == head + scale
    X = make(np.array([[0.0, 40.0], [-3.0, 0.0]]))  # largest from a positive value
    assert divergence_advice(cfg, X, _prep("minmax")) == head + scale.replace("12.5", "40")
    X = make(np.array([[10.25, 0.0]]))  # just above 10
    assert divergence_advice(cfg, X) == head + scale.replace("12.5", "10.2")
    assert divergence_advice(cfg, X, _prep("zscore")) == head + (
        "bound the inputs: after z-scoring they reach |x| = 10.2 (features that are almost "
        "constant in training); --normalize minmax keeps them in [0, 1].")


def test_divergence_advice_without_values():
    cfg = _cfg(lr=0.1, warmup_epochs=1)
    for X in (np.zeros((0, 3)), sp.csr_matrix((3, 4))):  # no samples; no stored value
        assert divergence_advice(cfg, X) == "Try to lower the learning rate (now 0.1; e.g. --lr 0.01)."


# ---- init_from --------------------------------------------------------------------------
@pytest.mark.parametrize("kw, got", [
    (dict(model="rbm"), "model='rbm', topology='set'"),
    (dict(topology="random"), "model='mlp', topology='random'"),
    (dict(model="rbm", topology="random"), "model='rbm', topology='random'"),
])
def test_init_from_is_refused_outside_an_mlp_of_its_own_topology(kw, got):
    _refused("init_from starts an MLP from trained weights and keeps their topology: use it with "
             "--model mlp and --topology set (SET evolves it) or static. Got " + got + ".",
             init_from="runs/a", **kw)


@pytest.mark.parametrize("topology", ["set", "static"])
def test_init_from_is_taken_by_a_set_or_static_mlp(topology):
    cfg = TrainConfig(init_from="runs/a", topology=topology).resolve()
    assert (cfg.init_from, cfg.topology) == ("runs/a", topology)
