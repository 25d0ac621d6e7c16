"""--preset keras: the Keras SET-MLP's published settings (Mocanu et al. 2018), and a tiny run with them."""

import json
import re

import numpy as np
import pytest

from sparsemlp import TrainConfig, Trainer
from sparsemlp.cli.train import main
from sparsemlp.data import load as load_data
from sparsemlp.training.config import ConfigError

# The Keras SET-MLP for CIFAR-10 as Mocanu et al. (Nature Communications 9:2383, 2018)
# published it, written out here (not read from the package's table): 3072-4000-1000-4000-10,
# masks of epsilon 20, Glorot-uniform weights, SReLU + Dropout(0.3) per hidden layer, softmax
# and categorical cross-entropy, SGD(lr=0.01, momentum=0.9) without weight decay, batch 100 of
# floor(n / 100) steps per epoch, 1000 epochs, zeta 0.3 every epoch, z-score inputs.
KERAS = dict(
    hidden=(4000, 1000, 4000), epsilon=20.0, er_law="bernoulli", init="xavier_uniform",
    activation="srelu", output_activation="softmax", loss="cross_entropy", dropout=0.3,
    dropout_kind="inverted", epochs=1000, batch_size=100, drop_last=True, optimizer="sgd",
    lr=0.01, lr_schedule="constant", momentum=0.9, nesterov=False, weight_decay=0.0,
    zeta=(0.3,), topology="set", rewire="set", regrow="random", update_every=1,
    evolve_output=False, normalize="zscore", legacy_rng=False, mode="default", model="mlp",
    dtype="float32",
)


@pytest.mark.parametrize("dataset, shift, flip", [
    ("cifar10", 3, True),        # width_shift_range 0.1 of 32 pixels, horizontal flips
    ("fashion-mnist", 3, True),  # 0.1 * 28 = 2.8 -> 3
    ("digits", 1, True),         # 0.1 * 8 = 0.8 -> 1
    ("synthetic", 0, False),     # not images: no augmentation
])
def test_preset_resolves_to_exactly_the_published_settings(dataset, shift, flip):
    cfg = TrainConfig(preset="keras", dataset=dataset).resolve()
    assert {k: getattr(cfg, k) for k in KERAS} == KERAS
    assert (cfg.augment_shift, cfg.augment_flip) == (shift, flip)
    # everything else is the default mode's
    default = TrainConfig(dataset=dataset).resolve().to_dict()
    other = {k for k, v in cfg.to_dict().items() if default[k] != v}
    assert other <= set(KERAS) | {"preset", "augment_shift", "augment_flip"}


def test_given_values_win_over_the_preset():
    cfg = TrainConfig(preset="keras", hidden=(20,), dropout=0.1, augment_flip=False,
                      augment_shift=0, lr=0.5).resolve()
    assert (cfg.hidden, cfg.dropout, cfg.augment_flip, cfg.augment_shift, cfg.lr) == \
        ((20,), 0.1, False, 0, 0.5)
    assert cfg.activation == "srelu" and cfg.batch_size == 100
    assert TrainConfig(preset="keras", optimizer="adam").resolve().lr == 0.001


@pytest.mark.parametrize("kw, got", [(dict(mode="reference"), "mode='reference', model='mlp'"),
                                     (dict(model="rbm"), "mode='default', model='rbm'"),
                                     (dict(mode="reference", model="rbm"),
                                      "mode='reference', model='rbm'")])
def test_preset_is_refused_outside_the_default_mlp(kw, got):
    # the whole message: what was given, and both fixes
    want = (f"preset 'keras' is a setting of the MLP in mode 'default'. Got {got}; drop "
            "--preset or use --mode default --model mlp.")
    with pytest.raises(ConfigError, match=f"^{re.escape(want)}$"):
        TrainConfig(preset="keras", **kw).resolve()


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="'preset' parameter of TrainConfig must be one of "
                                          "'keras'"):
        TrainConfig(preset="tensorflow").resolve()


def test_a_tiny_run_with_the_preset_trains():
    ds = load_data("digits", rng=np.random.default_rng(0))
    # digits' 8x8 images with the preset's flips and 1-pixel shifts are hard: it learns slowly
    cfg = TrainConfig(preset="keras", hidden=(100, 50, 100), epochs=6, batch_size=32).resolve()
    assert (cfg.augment_shift, cfg.augment_flip, cfg.lr) == (1, True, 0.01)
    tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, verbose=False)
    assert [a.name for a in tr.model.activations] == ["srelu"] * 3 + ["softmax"]
    assert tr.model.dropout == 0.3
    tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
    losses = [r["train_loss"] for r in tr.history.records]
    assert losses[-1] < 0.8 * losses[0]
    assert tr.history.records[-1]["test_accuracy"] > 0.5  # 10 classes


def test_cli_preset(tmp_path, capsys):
    assert main(["--preset", "keras", "--dataset", "cifar10", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["preset"], cfg["hidden"], cfg["activation"], cfg["augment_shift"]) == \
        ("keras", [4000, 1000, 4000], "srelu", 3)
    out = tmp_path / "run"
    assert main(["--preset", "keras", "--hidden", "40", "--epochs", "2", "--batch-size", "64",
                 "-q", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert (saved["preset"], saved["activation"], saved["dropout"]) == ("keras", "srelu", 0.3)
    assert main(["--resume", str(out), "--epochs", "3", "-q"]) == 0
