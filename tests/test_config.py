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


# ---------------------------------------------------------------------------------------
# The rules of TrainConfig.resolve(), checked against the documented range of every field
# (written here by hand: the oracle is the range, not the code's messages).

# field -> (kind, low, low_open, high, high_open, settings that make the field checked)
RBM = dict(model="rbm")
RANGES = {
    "hidden": ("int", 1, False, None, False, {}),
    "epsilon": ("float", 0, True, None, False, {}),
    "zeta": ("float", 0, False, 1, True, {}),
    "epochs": ("int", 1, False, None, False, {}),
    "batch_size": ("int", 1, False, None, False, {}),
    "lr": ("float", 0, True, None, False, {}),
    "momentum": ("float", 0, False, 1, True, {}),
    "weight_decay": ("float", 0, False, None, False, {}),
    "dropout": ("float", 0, False, 1, True, {}),
    "test_size": ("float", 0, True, 1, True, {}),
    "train_samples": ("int", 0, False, None, False, {}),
    "test_samples": ("int", 0, False, None, False, {}),
    "synthetic_samples": ("int", 2, False, None, False, {}),
    "synthetic_features": ("int", 1, False, None, False, {}),
    "synthetic_classes": ("int", 2, False, None, False, {}),
    "normal_std": ("float", 0, True, None, False, {}),
    "prune_percentile": ("float", 0, False, 100, True, {}),
    "prune_every": ("int", 1, False, None, False, {}),
    "seed": ("int", 0, False, None, False, {}),
    "threads": ("int", 0, False, None, False, {}),
    "eval_batch_size": ("int", 1, False, None, False, {}),
    "checkpoint_every": ("int", 0, False, None, False, {}),
    "keep_checkpoints": ("int", 1, False, None, False, {}),
    "warmup_epochs": ("int", 0, False, None, False, {}),
    "adam_eps": ("float", 0, True, None, False, {}),
    "adam_beta1": ("float", 0, False, 1, True, {}),
    "adam_beta2": ("float", 0, False, 1, True, {}),
    "cycles": ("int", 0, False, None, False, {}),
    "swaps": ("float", 0, False, None, False, {}),
    "pad_inputs": ("int", 0, False, None, False, {}),
    "fan_out": ("int", 1, False, None, False, dict(topology="regular")),
    "z": ("int", 1, False, None, False, dict(topology="clash-free", fan_out=(4,))),
    "cd_k": ("int", 1, False, None, False, RBM),
    "ais_every": ("int", 0, False, None, False, RBM),
    "ais_chains": ("int", 1, False, None, False, RBM),
    "ais_betas": ("int", 2, False, None, False, RBM),
    "regrow_batch": ("int", 1, False, None, False, {}),
    "regrow_candidates": ("float", 1, False, None, False, {}),
    "update_every": ("int", 1, False, None, False, {}),
    "augment_shift": ("int", 0, False, None, False, {}),
}
PER_LAYER_FIELDS = ("hidden", "zeta", "fan_out", "z")


def _resolve(name, value, extra):
    v = (value,) if name in PER_LAYER_FIELDS else value
    return TrainConfig(**{"hidden": (40,), **extra, name: v}).resolve()


def _range_message(name, kind, low, low_open, high, high_open, got):
    lo = ("(" if low_open else "[") + str(low)
    hi = "inf)" if high is None else str(high) + (")" if high_open else "]")
    a = "an int" if kind == "int" else "a float"
    return (f"The {name!r} parameter of TrainConfig must be {a} in the range {lo}, {hi}. "
            f"Got {got!r} instead.")


def _outside(kind, bound, below):
    """The value just outside a closed bound (ints by one, floats by a thousandth)."""
    step = 1 if kind == "int" else 1e-3
    return bound - step if below else bound + step


