"""C export of structured layers (low rank, products of sparse factors, SSS) against the Python
forward and a dense oracle; builds, sanitizers, refusals, and a run directory through the CLI."""

import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from dense_reference import forward as dense_forward
from test_export_build import LIBM, TARGETS, inputs_with_zeros, need

from sparsemlp import SparseMLP, approx
from sparsemlp.approx import Semiseparable, SparseProduct
from sparsemlp.export import ExportError, to_c
from sparsemlp.export import __main__ as export_cli
from sparsemlp.export._build import build_harness, compile_c, run_check
from sparsemlp.export._check import compare, python_reference

OPTIONS = {"low_rank": {}, "sparse_product": {"n_iter": 10}, "sss": {"n_states": 6}}


def structured_mlp(kind, dtype=np.float32, seed=0):
    """[40, 48, 30, 5]: layers 0 and 1 of ``kind``, the output layer CSR."""
    rng = np.random.default_rng(seed)
    m = SparseMLP.erdos_renyi([40, 48, 30, 5], epsilon=20, rng=rng, dtype=dtype)
    for la in m.layers:
        la.b[:] = rng.standard_normal(la.n_out) * 0.3
    approx.approximate_layer(m, 0, kind, share=0.4, **OPTIONS[kind])
    approx.approximate_layer(m, 1, kind, share=0.5, **OPTIONS[kind])
    assert [la.kind for la in m.layers] == [kind, kind, "csr"]
    return m


def dense_oracle(model, X):
    """Outputs of the model from its layers' dense matrices (float64)."""
    Ws = [la.to_approximation().dense().T if la.kind != "csr" else la.W.toarray()
          for la in model.layers]
    bs = [np.asarray(la.b, np.float64) for la in model.layers]
    acts = [a.name for a in model.activations]
    return dense_forward([np.asarray(W, np.float64) for W in Ws], bs, acts,
                         np.asarray(X, np.float64))[-1][1]


def check(model, tmp, X, **kw):
    ex = to_c(model, tmp, **kw)
    cl, co = run_check(build_harness(ex, "check", str(tmp), opt=kw.pop("opt", "-O2")), ex, X)
    rtol = 1e-4 if ex.ctype == "float" else 1e-12
    return ex, co, compare(cl, co, *python_reference(model, X), rtol=rtol)


@pytest.mark.parametrize("kind", list(OPTIONS))
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_structured_layers_match_python_and_dense_oracle(tmp_path, kind, opt):
    need("gcc")
    m = structured_mlp(kind)
    X = inputs_with_zeros(150, 40)
    ex, co, r = check(m, tmp_path, X)
    assert r["ok"] and r["argmax_agree"] == 150, r
    np.testing.assert_allclose(co, dense_oracle(m, X), rtol=1e-4, atol=1e-5)
    text = open(ex.source).read()
    assert f"{kind.replace('_', '-')}, " in text  # the layer's kind in its table comment
    assert ex.nnz == sum(la.nnz for la in m.layers)


@pytest.mark.parametrize("target", ["aarch64", "armv7"])
def test_structured_layers_under_qemu(tmp_path, target):
    need(TARGETS[target].compilers[0], TARGETS[target].runner[0])
    m = structured_mlp("sss")
    approx.approximate_layer(m, 2, "sparse_product", share=0.6, n_iter=5)
    m2 = structured_mlp("low_rank", seed=2)
    for i, model in enumerate((m, m2)):
        X = inputs_with_zeros(60, 40)
        ex = to_c(model, tmp_path / str(i))
        exe = build_harness(ex, "check", str(tmp_path / str(i)), target=target)
        cl, co = run_check(exe, ex, X, target=target)
        r = compare(cl, co, *python_reference(model, X))
        assert r["ok"], (target, r)


def test_float64_structured_export(tmp_path):
    need("gcc")
    for kind in OPTIONS:
        m = structured_mlp(kind, dtype=np.float64, seed=1)
        X = inputs_with_zeros(60, 40).astype(np.float64)
        _, co, r = check(m, tmp_path / kind, X, dtype="float64")
        assert r["ok"] and r["max_rel_logit_err"] < 1e-12, (kind, r)
        np.testing.assert_allclose(co, dense_oracle(m, X), rtol=1e-10, atol=1e-12)


def _ragged_sss(rng):
    """K = 5 stages of unequal sizes, causal and anticausal states of unequal (some 0) sizes."""
    ins, outs = [3, 1, 4, 2, 5], [2, 4, 1, 3, 3]
    cd, ad = [0, 2, 0, 3, 1, 0], [0, 1, 3, 0, 2, 0]
    K = len(ins)
    g = lambda r, c: rng.standard_normal((r, c)) * 0.5  # noqa: E731
    return Semiseparable.from_generators(
        [g(outs[k], ins[k]) for k in range(K)], [g(cd[k + 1], cd[k]) for k in range(K)],
        [g(cd[k + 1], ins[k]) for k in range(K)], [g(outs[k], cd[k]) for k in range(K)],
        [g(ad[k], ad[k + 1]) for k in range(K)], [g(ad[k], ins[k]) for k in range(K)],
        [g(outs[k], ad[k + 1]) for k in range(K)], cd, ad)


