"""sparsemlp.export without a compiler: literals, tables, determinism, scaling, errors, registry."""

import dataclasses
import re

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp import SparseLinear, SparseMLP, SparseRBM
from sparsemlp._rng import Streams
from sparsemlp.cli import train as train_cli
from sparsemlp.cli.train import load_dataset
from sparsemlp.data import Scaling, normalize
from sparsemlp.export import UNROLLED_MAX_NNZ, ExportError, InputScaling, register_layer_emitter, to_c
from sparsemlp.export import __main__ as export_cli
from sparsemlp.export._emit import _LAYER_EMITTERS, hex_literals
from sparsemlp.export._emit_csr import CSREmitter
from sparsemlp.export._source import input_scaling, load_source, run_preprocessing, run_test_set
from sparsemlp.nn.functions import ACTIVATIONS
from sparsemlp.training.checkpoint import CheckpointError


def small_mlp(sizes=(12, 9, 7, 4), seed=0, dtype=np.float32, **kw):
    rng = np.random.default_rng(seed)
    m = SparseMLP.erdos_renyi(list(sizes), epsilon=3, rng=rng, dtype=dtype, **kw)
    for la in m.layers:
        la.b[:] = rng.standard_normal(la.n_out)
    return m


def doc(path):
    """A header's text with the comment line breaks and ' * ' leaders removed."""
    return " ".join(re.sub(r"^ \* ?", "", line) for line in open(path).read().splitlines())


# -- literals ----------------------------------------------------------------------------
def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hex_literals_read_back_bit_exact(dtype):
    info = np.finfo(dtype)
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, 1.0, -2.5, info.max, -info.max, info.tiny, info.smallest_subnormal,
               -info.smallest_subnormal, info.eps, 1 / 3]
    v = np.concatenate([np.array(special, dtype),
                        (rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000))
                        .astype(dtype)])
    lits = hex_literals(v, "f" if dtype == np.float32 else "")
    for lit in lits:  # C99 hex-float syntax, no redundant zero digits
        assert re.fullmatch(r"-?0x[01](\.[0-9a-f]*[1-9a-f])?p[+-]\d+f?", lit), lit
    back = np.array([float.fromhex(s.rstrip("f")) for s in lits]).astype(dtype)
    np.testing.assert_array_equal(_bits(back), _bits(v))  # -0.0 and subnormals included


def test_hex_literals_refuse_nan():
    with pytest.raises(ExportError, match="NaN or infinite"):
        hex_literals(np.array([1.0, np.nan], np.float32))


# -- the weights in the source ------------------------------------------------------------
_TABLE = re.compile(r"static const (\w+) (\w+)\[(\d+)\] = \{(.*?)\};", re.S)


def tables(path):
    """Every constant table of a generated .c file, parsed back independently of the exporter."""
    out = {}
    for ctype, name, n, body in _TABLE.findall(open(path).read()):
        items = [s.strip() for s in body.split(",") if s.strip()]
        assert len(items) == int(n), name
        if ctype in ("float", "double"):
            dt = np.float32 if ctype == "float" else np.float64
            out[name] = np.array([float.fromhex(s.rstrip("f")) for s in items]).astype(dt)
        else:
            out[name] = np.array([int(s.rstrip("u")) for s in items])
    return out


def unrolled_layers(path, prefix="net"):
    """(value, input, output) triples and biases per layer, read from the unrolled statements."""
    text = open(path).read()
    tabs = tables(path)
    layers = []
    for m in re.finditer(rf"static void ({prefix}_l\d+)\(.*?\n\}}", text, re.S):
        w, base = tabs[f"{m.group(1)}_w"], 0
        trip, bias, pending, first = [], {}, [], set()
        for line in m.group(0).splitlines():
            if t := re.match(r"\s*wv = w \+ (\d+);", line):
                base += int(t.group(1))
            elif t := re.match(r"\s*a(\d+) (\+?)= w\[(\d+)\] \* x\[(\d+)\];", line):
                if bias and pending == []:  # a new block of outputs
                    first = set()
                acc = int(t.group(1))
                assert (t.group(2) == "") == (acc not in first)  # '=' first, then '+='
                first.add(acc)
                pending.append((w[base + int(t.group(3))], int(t.group(4)), acc))
            elif t := re.match(r"\s*y\[(\d+)\] = (a(\d+)|0x0p\+0f?) \+ w\[(\d+)\];", line):
                j = int(t.group(1))
                bias[j] = w[base + int(t.group(4))]
                if t.group(3) is not None:
                    j0 = j - int(t.group(3))
                    trip += [(v, i, j0 + a) for v, i, a in pending if a == int(t.group(3))]
                    pending = [p for p in pending if p[2] != int(t.group(3))]
        assert not pending
        layers.append((trip, bias))
    return layers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["gather", "scatter"])