@pytest.mark.parametrize("name", sorted(RANGES))
def test_every_field_takes_exactly_its_documented_range(name):
    kind, low, low_open, high, high_open, extra = RANGES[name]
    msg = _range_message(name, kind, low, low_open, high, high_open, None)
    refused = [low if low_open else _outside(kind, low, True)]
    accepted = [_outside(kind, low, False) if low_open else low]
    if high is not None:
        refused.append(high if high_open else _outside(kind, high, False))
        accepted.append(_outside(kind, high, True) if high_open else high)
    for v in accepted:
        assert getattr(_resolve(name, v, extra), name) == ((v,) if name in PER_LAYER_FIELDS
                                                           else v)
    for v in refused:
        with pytest.raises(ConfigError) as info:
            _resolve(name, v, extra)
        assert str(info.value) == msg.replace("Got None", f"Got {v!r}")
    if kind == "int":  # an int setting refuses a float, naming the kind
        with pytest.raises(ConfigError) as info:
            _resolve(name, low + 1.0, extra)
        assert str(info.value) == msg.replace("Got None", f"Got {low + 1.0!r}")


def test_every_numeric_field_has_a_documented_range():
    """The table above covers every numeric setting that resolve() range-checks."""
    checked = set()
    for f in dataclasses.fields(TrainConfig):
        if f.type in ("int", "float", int, float) or f.name in PER_LAYER_FIELDS:
            checked.add(f.name)
    unchecked = {"label_column", "alpha", "lr_gamma", "lr_step_size", "lr_min",
                 "prune_after", "clash_kind"}  # unchecked here, or (clash_kind) a choice
    assert checked - unchecked == set(RANGES)


CHOICES = {f.name: f.metadata["choices"] for f in dataclasses.fields(TrainConfig)
           if f.metadata.get("choices") and isinstance(f.metadata["choices"][0], str)}


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_choice_field_refuses_other_values_listing_the_choices(name):
    if name == "mode":  # checked first, before its defaults are looked up
        with pytest.raises(ConfigError, match="^mode must be 'default' or 'reference'. Got "
                                              "'Bogus'.$"):
            TrainConfig(mode="Bogus").resolve()
        return
    opts = ", ".join(repr(c) for c in CHOICES[name])
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{name: "Bogus"}).resolve()
    assert str(info.value) == (f"The {name!r} parameter of TrainConfig must be one of {opts}. "
                               "Got 'Bogus' instead.")


@pytest.mark.parametrize("kind", [1, 2, 3])
def test_clash_kinds_accepted(kind):
    assert TrainConfig(clash_kind=kind).resolve().clash_kind == kind


@pytest.mark.parametrize("kind", [0, 4, True, "1"])
def test_other_clash_kinds_refused(kind):
    with pytest.raises(ConfigError) as info:
        TrainConfig(clash_kind=kind).resolve()
    assert str(info.value) == f"clash_kind must be 1, 2 or 3. Got {kind!r}."


