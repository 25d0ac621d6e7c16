"""Compiled exports: warning-free gcc/clang builds, symbols, sanitizers, Python agreement, ARM.

Tests needing a missing compiler or emulator skip with the reason; with
SPARSEMLP_REQUIRE_TOOLCHAINS=1 (CI) such a skip is a failure.
"""

import os
import platform
import shutil
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from dense_reference import forward as dense_forward

from sparsemlp import SparseLinear, SparseMLP, SparseRBM
from sparsemlp.cli import train as train_cli
from sparsemlp.data import Scaling, normalize
from sparsemlp.export import InputScaling, to_c
from sparsemlp.export import __main__ as export_cli
from sparsemlp.export._build import TARGETS, build_harness, compile_c, run_check
from sparsemlp.export._check import compare, python_reference
from sparsemlp.nn.functions import ACTIVATIONS

REQUIRE = os.environ.get("SPARSEMLP_REQUIRE_TOOLCHAINS") == "1"
LIBM = {"expf", "exp", "tanhf", "tanh"}
PACKAGES = {"gcc": "gcc", "clang": "clang", "nm": "binutils", "qemu-aarch64": "qemu-user",
            "qemu-arm": "qemu-user", "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
            "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf"}


def need(*tools):
    """Skip (or fail, with SPARSEMLP_REQUIRE_TOOLCHAINS=1) unless every tool is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = (f"{', '.join(missing)} not found (apt-get install "
               f"{' '.join(sorted({PACKAGES.get(t, t) for t in missing}))})")
        if REQUIRE:
            pytest.fail(f"{msg}, and SPARSEMLP_REQUIRE_TOOLCHAINS=1 forbids skipping")
        pytest.skip(msg)


def make_mlp(sizes=(20, 16, 12, 5), seed=0, dtype=np.float32, epsilon=3, **kw):
    rng = np.random.default_rng(seed)
    m = SparseMLP.erdos_renyi(list(sizes), epsilon=epsilon, rng=rng, dtype=dtype, **kw)
    for la in m.layers:
        la.b[:] = rng.standard_normal(la.n_out) * 0.5
    return m


def inputs(n, d, seed=1):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def c_run(model, tmp, X, *, mode="csr", cc=None, opt="-O2", target="host", flags=(),
          dtype="float32", Xpy=None, **kw):
    """Export, build the check program, run it on X: -> (C logits, C outputs, comparison)."""
    ex = to_c(model, tmp, mode=mode, dtype=dtype, **kw)
    exe = build_harness(ex, "check", str(tmp), target=target, cc=cc, opt=opt, flags=flags)
    cl, co = run_check(exe, ex, X, target=target)
    pl, po = python_reference(model, X if Xpy is None else Xpy)
    rtol = 1e-4 if "float32" in (dtype, str(model.dtype)) else 1e-12
    return cl, co, compare(cl, co, pl, po, rtol=rtol, classify=ex.entry.endswith("predict"))


# code forms: the csr mode's layouts (auto: scatter after a ReLU) and the unrolled mode
FORMS = [("csr", "auto"), ("csr", "gather"), ("csr", "scatter"), ("unrolled", "auto")]


def inputs_with_zeros(n, d, seed=1):
    """Normal inputs, a third of them +0.0 or -0.0 (skipped by the scatter layout)."""
    X = inputs(n, d, seed)
    mask = np.random.default_rng(seed + 1).random(X.shape)
    X[mask < 0.2] = 0.0
    X[mask > 0.87] = -0.0
    return X


@pytest.fixture(scope="module")
def mlp():
    m = make_mlp(sizes=(40, 32, 12, 5), epsilon=8)
    assert m.nnz()[0] > 2 * 240  # the unrolled mode rebases its weight pointer
    return m


# -- builds ------------------------------------------------------------------------------
@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("mode, layout", FORMS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pedantic_builds_and_symbols(tmp_path, cc, mode, layout, dtype):
    need(cc, "nm")
    m = make_mlp(activation="tanh", output_activation="softmax")
    ex = to_c(m, tmp_path, mode=mode, dtype=dtype, layout=layout)
    obj = compile_c([ex.source], str(tmp_path / "net.o"), cc=cc, opt="-O2", kind="obj")
    # -std=c99 -Wall -Wextra -Werror -pedantic: any warning fails the build above
    syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    undefined = {ln.split()[-1] for ln in syms.splitlines() if ln.split()[-2:-1] == ["U"]}
    assert undefined <= LIBM and undefined, undefined  # libm only (tanh, exp are used)
    writable = [ln for ln in syms.splitlines() if ln.split()[-2:-1] and
                ln.split()[-2] in list("BbDdGgSsC")]
    assert not writable, writable  # no mutable globals: every table is read-only
    public = {ln.split()[-1] for ln in syms.splitlines() if ln.split()[-2:-1] == ["T"]}
    assert public == {"net_predict", "net_predict_batch", "net_logits", "net_logits_batch"}


def test_header_compiles_as_cpp_and_alone(tmp_path, mlp):
    need("g++")
    ex = to_c(mlp, tmp_path)
    (tmp_path / "use.cc").write_text('#include "net.h"\nint f(const float *a, float *b, float *s) '
                                     "{ return net_predict(a, b, s); }\n")
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Werror", "-c", str(tmp_path / "use.cc"),
                    "-o", str(tmp_path / "use.o")], check=True, cwd=tmp_path)
    assert ex.header.endswith("net.h")


# -- agreement with Python ---------------------------------------------------------------
@pytest.mark.parametrize("cc, opt", [("gcc", "-O0"), ("gcc", "-O2"), ("clang", "-O2")])
@pytest.mark.parametrize("mode, layout", FORMS)
def test_matches_python(tmp_path, mlp, cc, opt, mode, layout):
    need(cc)
    X = inputs_with_zeros(200, 40)
    _, co, r = c_run(mlp, tmp_path, X, mode=mode, cc=cc, opt=opt, layout=layout)
    assert r["ok"], r
    np.testing.assert_allclose(co.sum(axis=1), 1, rtol=1e-5)  # softmax probabilities


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 (SSE) arithmetic only")
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
@pytest.mark.parametrize("mode, layout", FORMS)
def test_host_logits_bit_identical_to_reference_backend(tmp_path, mlp, opt, mode, layout):
    need("gcc")
    # each output adds its terms in ascending input order, then the bias, as the NumPy
    # reference backend does: no reordering, no fused multiply-add on x86-64 in C99 mode;
    # the scatter layout skips zero inputs, which leaves such a sum's bits unchanged
    ref = SparseMLP([SparseLinear(la.W, la.b, kernels="numpy") for la in mlp.layers],
                    mlp.activations)
    X = inputs_with_zeros(200, 40)
    ex = to_c(mlp, tmp_path, mode=mode, layout=layout)
    cl, _ = run_check(build_harness(ex, "check", str(tmp_path), opt=opt), ex, X)
    np.testing.assert_array_equal(cl, python_reference(ref, X)[0])


def test_sanitizers_report_nothing(tmp_path, mlp):
    need("gcc")
    flags = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")
    # unrolled code of a smaller net: instrumenting ~1000 statements takes gcc half a minute
    for mode, layout, m in (("csr", "gather", mlp), ("csr", "scatter", mlp),
                            ("unrolled", "auto", make_mlp())):
        X = inputs_with_zeros(100, m.sizes[0])
        _, _, r = c_run(m, tmp_path / layout, X, mode=mode, opt="-O1", flags=flags,
                        layout=layout)
        assert r["ok"], r  # run_check raises on a non-zero exit (a sanitizer report)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_compiled_matches_python(tmp_path, name):
    need("gcc")
    mode = "csr"  # activations are written by one code path for both modes
    # all_relu alternates the sign of its slope per layer: three layers use both
    out = "softmax" if name == "srelu" else name  # SReLU is for hidden layers only
    m = make_mlp(activation=name, output_activation=out, alpha=0.3)
    _, _, r = c_run(m, tmp_path, inputs(50, 20) * 3, mode=mode)
    assert r["ok"], (name, r)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 (SSE) arithmetic only")
@pytest.mark.parametrize("mode, dropout_kind", [("csr", "inverted"), ("unrolled", "original")])
def test_srelu_logits_bit_identical_to_python(tmp_path, mode, dropout_kind):
    need("gcc")
    # trained-looking SReLU parameters: every unit with its own thresholds and slopes, so that
    # the inputs fall on all three pieces (and t_r = t_l + |d| with d < 0 for some units)
    m = make_mlp(activation="srelu", dropout=0.3, dropout_kind=dropout_kind)
    rng = np.random.default_rng(7)
    for _, act in m.param_activations():
        n = act.params.shape[1]
        act.params[0] = rng.uniform(-1, 0.5, n)
        act.params[1] = rng.uniform(-0.5, 1.5, n)
        act.params[2] = rng.uniform(-2, 2, n)
        act.params[3] = rng.uniform(0.2, 2, n)
    ref = SparseMLP([SparseLinear(la.W, la.b, kernels="numpy") for la in m.layers],
                    m.activations, dropout=m.dropout, dropout_kind=m.dropout_kind)
    X = inputs(300, 20) * 2
    z = ref.layers[0].W.T @ X.T + ref.layers[0].b[:, None]  # all three pieces are hit
    a0 = m.activations[0]
    t_l, t_r = a0.params[0][:, None], (a0.params[0] + np.abs(a0.params[2]))[:, None]
    assert (z >= t_r).mean() > 0.1 and (z <= t_l).mean() > 0.1 and ((z > t_l) & (z < t_r)).mean() > 0.1
    ex = to_c(m, tmp_path, mode=mode)
    cl, co = run_check(build_harness(ex, "check", str(tmp_path), opt="-O2"), ex, X)
    pl, po = python_reference(ref, X)
    np.testing.assert_array_equal(cl, pl)
    np.testing.assert_allclose(co, po, rtol=1e-5, atol=1e-7)


def test_softmax_is_stable_for_large_logits(tmp_path):
    need("gcc")
    m = make_mlp(output_activation="softmax")
    m.layers[-1].b[:] = [300.0, -300.0, 250.0, 0.0, 100.0]  # exp overflows without the shift
    _, co, r = c_run(m, tmp_path, inputs(30, 20))
    assert r["ok"] and np.isfinite(co).all(), r


@pytest.mark.parametrize("mode", ["csr", "unrolled"])
def test_original_dropout_scales_at_inference(tmp_path, mode):
    need("gcc")
    m = make_mlp(dropout=0.4, dropout_kind="original", output_activation="sigmoid")
    cl, _, r = c_run(m, tmp_path, inputs(50, 20), mode=mode)
    assert r["ok"], r
    m.dropout = 0.0  # the scaling matters: without it Python computes something else
    assert not compare(cl, cl, *python_reference(m, inputs(50, 20)))["ok"]


def test_float64_export(tmp_path):
    need("gcc")
    m = make_mlp(dtype=np.float64, activation="sigmoid")
    for mode in ("csr", "unrolled"):
        _, _, r = c_run(m, tmp_path / mode, inputs(50, 20), mode=mode, dtype="float64")
        assert r["ok"] and r["max_rel_logit_err"] < 1e-12, r


def test_rbm_hidden_probs_with_raw_inputs(tmp_path):
    need("gcc")
    rng = np.random.default_rng(4)
    rbm = SparseRBM.erdos_renyi(30, 12, epsilon=3, rng=rng, dtype=np.float32)
    rbm.layer.b[:] = rng.standard_normal(12)
    raw = rng.integers(0, 200, (80, 30)).astype(np.float64)  # minmax-scaled and clipped
    sc = InputScaling(np.full(30, 10.0), np.full(30, 150.0), (0.0, 1.0))
    Xpy = sc.apply(raw, np.float32)
    assert Xpy.min() == 0 and Xpy.max() == 1  # the clip is exercised
    _, co, r = c_run(rbm, tmp_path, raw, Xpy=Xpy, input_scaling=sc)
    assert r["ok"] and r["argmax_agree"] is None, r
    assert co.min() > 0 and co.max() < 1


@pytest.mark.parametrize("how", ["zscore", "minmax"])
def test_c_input_scaling_is_normalize_bit_for_bit(tmp_path, how):
    need("gcc")
    rng = np.random.default_rng(6)
    raw_train = rng.integers(0, 256, (300, 9)).astype(np.uint8)
    raw = rng.integers(0, 256, (60, 9)).astype(np.float64)
    fit = Scaling.fit(raw_train, how)
    shift, scale = fit.shift, fit.scale
    _, ref = normalize(raw_train, raw, how, dtype=np.float32)
    eye = SparseMLP.from_weights([sp.csr_array(np.eye(9, dtype=np.float32))],
                                 output_activation="identity")  # logits = the scaled inputs
    cl, _, r = c_run(eye, tmp_path, raw, Xpy=ref, input_scaling=InputScaling(shift, scale))
    assert r["ok"], r
    np.testing.assert_array_equal(cl, ref)
    m = make_mlp(sizes=(9, 4, 3, 3))  # through hidden layers narrower than the input
    _, _, r = c_run(m, tmp_path / "m", raw, Xpy=ref, input_scaling=InputScaling(shift, scale))
    assert r["ok"], r


def test_raw_export_applies_the_runs_stored_scaling(tmp_path, capsys):
    """C on raw features == evaluate's forward (stored statistics) even after the data moved."""
    need("gcc")
    import dataclasses

    from sparsemlp._rng import Streams
    from sparsemlp.export._codegen import CExport
    from sparsemlp.export._source import load_source
    from sparsemlp.training.datasets import load_dataset

    rng = np.random.default_rng(11)
    X = rng.integers(0, 256, (150, 12)).astype(np.float64)
    y = (X[:, 0] > 128).astype(int) + (X[:, 1] > 128)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "run"
    assert train_cli.main(["--dataset", str(tmp_path / "d.npz"), "--hidden", "10", "--epochs",
                           "2", "-q", "--out", str(out)]) == 0
    np.savez(tmp_path / "d.npz", X=X * 0.5 + 40, y=y)  # the file changes after training
    assert export_cli.main([str(out), "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    run = load_source(out)
    cfg, stored = run.config, run.preprocessing
    streams = lambda: Streams(cfg.seed, legacy=cfg.legacy_rng)  # noqa: E731
    raw = load_dataset(dataclasses.replace(cfg, normalize="none", dtype="float64"), streams(),
                       progress=False, training=False).X_test
    seen = load_dataset(cfg, streams(), progress=False, training=False,  # evaluate's input
                        preprocessing=stored).X_test
    refit = load_dataset(cfg, streams(), progress=False, training=False).scaling
    assert not np.allclose(refit.shift, stored.scaling.shift)  # recomputing would differ
    ex = CExport(str(tmp_path / "c" / "net.h"), str(tmp_path / "c" / "net.c"), "net", "csr",
                 "float", "net_predict", "net_logits", 12, 3, 1, 0, True)
    cl, co = run_check(build_harness(ex, "check", str(tmp_path / "c")), ex, raw)
    r = compare(cl, co, *python_reference(run.model, seen))
    assert r["ok"] and r["argmax_agree"] == raw.shape[0], r


def test_edge_cases_against_dense_oracle(tmp_path):
    need("gcc")
    rng = np.random.default_rng(5)
    W0 = rng.standard_normal((8, 6)) * (rng.random((8, 6)) < 0.6)
    W0[3, :] = 0   # input 3 feeds nothing (an unused input)
    W0[:, 2] = 0   # hidden unit 2 has no inputs (bias only)
    W0[0, 2] = 0
    W1 = np.zeros((6, 5))  # an empty layer: outputs are the biases
    W2 = rng.standard_normal((5, 4))
    Ws = [sp.csr_array(W.astype(np.float32)) for W in (W0, W1, W2)]
    bs = [rng.standard_normal(W.shape[1]).astype(np.float32) for W in Ws]
    m = SparseMLP.from_weights(Ws, biases=bs, activation="tanh", output_activation="identity")
    assert m.nnz()[1] == 0
    X = inputs_with_zeros(40, 8)
    for mode, layout in FORMS:
        cl, co, r = c_run(m, tmp_path / mode, X, mode=mode, layout=layout)
        assert r["ok"], r
        ref = dense_forward([W.astype(np.float64) for W in (W0, W1, W2)],
                            [b.astype(np.float64) for b in bs], ["tanh", "tanh", "identity"],
                            X.astype(np.float64))[-1][1]
        np.testing.assert_allclose(co, ref, rtol=1e-5, atol=1e-5)
        X2 = X.copy()
        X2[:, 3] = 1e6  # the unused input changes nothing, bit for bit
        np.testing.assert_array_equal(c_run(m, tmp_path / mode, X2, mode=mode,
                                            layout=layout)[1], co)


def test_fitted_classifier_export_matches_predict_proba(tmp_path):
    need("gcc")
    pytest.importorskip("sklearn")
    from sparsemlp import SparseMLPClassifier

    rng = np.random.default_rng(7)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = np.where(X[:, 0] > 0, "yes", "no")
    clf = SparseMLPClassifier(hidden_layer_sizes=(8,), epsilon=2, max_iter=3,
                              random_state=0).fit(X, y)
    ex = to_c(clf, tmp_path)
    assert "no, yes" in " ".join(open(ex.header).read().split())
    _, co = run_check(build_harness(ex, "check", str(tmp_path)), ex, X)
    np.testing.assert_allclose(co, clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.classes_[co.argmax(axis=1)], clf.predict(X))


def test_fitted_rbm_estimator_export_matches_transform(tmp_path):
    need("gcc")
    pytest.importorskip("sklearn")
    from sparsemlp import SparseBernoulliRBM

    rng = np.random.default_rng(8)
    X = rng.random((100, 16))
    est = SparseBernoulliRBM(n_components=9, epsilon=3, n_iter=2, out_of_range="clip",
                             random_state=0).fit(X)
    X[:5, :3] = 1.7  # out of [0, 1]: transform clips, and so does the C code
    ex = to_c(est, tmp_path, dtype="float64")
    assert ex.entry == "net_hidden_probs"
    _, co = run_check(build_harness(ex, "check", str(tmp_path)), ex, X)
    np.testing.assert_allclose(co, est.transform(X), rtol=1e-12, atol=1e-14)


def test_one_layer_net_without_scratch_use(tmp_path):
    need("gcc")
    m = make_mlp(sizes=(7, 3), output_activation="softmax")
    cl, co, r = c_run(m, tmp_path, inputs(20, 7))
    assert r["ok"], r


# -- ARM under qemu-user -----------------------------------------------------------------
@pytest.mark.parametrize("target", ["aarch64", "armv7"])
@pytest.mark.parametrize("mode", ["csr", "unrolled"])
def test_arm_matches_python_under_qemu(tmp_path, mlp, target, mode):
    need(TARGETS[target].compilers[0], TARGETS[target].runner[0])
    _, _, r = c_run(mlp, tmp_path, inputs(200, 40), mode=mode, target=target)
    assert r["ok"], r


@pytest.mark.parametrize("target", ["aarch64", "armv7"])
def test_arm_assembly(tmp_path, mlp, target):
    need(TARGETS[target].compilers[0])
    ex = to_c(mlp, tmp_path, mode="unrolled")
    asm = open(compile_c([ex.source], str(tmp_path / "net.s"), target=target, kind="asm")).read()
    assert "net_predict:" in asm
    assert ("fmadd" in asm) if target == "aarch64" else ("vmla.f32" in asm or "vmul.f32" in asm)


# -- command line ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export_cli") / "r"
    assert train_cli.main(["--hidden", "30", "20", "--epsilon", "4", "--epochs", "2", "-q",
                           "--out", str(out)]) == 0
    return out


def test_cli_check_bench_asm(tmp_path, run_dir, capsys):
    need("gcc")
    out = tmp_path / "b"
    assert export_cli.main([str(run_dir), "--out", str(out), "--check", "100", "--bench",
                            "--emit-asm", "--target", "host", "--mode", "unrolled"]) == 0
    text = capsys.readouterr().out
    assert "check on the first 100 test samples of digits" in text and "argmax 100/100" in text
    assert "OK" in text and "bench (host, -O2): net_predict median" in text
    assert "trials, test sample 0 of digits" in text
    assert (out / "net.o").exists() and "net_predict" in (out / "net.s").read_text()


@pytest.mark.parametrize("layout, kinds", [("scatter", 3), ("gather", 0), ("auto", 2)])
def test_cli_layout(tmp_path, run_dir, capsys, layout, kinds):
    need("gcc")
    assert export_cli.main([str(run_dir), "--out", str(tmp_path), "--check", "60",
                            "--layout", layout]) == 0
    assert "argmax 60/60" in capsys.readouterr().out
    assert open(tmp_path / "net.c").read().count(", csr-scatter, ") == kinds


def test_bench_program_reads_its_sample(tmp_path, mlp):
    need("gcc")
    from sparsemlp.export._build import BuildError, run_bench

    ex = to_c(mlp, tmp_path)
    exe = build_harness(ex, "bench", str(tmp_path))
    for kw in ({}, {"x": inputs(1, 40)[0]}, {"x": inputs(1, 40)[0], "cpu_time": True}):
        t = run_bench(exe, reps=3, trials=4, **kw)
        assert t.shape == (4,) and (t > 0).all()
    with pytest.raises(BuildError, match="exited with 4"):  # a sample of the wrong size
        run_bench(exe, reps=3, trials=2, x=inputs(1, 39)[0])


def test_cli_failed_check_exits_1(tmp_path, run_dir, capsys, monkeypatch):
    need("gcc")

    def wrong(model, X):
        lo, out = python_reference(model, X)
        return lo * 1.01, out

    monkeypatch.setattr(export_cli, "python_reference", wrong)
    assert export_cli.main([str(run_dir), "--out", str(tmp_path), "--check", "20"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["aarch64", "armv7"])
def test_cli_check_under_qemu(tmp_path, run_dir, capsys, target):
    need(TARGETS[target].compilers[0], TARGETS[target].runner[0])
    assert export_cli.main([str(run_dir), "--out", str(tmp_path), "--check", "50",
                            "--target", target]) == 0
    assert f"({target}, -O2)" in capsys.readouterr().out


def test_missing_tool_skips_or_fails_when_required(monkeypatch):
    import test_export_build as me

    for required, outcome in ((False, pytest.skip.Exception), (True, pytest.fail.Exception)):
        monkeypatch.setattr(me, "REQUIRE", required)
        with pytest.raises(BaseException) as info:  # a skip or a failure, checked below
            me.need("gcc", "no-such-tool-xyz")
        assert info.type is outcome and "no-such-tool-xyz not found" in str(info.value)


def test_documented_c_example_builds_and_runs(tmp_path, mlp):
    need("gcc")
    import re

    doc = (os.path.dirname(__file__) + "/../docs/export.md")
    blocks = re.findall(r"```c\n(.*?)```", open(doc).read(), re.S)
    main = next(b for b in blocks if "int main" in b)
    (tmp_path / "main.c").write_text(main)
    ex = to_c(mlp, tmp_path)
    exe = compile_c([str(tmp_path / "main.c"), ex.source], str(tmp_path / "main"))
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    lo, p = python_reference(mlp, np.zeros((1, 40), np.float32))  # the example's input is 0
    assert out.strip() == f"class {int(p.argmax())} (p = {p.max():.3f})"


def test_cli_check_with_random_inputs_when_data_is_gone(tmp_path, capsys):
    need("gcc")
    X = np.random.default_rng(0).standard_normal((60, 5))
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(60) % 3)
    out = tmp_path / "run"
    assert train_cli.main(["--dataset", str(tmp_path / "d.npz"), "--hidden", "6", "--epochs", "1",
                           "-q", "--out", str(out)]) == 0
    (tmp_path / "d.npz").unlink()
    assert export_cli.main([str(out), "--out", str(tmp_path / "o"), "--input", "scaled",
                            "--check", "25"]) == 0
    text = capsys.readouterr().out
    assert "check on 25 random inputs (the run's data set is not available)" in text
    assert "argmax 25/25" in text and "OK" in text