@pytest.mark.parametrize("flags", [(), ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                        "-g")])
def test_ragged_sss_and_sparse_product_layers(tmp_path, flags):
    """Every stage and state size differs (zeros included); three sparse factors of other
    widths; built with sanitizers too (a workspace overrun would be reported)."""
    need("gcc")
    rng = np.random.default_rng(3)
    sss = _ragged_sss(rng)  # 13 outputs x 15 inputs
    facs = [sp.random(9, 6, density=0.5, random_state=1, format="csr"),
            sp.random(6, 11, density=0.4, random_state=2, format="csr"),
            sp.random(11, 13, density=0.3, random_state=3, format="csr")]
    prod = SparseProduct([sp.csr_array(f) for f in facs])  # 9 x 13
    layers = [sss.to_layer(rng.standard_normal(13), dtype=np.float32),
              prod.to_layer(rng.standard_normal(9), dtype=np.float32),
              approx.low_rank(rng.standard_normal((4, 9)), share=0.5).to_layer(
                  rng.standard_normal(4), dtype=np.float32)]
    from sparsemlp.nn.functions import make_activation

    m = SparseMLP(layers, [make_activation("tanh"), make_activation("relu"),
                           make_activation("softmax")])
    X = inputs_with_zeros(80, 15)
    ex = to_c(m, tmp_path)
    exe = build_harness(ex, "check", str(tmp_path), opt="-O1", flags=flags)
    cl, co = run_check(exe, ex, X)  # raises on a sanitizer report (non-zero exit)
    r = compare(cl, co, *python_reference(m, X))
    assert r["ok"], r
    np.testing.assert_allclose(co, dense_oracle(m, X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_structured_pedantic_build_and_symbols(tmp_path, cc):
    need(cc, "nm")
    m = structured_mlp("sss")
    approx.approximate_layer(m, 2, "sparse_product", share=0.6, n_iter=5)
    ex = to_c(m, tmp_path)
    obj = compile_c([ex.source], str(tmp_path / "net.o"), cc=cc, kind="obj")
    syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    undefined = {ln.split()[-1] for ln in syms.splitlines() if ln.split()[-2:-1] == ["U"]}
    assert undefined <= LIBM, undefined
    assert not [ln for ln in syms.splitlines() if ln.split()[-2:-1] and
                ln.split()[-2] in list("BbDdGgSsC")]  # no mutable globals


def test_structured_layers_refused_in_unrolled_mode_and_other_kinds(tmp_path):
    m = structured_mlp("low_rank")
    with pytest.raises(ExportError, match="no C emitter for a LowRankLayer layer in mode "
                                          "'unrolled'. Use mode 'csr'"):
        to_c(m, tmp_path, mode="unrolled")
    rng = np.random.default_rng(0)
    h = SparseMLP.erdos_renyi([16, 16, 3], epsilon=8, rng=rng)
    approx.approximate_layer(h, 0, "hodlr", share=0.6, levels=1)
    with pytest.raises(ExportError, match="no C emitter for a BlockLowRankLayer layer in mode "
                                          "'unrolled'. Use mode 'csr'"):
        to_c(h, tmp_path, mode="unrolled")
    # emitters match the exact class: a subclass (which may compute otherwise) has none
    h.layers[0].__class__ = type("MyLayer", (type(h.layers[0]),), {})
    with pytest.raises(ExportError, match="no C emitter for a MyLayer layer in mode 'csr'. "
                                          "This layer kind cannot be exported to C yet"):
        to_c(h, tmp_path)


# the hidden layers of the CLI test's run, in two groups (the factored kinds, the block kinds)
CLI_RUNS = {"factored": {"low_rank": {}, "sparse_product": {"n_iter": 10}, "sss": {"n_states": 4}},
            "blocks": {"hodlr": {"levels": 2}, "toeplitz_like": {"refine_iter": 20},
                       "hmatrix": {"min_block": 8}}}


@pytest.mark.parametrize("group", list(CLI_RUNS))
def test_structured_run_through_the_cli(tmp_path, capsys, group):
    """A trained run whose hidden layers are structured: load_run, export, --check on its data."""
    need("gcc")
    from sparsemlp import TrainConfig, Trainer
    from sparsemlp._rng import Streams

    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 16))
    y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + (X[:, 3] > 0.8)
    np.savez(tmp_path / "toy.npz", X=X, y=y)
    cfg = TrainConfig(hidden=(20, 20, 20), epsilon=4, epochs=2, batch_size=16, lr=0.02, seed=5,
                      dataset=str(tmp_path / "toy.npz")).resolve()
    streams = Streams(cfg.seed)
    model = Trainer.from_config(cfg, 16, 3, streams=streams, verbose=False).model
    kinds = CLI_RUNS[group]
    for i, kind in enumerate(kinds):
        approx.approximate_layer(model, i, kind, share=0.5, **kinds[kind])
    run = tmp_path / "run"
    Trainer(model, cfg, streams=streams, verbose=False, run_dir=run).fit(X, y, X, y)
    assert export_cli.main([str(run), "--out", str(tmp_path / "c"), "--check", "50"]) == 0
    out = capsys.readouterr().out
    assert "argmax 50/50" in out and "OK" in out
    text = open(tmp_path / "c" / "net.c").read()
    assert all(k.replace("_", "-") + ", " in text for k in kinds)
