"""TrainConfig: a scalar is accepted for every per-layer setting, in Python, TOML and on the CLI."""

import dataclasses
import json

import numpy as np
import pytest

from sparsemlp import _kernels
from sparsemlp.cli.train import main as train_main
from sparsemlp.training.build import build_model
from sparsemlp.training.config import ConfigError, TrainConfig

# The per-layer settings, found independently of config.PER_LAYER: the fields that take
# several values on the command line (nargs="+"), with a valid scalar and a topology that uses it.
PER_LAYER = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("nargs") == "+"}
SCALARS = {"hidden": (40, {}), "zeta": (0.25, {}),
           "fan_out": (4, dict(topology="regular", hidden=(32,))),
           "z": (4, dict(topology="clash-free", hidden=(32,), fan_out=(4,)))}


def test_every_per_layer_field_is_covered():
    assert PER_LAYER == set(SCALARS)


@pytest.mark.parametrize("name", sorted(SCALARS))
@pytest.mark.parametrize("wrap", [lambda v: v, np.int64, np.array, list],
                         ids=["scalar", "numpy-scalar", "0d-array", "list"])
def test_python_scalar_equals_one_element_tuple(name, wrap):
    v, extra = SCALARS[name]
    if wrap is np.int64 and isinstance(v, float):
        wrap = np.float64
    a = TrainConfig(**{name: wrap(v) if wrap is not list else [v]}, **extra).resolve()
    b = TrainConfig(**{name: (v,)}, **extra).resolve()
    assert a == b and getattr(a, name) == (v,)
    assert type(getattr(a, name)[0]) is type(v)  # plain Python numbers: JSON-ready
    json.loads(a.to_json())


def test_readme_library_config():
    cfg = TrainConfig(hidden=(500, 500), epsilon=10, zeta=0.3, epochs=20, lr=0.05).resolve()
    assert cfg.zeta == (0.3,) and cfg.zeta_for(2, 3) == 0.3


def test_toml_scalars(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text('hidden = 32\nzeta = 0.2\ntopology = "clash-free"\nfan_out = 4\nz = 4\n')
    assert train_main(["--config", str(p), "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["hidden"], cfg["zeta"], cfg["fan_out"], cfg["z"]) == ([32], [0.2], [4], [4])


def test_one_fan_out_and_z_apply_to_every_layer():
    """One value of fan_out / z builds every layer with it (independent oracle: the degrees)."""
    cfg = TrainConfig(hidden=(32, 16), topology="clash-free", fan_out=4, z=8).resolve()
    assert cfg.per_layer("fan_out", 3) == (4, 4, 4) and cfg.per_layer("z", 3) == (8, 8, 8)
    m = build_model(cfg, 64, 8, rng=np.random.default_rng(0), kernels=_kernels.get("numpy"))
    for la in m.layers:
        assert (np.diff(la.W.indptr) == 4).all()  # fan_out of every input
        assert la.schedule.z == 8


def test_cli_one_fan_out_trains(tmp_path, capsys):
    out = tmp_path / "r"
    assert train_main(["--dataset", "synthetic", "--synthetic-features", "16",
                       "--synthetic-classes", "4", "--synthetic-samples", "120", "--hidden", "8",
                       "--topology", "regular", "--fan-out", "2", "--epochs", "1", "-q",
                       "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["fan_out"] == [2]


@pytest.mark.parametrize("kw,msg", [
    (dict(topology="regular", fan_out=(4, 4, 4)), "fan_out needs 1 value .* or one value per "
                                                  "layer \\(2 for hidden=\\[32\\]\\). Got 3"),
    (dict(topology="clash-free", fan_out=4, z=(4, 4, 4)), "z needs 1 value"),
    (dict(zeta=(0.1, 0.2, 0.3)), "zeta needs 1 value or one per layer"),
    (dict(hidden="32"), "'hidden' .* must be an int"),
    (dict(zeta="0.3"), "'zeta' .* must be a float"),
])
def test_wrong_lengths_and_types(kw, msg):
    kw = {"hidden": 32, **kw}
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(**kw).resolve()


def test_adam_gets_its_own_default_learning_rate():
    """--optimizer adam without --lr takes Adam's 0.001, not SGD's 0.05 (steps 50x too large)."""
    assert TrainConfig(optimizer="adam").resolve().lr == 1e-3
    assert TrainConfig(optimizer="adam", model="rbm").resolve().lr == 1e-3
    assert TrainConfig(optimizer="adam", lr=0.02).resolve().lr == 0.02
    assert TrainConfig().resolve().lr == 0.05
    assert TrainConfig(mode="reference").resolve().lr == 0.01
