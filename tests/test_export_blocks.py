"""C export of the hierarchical (HODLR, HEDLR, H-matrix) and Toeplitz-like layers against the
Python forward and a dense oracle; odd shapes and ranks, sanitizers, qemu (their run through the CLI:
test_export_approx.py::test_structured_run_through_the_cli)."""

import re
import subprocess

import numpy as np
import pytest
from test_export_approx import dense_oracle
from test_export_build import LIBM, TARGETS, inputs_with_zeros, need

from sparsemlp import SparseMLP, approx
from sparsemlp.approx import HODLR, LowRank, ToeplitzLike
from sparsemlp.export import to_c
from sparsemlp.export._build import build_harness, compile_c, run_check
from sparsemlp.export._check import compare, python_reference
from sparsemlp.export._emit_blocks import fft_length
from sparsemlp.nn.functions import make_activation

OPTIONS = {"hodlr": {"levels": 2}, "hedlr": {"levels": 1}, "hmatrix": {"min_block": 8},
           "toeplitz_like": {"refine_iter": 20}}


def block_mlp(kind, dtype=np.float32, seed=0):
    """[40, 40, 40, 5]: layers 0 and 1 of ``kind`` (Toeplitz-like ranks 7 and 10), output CSR."""
    rng = np.random.default_rng(seed)
    m = SparseMLP.erdos_renyi([40, 40, 40, 5], epsilon=20, rng=rng, dtype=dtype)
    for la in m.layers:
        la.b[:] = rng.standard_normal(la.n_out) * 0.3
    approx.approximate_layer(m, 0, kind, share=0.35, **OPTIONS[kind])
    approx.approximate_layer(m, 1, kind, share=0.5, **OPTIONS[kind])
    assert [la.kind for la in m.layers] == [kind, kind, "csr"]
    return m


def check(model, tmp, X, target="host", opt="-O2", flags=(), dtype="float32"):
    """Export, build, run: -> (export, C outputs, comparison with the Python forward)."""
    ex = to_c(model, tmp, dtype=dtype)
    exe = build_harness(ex, "check", str(tmp), target=target, opt=opt, flags=flags)
    cl, co = run_check(exe, ex, X, target=target)
    rtol = 1e-4 if ex.ctype == "float" else 1e-12
    return ex, co, compare(cl, co, *python_reference(model, X), rtol=rtol)


@pytest.mark.parametrize("kind", list(OPTIONS))
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_block_layers_match_python_and_dense_oracle(tmp_path, kind, opt):
    need("gcc")
    m = block_mlp(kind)
    X = inputs_with_zeros(150, 40)
    ex, co, r = check(m, tmp_path, X, opt=opt)
    assert r["ok"] and r["argmax_agree"] == 150, r
    np.testing.assert_allclose(co, dense_oracle(m, X), rtol=1e-4, atol=1e-5)
    assert f"{kind.replace('_', '-')}, " in open(ex.source).read()  # kind in the table comment
    assert ex.nnz == sum(la.nnz for la in m.layers)


@pytest.mark.parametrize("kind", list(OPTIONS))
def test_float64_block_export(tmp_path, kind):
    need("gcc")
    m = block_mlp(kind, dtype=np.float64, seed=1)
    X = inputs_with_zeros(60, 40).astype(np.float64)
    _, co, r = check(m, tmp_path, X, dtype="float64")
    assert r["ok"] and r["max_rel_logit_err"] < 1e-12, r
    np.testing.assert_allclose(co, dense_oracle(m, X), rtol=1e-10, atol=1e-12)


def _ragged_hodlr(rng):
    """13 x 21: low-rank leaves of ranks 1 and 3, a dense 4 x 5 leaf, a block left out (zero)."""
    blocks = [(0, 6, 0, 9, 3), (0, 6, 9, 21, 1), (6, 10, 0, 5, -1), (6, 13, 9, 21, 2)]
    size = sum(p * q if r < 0 else r * (p + q) for p, q, r in
               ((b - a, d - c, r) for a, b, c, d, r in blocks))
    return HODLR((13, 21), blocks, rng.standard_normal(size))


def _rank_one(rng, m, n):
    """A rank-1 m x n layer (an adapter between sizes)."""
    return LowRank(rng.standard_normal((m, 1)), rng.standard_normal((1, n))).to_layer(
        dtype=np.float32)


def _identity_net(layers):
    """Layers chained with tanh, the last one's pre-activations are the logits (identity)."""
    acts = [make_activation("tanh")] * (len(layers) - 1) + [make_activation("identity")]
    return SparseMLP(layers, acts)