def test_csr_tables_hold_the_exact_weights(tmp_path, dtype, layout):
    m = small_mlp(dtype=dtype)
    to_c(m, tmp_path, dtype=np.dtype(dtype).name, layout=layout)
    tabs = tables(tmp_path / "net.c")
    for i, la in enumerate(m.layers):
        val, idx, ptr = (tabs[f"net_l{i}_{k}"] for k in ("val", "idx", "ptr"))
        if layout == "scatter":  # input-major: the layer's own CSR
            W = sp.csr_array((val, idx, ptr), shape=(la.n_in, la.n_out))
        else:
            W = sp.csr_array((val, idx, ptr), shape=(la.n_out, la.n_in)).T.tocsr()
        W.sort_indices()
        np.testing.assert_array_equal(W.indptr, la.W.indptr)
        np.testing.assert_array_equal(W.indices, la.W.indices)
        np.testing.assert_array_equal(_bits(W.data), _bits(la.W.data))
        np.testing.assert_array_equal(_bits(tabs[f"net_l{i}_bias"]), _bits(la.b))


def test_unrolled_statements_hold_the_exact_weights(tmp_path):
    m = small_mlp()
    to_c(m, tmp_path, mode="unrolled")
    for la, (trip, bias) in zip(m.layers, unrolled_layers(tmp_path / "net.c")):
        vals = np.array([t[0] for t in trip], np.float32)
        W = sp.csr_array((vals, ([t[1] for t in trip], [t[2] for t in trip])), shape=la.W.shape)
        assert W.nnz == la.nnz  # one statement per connection, none twice
        W.sum_duplicates()
        np.testing.assert_array_equal(W.indices, la.W.indices)
        np.testing.assert_array_equal(_bits(W.data), _bits(la.W.data))
        np.testing.assert_array_equal(_bits(np.array([bias[j] for j in range(la.n_out)])),
                                      _bits(la.b))


def test_float64_model_exported_as_float32_is_rounded_once(tmp_path):
    m = small_mlp(dtype=np.float64)
    to_c(m, tmp_path)
    tabs = tables(tmp_path / "net.c")
    np.testing.assert_array_equal(tabs["net_l0_bias"], m.layers[0].b.astype(np.float32))
    assert "rounded once from float64" in doc(tmp_path / "net.h")


@pytest.mark.parametrize("mode", ["csr", "unrolled"])
def test_export_is_deterministic(tmp_path, mode):
    kw = dict(mode=mode, input_scaling=InputScaling(np.arange(12.0), np.full(12, 3.0), (0, 1)),
              labels=list("abcd"))
    a, b = to_c(small_mlp(), tmp_path / "a", **kw), to_c(small_mlp(), tmp_path / "b", **kw)
    for x, y in ((a.header, b.header), (a.source, b.source)):
        assert open(x, "rb").read() == open(y, "rb").read()
    c = to_c(small_mlp(seed=1), tmp_path / "c", **kw)  # and the files do depend on the model
    assert open(c.source, "rb").read() != open(a.source, "rb").read()


def test_header_documents_api_and_layout(tmp_path):
    m = small_mlp(dropout=0.25, dropout_kind="original")
    sc = InputScaling(np.zeros(12), np.ones(12), None, "z-score statistics of X")
    ex = to_c(m, tmp_path, prefix="clf", input_scaling=sc, labels=["cat", "dog", "eel", "fox"])
    h = doc(ex.header)
    for s in ("#define CLF_IN_SIZE 12", "#define CLF_OUT_SIZE 4", "#define CLF_SCRATCH_SIZE",
              "int clf_predict(const float *in, float *out, float *scratch);",
              "int clf_predict_batch(size_t n, const float *in, float *out, float *scratch);",
              "int clf_logits(", "RAW", "z-score statistics of X", "class probabilities",
              "cat, dog, eel, fox", "multiplied by 0.75"):
        assert s in h, s
    assert ex.scratch_size == 12 + 9  # scaled inputs (A) and the first hidden layer (B)
    src = open(ex.source).read()
    includes = set(re.findall(r"#include <(.*?)>", src + open(ex.header).read()))
    assert includes == {"stddef.h", "stdint.h", "math.h"}
    assert "malloc" not in src and not re.search(r"^(?!static const)\w[^(]*=", src, re.M)


