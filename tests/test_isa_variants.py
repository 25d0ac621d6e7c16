"""The Cython module's instruction-set variants: all usable ones against the reference and each other."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from conftest import random_csr, tol

from sparsemlp import _kernels

REF = _kernels.get("numpy")
VARIANTS = _kernels.cython_variants()

pytestmark = pytest.mark.skipif(not VARIANTS, reason="the cython backend is not built")
HERE = pathlib.Path(__file__).resolve().parent


def _two_variants():
    """Skip unless at least two variants run here; under CI=true a variant that is not built
    fails instead (CI builds all of them), a CPU without the instructions still skips."""
    status = _kernels.cython_info()["variants"]
    not_built = {k: v for k, v in status.items() if v.startswith("not built")}
    if os.environ.get("CI", "").lower() == "true" and not_built:
        pytest.fail(f"CI builds every instruction-set variant, but {not_built} here")
    if len(VARIANTS) < 2:
        pytest.skip(f"needs two instruction-set variants, usable here: {list(VARIANTS)} "
                    f"(all: {status}); build them without "
                    "SPARSEMLP_ISA_VARIANTS=0 on an x86-64 CPU with AVX2")

# batch sizes around every register-tile size (SSE2 32/16/8/4 floats, AVX2 64/32/16/8,
# AVX-512 128/64/32/16) and the scalar tail
BATCHES = [1, 3, 4, 7, 8, 16, 17, 33, 64, 100, 128, 131]


def _problem(dtype, index_dtype, B, seed):
    rng = np.random.default_rng(seed)
    n_in, n_out = 90, 70
    indptr, indices, data = random_csr(n_in, n_out, 0.15, rng, dtype, index_dtype, (4,), (9,))
    xt = rng.standard_normal((n_in, B)).astype(dtype)
    dyt = rng.standard_normal((n_out, B)).astype(dtype)
    t = [np.empty(n_out + 1, index_dtype), np.empty(indices.shape[0], index_dtype),
         np.empty(indices.shape[0], index_dtype)]
    REF.csr_transpose(indptr, indices, n_out, *t)
    return indptr, indices, data, xt, dyt, t


def _run(ks, indptr, indices, data, xt, dyt, t):
    n_in, n_out, B = xt.shape[0], dyt.shape[0], xt.shape[1]
    fw = np.full((n_out, B), np.nan, xt.dtype)
    bw = np.full((n_in, B), np.nan, xt.dtype)
    dw = np.full(indices.shape[0], np.nan, xt.dtype)
    dxt = np.full_like(bw, np.nan)
    dw2 = np.full_like(dw, np.nan)
    sc = np.full_like(fw, np.nan)
    ks.spmm(*t, data, xt, fw)
    ks.spmm_scatter(indptr, indices, data, xt, sc)
    ks.spmm_t(indptr, indices, data, dyt, bw)
    ks.sddmm(indptr, indices, xt, dyt, dw)
    ks.backward_fused(indptr, indices, data, xt, dyt, dxt, dw2)
    return fw, bw, dw, dxt, dw2, sc


NAMES = ("spmm", "spmm_t", "sddmm", "fused dx", "fused dw", "spmm_scatter")


def _bits(a):
    """The raw bits (so that -0.0 != 0.0 and NaN payloads count)."""
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _gather_in_order(indptr, indices, w, src):
    """out[r] = sum over k in row r of w[k] * src[indices[k]], one term at a time in ascending
    k from 0 (the gathers' documented order), vectorised over rows and batch in NumPy."""
    n_rows, dtype = indptr.shape[0] - 1, src.dtype
    out = np.zeros((n_rows, src.shape[1]), dtype)
    deg = np.diff(indptr)
    for t in range(int(deg.max(initial=0))):
        rows = np.flatnonzero(deg > t)
        k = indptr[rows] + t
        out[rows] = out[rows] + w[k][:, None] * src[indices[k]]
    return out


def _sddmm_in_order(indptr, indices, xt, dyt):
    """dw[k] = <xt[i], dyt[indices[k]]> in the order the kernels' contract fixes for every
    variant (csrc/smlp_dot.h): 32-byte lanes summed in ascending b, lane l + lane l + Q, the
    next Q products added lane-wise, halved to one value, then the remaining products one at
    a time. Vectorised over the entries in NumPy; each + and * rounded once."""
    dtype, B = xt.dtype, xt.shape[1]
    L = 32 // dtype.itemsize
    Q = L // 2
    rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    p = xt[rows] * dyt[indices]  # (nnz, B)
    s = np.zeros(p.shape[0], dtype)
    b1 = 0
    if B >= Q:
        nb = B - B % L
        lanes = np.zeros((p.shape[0], L), dtype)
        for b in range(0, nb, L):
            lanes = lanes + p[:, b:b + L]
        q = lanes[:, :Q] + lanes[:, Q:]
        b1 = nb + Q if B - nb >= Q else nb
        if b1 > nb:
            q = q + p[:, nb:b1]
        while q.shape[1] > 1:  # floats (q0 + q2) + (q1 + q3), doubles q0 + q1
            h = q.shape[1] // 2
            q = q[:, :h] + q[:, h:]
        s = q[:, 0]
    for b in range(b1, B):
        s = s + p[:, b]
    return s


@pytest.mark.parametrize("B", BATCHES)
def test_variants_match_reference(dtype, index_dtype, B, seed):
    prob = _problem(dtype, index_dtype, B, seed)
    ref = _run(REF, *prob)
    scale = float(np.abs(prob[2]).sum() * np.abs(prob[3]).max())
    for isa, ks in VARIANTS.items():
        for name, a, b in zip(NAMES, _run(ks, *prob), ref):
            np.testing.assert_allclose(a, b, atol=tol(dtype, scale), rtol=0,
                                       err_msg=f"{isa} {name}")


@pytest.mark.parametrize("B", [*BATCHES, 2, 5, 6, 10, 12, 15, 24, 28, 31, 32, 48, 200])
def test_every_variant_computes_the_documented_order(dtype, index_dtype, B, seed):
    """Each variant gives the bits of a NumPy emulation of the order the kernels' contract
    fixes (csrc/_cython.pyx: gathers in ascending k; csrc/smlp_dot.h: sddmm in 32-byte
    lanes): no FMA, no reassociation, whatever the vector width. Runs with the baseline
    alone too."""
    indptr, indices, data, xt, dyt, t = _problem(dtype, index_dtype, B, seed)
    n_out = dyt.shape[0]
    fw = _gather_in_order(t[0], t[1], data[t[2]], xt)
    bw = _gather_in_order(indptr, indices, data, dyt)
    dw = _sddmm_in_order(indptr, indices, xt, dyt)
    want = (fw, bw, dw, bw, dw, fw)
    assert fw.shape == (n_out, B)
    for isa, ks in VARIANTS.items():
        for name, a, b in zip(NAMES, _run(ks, indptr, indices, data, xt, dyt, t), want):
            np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"{isa} {name}")