@pytest.mark.parametrize("flags", [(), ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                                        "-g")])
def test_ragged_hodlr_and_toeplitz_layers(tmp_path, flags):
    """A handmade rectangular HODLR (dense leaf, zero block, ranks 1 and 3) then Toeplitz-like
    layers of odd and even rank and sizes 1, 2, 32 (N = 64) and 33 (N = 128), the last one's
    pre-activations the logits; under sanitizers too (a workspace overrun is reported)."""
    need("gcc")
    rng = np.random.default_rng(4)
    layers = [_ragged_hodlr(rng).to_layer(rng.standard_normal(13), dtype=np.float32),
              _rank_one(rng, 1, 13)]
    for n_prev, (n, r) in zip([1, 1, 2, 32], [(1, 1), (2, 3), (32, 5), (33, 2)]):
        if n_prev != n:
            layers.append(_rank_one(rng, n, n_prev))
        t = ToeplitzLike(rng.standard_normal((n, r)) * 0.3, rng.standard_normal((n, r)) * 0.3)
        layers.append(t.to_layer(rng.standard_normal(n), dtype=np.float32))
    m = _identity_net(layers)
    X = inputs_with_zeros(80, 21)
    ex = to_c(m, tmp_path)
    cl, co = run_check(build_harness(ex, "check", str(tmp_path), opt="-O1", flags=flags), ex, X)
    r = compare(cl, co, *python_reference(m, X), classify=False)
    assert r["ok"], r
    np.testing.assert_allclose(co, dense_oracle(m, X), rtol=1e-4, atol=1e-4)


def test_each_block_layer_alone_against_its_dense_matrix(tmp_path):
    """One layer, identity output: the C logits are A x + b with A from ``.dense()`` (float64)."""
    need("gcc")
    rng = np.random.default_rng(5)
    for i, a in enumerate([_ragged_hodlr(rng),
                           ToeplitzLike(rng.standard_normal((33, 3)), rng.standard_normal((33, 3)))]):
        b = rng.standard_normal(a.shape[0])
        m = _identity_net([a.to_layer(b, dtype=np.float64)])
        X = inputs_with_zeros(40, a.shape[1]).astype(np.float64)
        _, co, r = check(m, tmp_path / str(i), X, dtype="float64")
        assert r["ok"], r
        np.testing.assert_allclose(co, X @ a.dense().T + b, rtol=1e-11, atol=1e-11)


def test_fft_length():
    assert [fft_length(n) for n in (1, 2, 3, 32, 33, 1000)] == [2, 4, 8, 64, 128, 2048]


@pytest.mark.parametrize("target", ["aarch64", "armv7"])
def test_block_layers_under_qemu(tmp_path, target):
    need(TARGETS[target].compilers[0], TARGETS[target].runner[0])
    for kind in ("hodlr", "hmatrix", "toeplitz_like"):
        m = block_mlp(kind, seed=2)
        X = inputs_with_zeros(60, 40)
        _, _, r = check(m, tmp_path / kind, X, target=target)
        assert r["ok"], (target, kind, r)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_block_pedantic_build_and_symbols(tmp_path, cc):
    need(cc, "nm")
    m = block_mlp("hmatrix")
    approx.approximate_layer(m, 2, "hodlr", share=0.6, levels=1)
    m2 = block_mlp("toeplitz_like")
    for i, model in enumerate((m, m2)):
        for dtype in ("float32", "float64"):
            ex = to_c(model, tmp_path / f"{i}{dtype}", dtype=dtype)
            obj = compile_c([ex.source], str(tmp_path / f"net{i}{dtype}.o"), cc=cc, kind="obj")
            syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
            undefined = {ln.split()[-1] for ln in syms.splitlines() if ln.split()[-2:-1] == ["U"]}
            assert undefined <= LIBM, undefined
            assert not [ln for ln in syms.splitlines() if ln.split()[-2:-1] and
                        ln.split()[-2] in list("BbDdGgSsC")]  # no mutable globals


def test_no_dense_table(tmp_path):
    """The tables hold O(n_params) values (a 300 x 300 layer at share 0.05, not 90,000): exactly
    the parameters and the bias (HODLR); the half spectra, twiddles and bias (Toeplitz-like)."""
    rng = np.random.default_rng(6)
    W = rng.standard_normal((300, 300))
    for kind in ("hodlr", "toeplitz_like"):
        a = getattr(approx, kind)(W, share=0.05, **({"refine_iter": 0} if kind != "hodlr" else {}))
        ex = to_c(_identity_net([a.to_layer(dtype=np.float32)]), tmp_path / kind)
        text = open(ex.source).read()
        tables = text[:text.index("static void")]  # the tables precede the functions
        literals = len(re.findall(r"0x[0-9a-f.]+p[-+]\d+", tables))
        if kind == "hodlr":
            assert literals == a.n_params + 300
        else:  # rank 7: 4 pairs, N = 1024
            assert literals == 2 * 2 * 8 * 513 + 2 * (1024 - 4) + 300
        assert literals < 0.25 * 300 * 300
