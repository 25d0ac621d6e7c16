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


@pytest.mark.parametrize("B", BATCHES)
def test_variants_match_reference_and_gathers_match_bitwise(dtype, index_dtype, B, seed):
    prob = _problem(dtype, index_dtype, B, seed)
    ref = _run(REF, *prob)
    scale = float(np.abs(prob[2]).sum() * np.abs(prob[3]).max())
    results = {}
    for isa, ks in VARIANTS.items():
        got = _run(ks, *prob)
        for name, a, b in zip(("spmm", "spmm_t", "sddmm", "fused dx", "fused dw", "spmm_scatter"),
                              got, ref):
            np.testing.assert_allclose(a, b, atol=tol(dtype, scale), rtol=0,
                                       err_msg=f"{isa} {name}")
        results[isa] = got
    # no FMA contraction in any variant: forward and backward gathers are bit-identical
    first = next(iter(results.values()))
    for isa, got in results.items():
        for k in (0, 1, 3, 5):
            np.testing.assert_array_equal(got[k], first[k], err_msg=f"{isa} gather {k}")
        np.testing.assert_array_equal(got[5], got[0], err_msg=f"{isa} scatter vs gather")


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
            np.testing.assert_array_equal(a, b)


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