# (settings, the exact message): each rule's message names the problem and the fix.
H = dict(hidden=(40,))
RULES = [
    (dict(hidden=()), "hidden must list at least one hidden layer size."),
    (dict(hidden=(40, 20), zeta=(0.1, 0.2)),
     "zeta needs 1 value or one per layer (3). Got 2."),
    (dict(H, topology="regular", fan_out=(4, 4, 4)),
     "fan_out needs 1 value (for every layer) or one value per layer (2 for hidden=[40]). "
     "Got 3: [4, 4, 4]."),
    (dict(H, topology="clash-free", fan_out=(4,), z=(4, 4, 4)),
     "z needs 1 value (for every layer) or one value per layer (2 for hidden=[40]). "
     "Got 3: [4, 4, 4]."),
    (dict(H, topology="set", rewire="none"),
     "topology='set' contradicts rewire='none'. Use --topology static or drop --rewire."),
    (dict(H, topology="static", rewire="set"),
     "topology='static' contradicts rewire='set'. Use --topology set or drop --rewire."),
    (dict(H, topology="static", rewire="degree-preserving"),
     "topology='static' contradicts rewire='degree-preserving'. Use --topology set or drop "
     "--rewire."),
    (dict(H, topology="set", fan_out=(4,)),
     "fan_out applies to the pre-defined topologies only (random, regular, clash-free). Got "
     "topology='set'; pass --topology regular or clash-free, or drop --fan-out."),
    (dict(H, topology="static", z=(4,)),
     "z applies to the pre-defined topologies only (random, regular, clash-free). Got "
     "topology='static'; pass --topology regular or clash-free, or drop --z."),
    (dict(H, topology="regular"),
     "topology='regular' needs fan_out, one value per layer (2) or one for all, e.g. "
     "--fan-out 50 10 for hidden=[100]."),
    (dict(H, topology="clash-free"),
     "topology='clash-free' needs fan_out, one value per layer (2) or one for all, e.g. "
     "--fan-out 50 10 for hidden=[100]."),
    (dict(H, topology="regular", fan_out=(4,), z=(4,)),
     "z and cycles apply to topology 'clash-free' only. Drop them or pass --topology "
     "clash-free."),
    (dict(H, topology="random", cycles=5),
     "z and cycles apply to topology 'clash-free' only. Drop them or pass --topology "
     "clash-free."),
    (dict(H, topology="clash-free", fan_out=(4,)),
     "topology 'clash-free' needs either z (memory banks per layer, e.g. --z 200 5) or cycles "
     "(z balanced so every layer takes that many cycles, e.g. --cycles 200). Got z=[], "
     "cycles=0."),
    (dict(H, topology="clash-free", fan_out=(4,), z=(2,), cycles=3),
     "topology 'clash-free' needs either z (memory banks per layer, e.g. --z 200 5) or cycles "
     "(z balanced so every layer takes that many cycles, e.g. --cycles 200). Got z=[2], "
     "cycles=3."),
    (dict(H, loss="cross_entropy", output_activation="identity"),
     "loss='cross_entropy' needs output_activation 'softmax' or 'sigmoid'. Set "
     "--output-activation softmax or --loss mse."),
    (dict(H, model="rbm", topology="regular", fan_out=(4,)),
     "--model rbm supports --topology set or static (Erdős–Rényi, evolved or frozen). Got "
     "topology='regular', rewire='none'; the pre-defined topologies are for the MLP."),
    (dict(H, model="rbm", rewire="degree-preserving"),
     "--model rbm supports --topology set or static (Erdős–Rényi, evolved or frozen). Got "
     "topology='set', rewire='degree-preserving'; the pre-defined topologies are for the MLP."),
    (dict(model="rbm", hidden=(40, 20)),
     "--model rbm takes one hidden layer size (--hidden N). Got 2: [40, 20]."),
    (dict(H, model="rbm", zeta=(0.1, 0.2)), "--model rbm takes one zeta value. Got [0.1, 0.2]."),
    (dict(H, model="rbm", prune_percentile=5.0),
     "importance pruning (--prune-percentile) is for the MLP; set it to 0 with --model rbm."),
    (dict(H, model="rbm", visible_units="gaussian", normalize="minmax"),
     "Gaussian visible units have unit variance: standardise the data with --normalize zscore "
     "(or none if it already is)."),
]


@pytest.mark.parametrize("kw,msg", RULES, ids=[str(i) for i in range(len(RULES))])
def test_each_rule_gives_its_message(kw, msg):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kw).resolve()
    assert str(info.value) == msg


@pytest.mark.parametrize("kw", [
    dict(hidden=(40, 20), zeta=(0.1, 0.2, 0.3)),  # one zeta per layer
    dict(hidden=(40, 20), topology="regular", fan_out=(4, 4, 2)),  # one fan_out per layer
    dict(hidden=(40, 20), topology="clash-free", fan_out=(4,), z=(2, 2, 2)),
    dict(H, topology="clash-free", fan_out=(4,), cycles=3),  # cycles instead of z
    dict(H, topology="random"),  # 'random' needs no fan_out
    dict(H, topology="set", rewire="degree-preserving"),
    dict(H, topology="static", rewire="none"),
    dict(H, topology="regular", fan_out=(4,), rewire="set"),
    dict(H, loss="mse", output_activation="identity"),
    dict(H, loss="cross_entropy", output_activation="sigmoid"),
    dict(H, model="rbm", topology="static"),
    dict(H, model="rbm", visible_units="gaussian"),  # zscore by default
    dict(H, model="rbm", visible_units="gaussian", normalize="none"),
    dict(H, model="rbm", visible_units="binary", normalize="minmax"),
    dict(H, model="rbm", ais_every=0, cd_k=1),
])
def test_valid_combinations_are_accepted(kw):
    cfg = TrainConfig(**kw).resolve()
    for k, v in kw.items():
        assert getattr(cfg, k) == v