def test_math_h_only_when_needed(tmp_path):
    m = small_mlp(activation="relu", output_activation="identity")
    ex = to_c(m, tmp_path)
    assert not ex.needs_libm and "math.h" not in open(ex.source).read()


def test_rbm_export_names(tmp_path):
    rbm = SparseRBM.erdos_renyi(10, 6, epsilon=2, rng=np.random.default_rng(0))
    ex = to_c(rbm, tmp_path, prefix="feat")
    assert (ex.entry, ex.logits, ex.in_size, ex.out_size) == (
        "feat_hidden_probs", "feat_hidden_logits", 10, 6)
    assert "p(h_j = 1 | v)" in doc(ex.header)


def test_every_activation_has_a_c_version(tmp_path):
    for name in ACTIVATIONS:  # a new activation without a C version fails here (and compiled
        out = "softmax" if name == "srelu" else name  # in test_export_build); srelu: hidden only
        m = small_mlp(activation=name, output_activation=out)
        to_c(m, tmp_path / name)


@pytest.mark.parametrize("layout, kinds", [
    ("auto", ["csr", "csr-scatter", "csr-scatter"]),  # scatter where a ReLU feeds the layer
    ("gather", ["csr", "csr", "csr"]), ("scatter", ["csr-scatter"] * 3)])
def test_csr_layouts(tmp_path, layout, kinds):
    m = small_mlp()
    to_c(m, tmp_path, layout=layout)
    assert re.findall(r"/\* layer \d+: \d+ -> \d+, ([\w-]+),", open(tmp_path / "net.c").read()) == kinds
    tabs = tables(tmp_path / "net.c")
    for i, (la, kind) in enumerate(zip(m.layers, kinds)):
        W = sp.csr_array(la.W if kind == "csr-scatter" else la.W.T)  # input- or output-major
        W.sort_indices()
        np.testing.assert_array_equal(tabs[f"net_l{i}_val"], W.data)
        np.testing.assert_array_equal(tabs[f"net_l{i}_idx"], W.indices)
        np.testing.assert_array_equal(tabs[f"net_l{i}_ptr"], W.indptr)
    tanh = small_mlp(activation="tanh")  # no zeros to skip: auto gathers
    to_c(tanh, tmp_path / "t")
    assert "csr-scatter" not in open(tmp_path / "t" / "net.c").read()


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, msg", [
    (dict(prefix="2net"), "C identifier"), (dict(prefix="int"), "C identifier"),
    (dict(prefix="a-b"), "C identifier"), (dict(mode="dense"), "mode must be"),
    (dict(dtype="float16"), "float32 or float64"), (dict(dtype="banana"), "float32 or float64"),
    (dict(layout="diagonal"), "layout must be one of auto, gather, scatter"),
    (dict(input_scaling=InputScaling(np.zeros(3), np.ones(3))), "12 finite values"),
    (dict(input_scaling=InputScaling(np.zeros(12), np.zeros(12))), "positive"),
])
def test_bad_options(tmp_path, kw, msg):
    with pytest.raises(ExportError, match=msg):
        to_c(small_mlp(), tmp_path, **kw)


def test_bad_models(tmp_path):
    with pytest.raises(ExportError, match="SparseMLP or SparseRBM"):
        to_c(object(), tmp_path)
    m = small_mlp()
    m.layers[1].W.data[3] = np.inf
    with pytest.raises(ExportError, match="NaN or infinite"):
        to_c(m, tmp_path)


def test_unrolled_refused_above_the_limit(tmp_path):
    W = sp.csr_array(sp.random(300, 200, density=(UNROLLED_MAX_NNZ + 1) / 60000, format="csr",
                               dtype=np.float32, random_state=0))
    assert W.nnz > UNROLLED_MAX_NNZ
    m = SparseMLP.from_weights([W])
    with pytest.raises(ExportError, match="at most 50,000 connections.*'csr'"):
        to_c(m, tmp_path, mode="unrolled")
    assert to_c(m, tmp_path, mode="csr").nnz == W.nnz


def test_layer_kinds_are_pluggable(tmp_path):
    class MyLinear(SparseLinear):  # a new layer kind: not exported until it has an emitter
        pass

    m = small_mlp()
    m.layers[1] = MyLinear(m.layers[1].W, m.layers[1].b)
    with pytest.raises(ExportError, match="no C emitter for a MyLinear layer in mode 'csr'"):
        to_c(m, tmp_path)
    register_layer_emitter(MyLinear, "csr", CSREmitter)
    try:
        assert to_c(m, tmp_path).nnz == sum(m.nnz())
        with pytest.raises(ExportError, match="Use mode 'csr'"):
            to_c(m, tmp_path, mode="unrolled")
    finally:
        del _LAYER_EMITTERS[(MyLinear, "csr")]