@pytest.mark.parametrize("B", BATCHES)
def test_variants_give_identical_bits(dtype, index_dtype, B, seed):
    """Every output of every kernel that computes floats, variant against variant."""
    _two_variants()
    prob = _problem(dtype, index_dtype, B, seed)
    results = {isa: _run(ks, *prob) for isa, ks in VARIANTS.items()}
    first_isa, first = next(iter(results.items()))
    for isa, got in results.items():
        for name, a, b in zip(NAMES, got, first):
            np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"{isa} vs {first_isa} {name}")


def test_optimizer_updates_bitwise_in_every_variant(dtype, seed):
    rng = np.random.default_rng(seed)
    n = 1001
    w0, v0, g = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    outs = []
    for ks in [REF, *VARIANTS.values()]:
        w, v = w0.copy(), v0.copy()
        ks.sgd_update(w, v, g, 0.01, 0.9, 2e-4, 2.0, 0, 0)
        w2, m2, s2 = w0.copy(), v0.copy() * 0.1, np.abs(v0) * 0.1
        ks.adam_update(w2, m2, s2, g, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 4.0, 0.1, 0.003, 1)
        outs.append((w, v, w2, m2, s2))
    for got in outs[1:]:
        for a, b in zip(got, outs[0]):
            np.testing.assert_array_equal(_bits(a), _bits(b))


def test_auto_picks_the_best_usable_variant():
    ks = _kernels.get("cython")
    assert ks.isa == next(iter(VARIANTS))
    assert "baseline" in VARIANTS


def _isa_in_subprocess(value):
    env = {**os.environ, "SPARSEMLP_ISA": value}
    return subprocess.run(
        [sys.executable, "-c", "from sparsemlp import _kernels; print(_kernels.get('cython').isa)"],
        env=env, capture_output=True, text=True, timeout=120)


def test_isa_environment_variable():
    for isa in VARIANTS:
        r = _isa_in_subprocess(isa)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == isa
    r = _isa_in_subprocess("avx9000")
    assert r.returncode != 0
    assert "SPARSEMLP_ISA='avx9000' is not an instruction-set variant" in r.stderr


def _train_in_subprocess(isa, workdir):
    env = {**os.environ, "SPARSEMLP_ISA": isa, "SPARSEMLP_BACKEND": "cython"}
    r = subprocess.run([sys.executable, str(HERE / "_isa_run.py"), str(workdir)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_whole_runs_are_bitwise_identical_in_every_variant(tmp_path):
    """MLP and RBM, float32 and float64, SGD and Adam, SET evolution after every epoch: every
    metric and every final array (weights, biases, optimizer state) has the same bits."""
    _two_variants()
    got = {isa: _train_in_subprocess(isa, tmp_path / isa) for isa in VARIANTS}
    first_isa = next(iter(got))
    first = got[first_isa]
    for isa, res in got.items():
        assert res["isa"] == isa
        for name, run in res["runs"].items():
            ref = first["runs"][name]
            assert run["arrays"].keys() == ref["arrays"].keys()
            for ep, (a, b) in enumerate(zip(run["metrics"], ref["metrics"]), 1):
                assert a == b, f"{name}, epoch {ep}: {isa} {a} != {first_isa} {b}"
            bad = [k for k in ref["arrays"] if run["arrays"][k] != ref["arrays"][k]]
            assert not bad, f"{name}: {isa} and {first_isa} differ in {bad}"
    # every run trained 3 epochs and evolved its topology
    for name, run in first["runs"].items():
        assert len(run["metrics"]) == 3 and run["evolved"], name