# ---------------------------------------------------------------------------------------
# Mode defaults, per-layer values, JSON and TOML.

from sparsemlp.training import presets  # noqa: E402
from sparsemlp.training.config import load_toml  # noqa: E402


@pytest.mark.parametrize("mode", ["default", "reference"])
@pytest.mark.parametrize("model", ["mlp", "rbm"])
def test_unset_fields_take_the_presets_of_the_mode_and_model(mode, model):
    """The oracle: presets.py's tables (RBM_DEFAULTS before MODE_DEFAULTS for the RBM)."""
    cfg = TrainConfig(mode=mode, model=model).resolve()
    want = dict(presets.MODE_DEFAULTS[mode])
    want.update(ais_every=0, pll="none")
    if model == "rbm":
        want.update(presets.RBM_DEFAULTS[mode])
    for k, v in want.items():
        assert getattr(cfg, k) == v, k
    assert cfg.rewire == "set"


def test_given_values_are_kept_and_only_none_is_filled():
    given = dict(hidden=(7,), epochs=3, batch_size=5, lr=0.5, momentum=0.25, dropout=0.5,
                 normalize="minmax", ais_every=2, pll="exact", evolve_output=True,
                 drop_last=True, legacy_rng=True)
    for model in ("mlp", "rbm"):
        cfg = TrainConfig(model=model, **given).resolve()
        assert {k: getattr(cfg, k) for k in given} == given


def test_gaussian_rbm_defaults_to_zscore_and_binary_to_minmax():
    assert TrainConfig(model="rbm", visible_units="gaussian").resolve().normalize == "zscore"
    assert TrainConfig(model="rbm").resolve().normalize == "minmax"
    # the MLP ignores visible_units
    assert TrainConfig(visible_units="gaussian").resolve().normalize == "zscore"
    assert TrainConfig(visible_units="gaussian", mode="reference",
                       model="rbm").resolve().normalize == "zscore"


@pytest.mark.parametrize("topology,rewire", [("set", "set"), ("static", "none"),
                                             ("random", "none"), ("regular", "none")])
def test_rewire_auto_follows_the_topology(topology, rewire):
    extra = {} if topology in ("set", "static", "random") else dict(fan_out=(4,))
    assert TrainConfig(hidden=(40,), topology=topology, **extra).resolve().rewire == rewire
    given = "degree-preserving" if topology != "static" else "none"
    assert TrainConfig(hidden=(40,), topology=topology, rewire=given,
                       **extra).resolve().rewire == given


def test_unknown_mode_is_named_before_any_default():
    with pytest.raises(ConfigError) as info:
        TrainConfig(mode="fast").resolve()
    assert str(info.value) == "mode must be 'default' or 'reference'. Got 'fast'."


def test_per_layer_and_zeta_for():
    cfg = TrainConfig(hidden=(8, 8), zeta=(0.1, 0.2, 0.3))
    assert cfg.per_layer("zeta", 3) == (0.1, 0.2, 0.3)
    assert [cfg.zeta_for(i, 3) for i in range(3)] == [0.1, 0.2, 0.3]
    one = TrainConfig(zeta=0.4, fan_out=(3,))
    assert one.per_layer("zeta", 4) == (0.4,) * 4 and one.per_layer("fan_out", 2) == (3, 3)
    assert [one.zeta_for(i, 4) for i in range(4)] == [0.4] * 4
    assert one.per_layer("z", 3) == ()


@pytest.mark.parametrize("value,want", [
    (np.array([[1, 2], [3, 4]]), (1, 2, 3, 4)),  # any array is flattened
    ("ab", ("ab",)), (b"ab", (b"ab",)), ({"a": 1}, ({"a": 1},)),  # not split into items
    ((np.int32(3), np.float32(0.5)), (3, 0.5)),
    (range(2), (0, 1)),
])
def test_per_layer_values_become_tuples_of_python_objects(value, want):
    got = TrainConfig(hidden=value).hidden
    assert got == want
    assert [type(x) for x in got] == [type(x) for x in want]