# -- input scaling -----------------------------------------------------------------------
@pytest.mark.parametrize("how, reference", [("zscore", False), ("zscore", True), ("minmax", False)])
@pytest.mark.parametrize("kind", ["uint8", "float64"])
def test_input_scaling_apply_is_normalize_bit_for_bit(how, reference, kind):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (500, 30)).astype(np.uint8) if kind == "uint8" else \
        rng.standard_normal((500, 30)) * 7 + 3
    X[:, 4] = X[0, 4]  # a constant feature
    Xte = (X[:50] * 0.9).astype(X.dtype)
    sc = Scaling.fit(X, how, reference=reference)
    shift, scale = sc.shift, sc.scale
    for dt in (np.float32, np.float64):
        _, ref = normalize(X, Xte, how, reference=reference, dtype=dt)
        got = InputScaling(shift, scale).apply(Xte, dt)
        np.testing.assert_array_equal(got, ref)  # bit for bit: the C code does the same ops


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export_runs") / "mlp"
    assert train_cli.main(["--hidden", "30", "20", "--epsilon", "4", "--epochs", "2", "-q",
                           "--out", str(out)]) == 0
    return out


def test_export_scaling_is_the_runs_stored_one(digits_run):
    run = load_source(digits_run)
    assert run.path.endswith("final") and run.model.sizes == [64, 30, 20, 10]
    prep, origin = run_preprocessing(run)
    assert prep is run.preprocessing and "stored in" in origin
    sc = input_scaling(run, prep, origin, 64)
    np.testing.assert_array_equal(sc.shift, run.preprocessing.scaling.shift)
    np.testing.assert_array_equal(sc.scale, run.preprocessing.scaling.scale)
    # what evaluate feeds the model: the run's own split, scaled by the stored statistics
    cfg = run.config
    ref = load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng), progress=False,
                       preprocessing=run.preprocessing, training=False)
    X_raw, X_scaled, name = run_test_set(run, prep, 64)
    np.testing.assert_array_equal(X_scaled, ref.X_test)
    np.testing.assert_array_equal(sc.apply(X_raw, np.float32), ref.X_test)
    assert X_raw.max() == 16 and name.startswith("digits")  # raw pixel values 0..16
    assert list(prep.classes) == list(range(10)) and "zscore" in sc.description


def test_scaling_falls_back_to_the_data_set_for_old_checkpoints(digits_run):
    run = load_source(digits_run)
    stored = run.preprocessing
    run.preprocessing = None  # a checkpoint written without the preprocessing arrays
    prep, origin = run_preprocessing(run)
    assert "training split" in origin and "stored" not in origin
    np.testing.assert_array_equal(prep.scaling.shift, stored.scaling.shift)
    np.testing.assert_array_equal(prep.scaling.scale, stored.scaling.scale)
    np.testing.assert_array_equal(prep.classes, stored.classes)


def test_padding_and_rbm_clip_in_input_scaling(digits_run):
    run = load_source(digits_run)
    prep, _ = run_preprocessing(run)
    sc = input_scaling(run, prep, "o", 70)  # 6 zero features appended after scaling
    assert sc.shift.shape == (70,) and (sc.shift[64:] == 0).all() and (sc.scale[64:] == 1).all()
    assert sc.clip is None and "inputs 64..69 are zero padding" in sc.description
    with pytest.raises(ExportError, match="holds 64 features but the model takes 60"):
        input_scaling(run, prep, "o", 60)
    run.config = dataclasses.replace(run.config, model="rbm", visible_units="binary",
                                     normalize="minmax")
    mm = dataclasses.replace(prep, scaling=Scaling("minmax", sc.shift[:64], sc.scale[:64]))
    assert input_scaling(run, mm, "o", 64).clip == (0.0, 1.0)
    assert input_scaling(run, dataclasses.replace(prep, scaling=Scaling("none")), "o", 64) is None


def test_load_source_errors(tmp_path, digits_run):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_source(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="has no checkpoint"):
        load_source(tmp_path)
    assert load_source(digits_run / "final").path.endswith("final")


# -- command line (no compiler involved) -------------------------------------------------
@pytest.mark.parametrize("argv, msg", [
    (["{tmp}/nope"], "does not exist"),
    (["{run}", "--check", "-3"], "--check N needs N >= 0"),
    (["{run}", "--prefix", "9x"], "C identifier"),
    (["{run}", "--data-dir", "{tmp}", "--cc", "no-such-cc-xyz", "--target", "host"],
     "no-such-cc-xyz not found"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, digits_run, capsys, argv, msg):
    argv = [a.format(tmp=tmp_path, run=digits_run) for a in argv]
    assert export_cli.main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and msg in err and len(err.splitlines()) == 1


def test_cli_corrupted_checkpoint_exit_2(tmp_path, digits_run, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(digits_run, run)
    with open(run / "final" / "layer_0.npz", "r+b") as fh:
        fh.seek(100)
        fh.write(b"garbage")
    assert export_cli.main([str(run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "corrupted" in err and len(err.splitlines()) == 1


def test_cli_raw_export_needs_no_data_set(tmp_path, capsys):
    out = tmp_path / "run"
    X = np.random.default_rng(0).standard_normal((60, 5)) * 3 + 7
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(60) % 3)
    assert train_cli.main(["--dataset", str(tmp_path / "d.npz"), "--hidden", "6", "--epochs", "1",
                           "-q", "--out", str(out)]) == 0
    (tmp_path / "d.npz").unlink()  # the stored statistics are enough
    assert export_cli.main([str(out), "--out", str(tmp_path / "o")]) == 0
    assert "5 raw features" in capsys.readouterr().out
    tabs = tables(tmp_path / "o" / "net.c")
    stored = load_source(out).preprocessing.scaling
    np.testing.assert_array_equal(tabs["net_in_shift"], stored.shift)
    np.testing.assert_array_equal(tabs["net_in_scale"], stored.scale)
    assert export_cli.main([str(out), "--out", str(tmp_path / "o"), "--input", "scaled"]) == 0
    assert "5 scaled features" in capsys.readouterr().out


def test_cli_old_checkpoint_without_data_needs_input_scaled(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).standard_normal((60, 5)),
             y=np.arange(60) % 3)
    assert train_cli.main(["--dataset", str(tmp_path / "d.npz"), "--hidden", "6", "--epochs", "1",
                           "-q", "--out", str(out)]) == 0
    (tmp_path / "d.npz").unlink()

    def old(path):  # a checkpoint from before the preprocessing was stored
        run = load_source(path)
        run.preprocessing = None
        return run

    monkeypatch.setattr(export_cli, "load_source", old)
    assert export_cli.main([str(out), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "does not store the run's scaling" in err and "--input scaled" in err
    assert "--data-dir" in err and len(err.strip().splitlines()) == 1
    assert export_cli.main([str(out), "--out", str(tmp_path / "o"), "--input", "scaled"]) == 0


def test_cli_writes_raw_input_export(tmp_path, digits_run, capsys):
    assert export_cli.main([str(digits_run), "--out", str(tmp_path / "o"), "--prefix", "dig"]) == 0
    assert "64 raw features" in capsys.readouterr().out
    tabs = tables(tmp_path / "o" / "dig.c")
    cfg = load_source(digits_run).config
    raw = load_dataset(dataclasses.replace(cfg, normalize="none", dtype="float64"),
                       Streams(cfg.seed, legacy=cfg.legacy_rng), progress=False).X_train
    std = raw.std(axis=0)  # the run's z-score statistics, from its raw training split
    np.testing.assert_array_equal(tabs["dig_in_shift"], raw.mean(axis=0))
    np.testing.assert_array_equal(tabs["dig_in_scale"], np.where(std > 0, std, 1.0))
    assert "stored in" in doc(tmp_path / "o" / "dig.h")


# -- the documentation runs ---------------------------------------------------------------
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _blocks(path, lang, section=None):
    text = (ROOT / path).read_text()
    if section:
        text = text[text.index(section):]
        text = text[:text.find("\n## ", 1)]
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_readme_export_section_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (code,) = _blocks("README.md", "python", "## Standalone C")
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.split() == ["digits_predict", "64", "10"]
    assert (tmp_path / "build" / "digits" / "digits.h").exists()


@pytest.mark.parametrize("doc, section", [("README.md", "## Standalone C"),
                                          ("docs/export.md", None)])
def test_documented_command_lines_parse(doc, section):
    lines = [ln.split("#")[0].split() for b in _blocks(doc, "bash", section)
             for ln in b.splitlines() if "sparsemlp.export" in ln]
    assert lines
    for argv in lines:
        args = export_cli._parser().parse_args(argv[3:])  # after 'python -m sparsemlp.export'
        assert args.source.startswith("runs/")