def test_json_round_trip_and_layout():
    cfg = TrainConfig(hidden=(5, 6), zeta=0.2, mode="reference").resolve()
    d = cfg.to_dict()
    assert d["hidden"] == [5, 6] and d["zeta"] == [0.2] and d["fan_out"] == []
    assert set(d) == {f.name for f in dataclasses.fields(TrainConfig)}
    text = cfg.to_json()
    assert json.loads(text) == d
    assert TrainConfig.from_dict(json.loads(text)) == cfg
    lines = text.splitlines()  # indented by 2, keys sorted
    assert lines[0] == "{" and lines[1].startswith('  "') and not lines[1].startswith('   ')
    keys = [ln.split('"')[1] for ln in lines if ln.startswith('  "')]
    assert keys == sorted(d)


def test_from_dict_takes_dashed_names_and_names_unknown_ones():
    assert TrainConfig.from_dict({"batch-size": 3, "fan_out": 2}) == \
        TrainConfig(batch_size=3, fan_out=(2,))
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"batch-sise": 3}, source="run.toml")
    assert str(info.value) == "Unknown setting 'batch-sise' in run.toml. Did you mean 'batch_size'?"
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"qqqqqqqq": 1})
    assert str(info.value) == "Unknown setting 'qqqqqqqq' in config."


def test_load_toml_reads_the_top_level_or_a_train_table(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('epochs = 3\nhidden = [4, 5]\n')
    assert load_toml(p) == {"epochs": 3, "hidden": [4, 5]}
    p.write_text('[train]\nepochs = 3\n[other]\nx = 1\n')
    assert load_toml(str(p)) == {"epochs": 3}


def test_load_toml_errors_name_the_file_and_the_fix(tmp_path):
    cases = []
    missing = tmp_path / "missing.toml"
    cases.append((missing, f"config file {missing} not found. Check the --config path."))
    cases.append((tmp_path, f"config file {tmp_path} is a folder. Pass a TOML file to --config."))
    (tmp_path / "f").write_text("")
    below_file = tmp_path / "f" / "c.toml"  # a file used as a folder: another OSError
    cases.append((below_file, f"config file {below_file} cannot be read (Not a directory). Check "
                              "the --config path and its permissions."))
    table = tmp_path / "t.toml"
    table.write_text('train = 3\n')
    cases.append((table, f"config file {table}: [train] must be a table of settings."))
    for path, msg in cases:
        with pytest.raises(ConfigError) as info:
            load_toml(path)
        assert str(info.value) == msg
    for name, content in (("bad.toml", b"epochs = = 3\n"), ("bin.toml", b"\xff\xfe epochs")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ConfigError, match=f"^config file {tmp_path / name} is not valid TOML: "
                                              ".*\\. Write settings as 'name = value' lines "
                                              "\\(see --print-config\\)\\.$"):
            load_toml(tmp_path / name)


def _fresh_config_module():
    """config.py executed anew (its class body runs now, not at the suite's first import).

    Under the module's own name (so that mutation testing reaches the class body), but not
    put into ``sys.modules``: the rest of the suite keeps the TrainConfig it imported.
    """
    import importlib.util

    from sparsemlp.training import config

    spec = importlib.util.spec_from_file_location(config.__name__, config.__file__)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_field_has_help_and_the_documented_default():
    """Every setting has a --help text, and the defaults are the documented ones."""
    fresh = _fresh_config_module().TrainConfig
    for f in dataclasses.fields(fresh):
        assert isinstance(f.metadata.get("help"), str) and f.metadata["help"], f.name
    d = fresh()
    assert (d.mode, d.model, d.dataset, d.topology, d.rewire, d.optimizer) == \
        ("default", "mlp", "digits", "set", "auto", "sgd")
    assert (d.zeta, d.fan_out, d.seed, d.threads, d.download, d.test_size) == \
        ((0.3,), (), 0, 0, True, 1 / 3)
    assert d.hidden is None and d.epochs is None  # the mode's
    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(fresh)}
    assert choices["mode"] == ("default", "reference") and choices["clash_kind"] == (1, 2, 3)
    assert choices["dataset"] is None
