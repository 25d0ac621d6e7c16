"""benchmarks/bench_dense.py: helpers, and a tiny run through the path used where dense does not fit.

No timing asserts: only that the script runs, records what it says it records, and that the
estimate of the full dense model is computed from the reduced points as documented.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
sys.path.insert(0, BENCH)

import bench_dense  # noqa: E402


def test_sizes_density_and_estimate():
    assert bench_dense.sizes_for(5) == [784, 5, 5, 5, 10]
    assert bench_dense.sizes_for(5, 0) == [784, 5, 10]
    assert bench_dense.er_density(1000, 10) == 1.0  # the output layer is fully dense
    assert bench_dense.er_density(1000, 1000) == pytest.approx(0.04)
    sizes = bench_dense.sizes_for(1000)
    entries = 784 * 1000 + 2 * 1000 * 1000 + 1000 * 10
    std = bench_dense.dense_bytes_estimate(sizes, "standard")
    lean = bench_dense.dense_bytes_estimate(sizes, "lean")
    # standard: 16 B per weight + a 4 B temporary of the largest layer; lean: 13 B per weight
    assert std - lean == 3 * entries + 4 * 1000 * 1000
    assert 13 * entries < lean < 13 * entries + 100 * 2**20


def test_timed_steps_respects_budget():
    calls = []

    def step():
        calls.append(1)
        return 10.0

    warm, times = bench_dense._timed_steps(step, 2, 50, 3, 25.0)
    assert len(warm) == 2 and len(times) == 3  # 25 s budget / 10 s per step -> the minimum, 3
    warm, times = bench_dense._timed_steps(lambda: 0.001, 1, 7, 3, 25.0)
    assert len(times) == 7


def test_tiny_run_with_reduced_dense_points(tmp_path):
    pytest.importorskip("torch")
    from sparsemlp import _kernels

    out = tmp_path / "dense.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    # --dense-max-gib 0: the full dense model is "too big", so the lean reduced points
    # (one h x h layer, none) run and the full step is estimated from them
    cmd = [sys.executable, os.path.join(BENCH, "bench_dense.py"), "--h", "128", "--threads", "1",
           "--repeats", "1", "--steps", "2", "--warmup", "1", "--samples", "256",
           "--evolution-repeats", "1", "--dense-max-gib", "0", "--margin-gib", "0",
           "--validate-h", "--lock", "", "--backend", _kernels.active(), "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    sparse = [r for r in rows if r["impl"] == "sparse"]
    assert len(sparse) == 1 and not sparse[0].get("skipped")
    s = sparse[0]
    assert s["n_steps"] == 2 and s["step_s_median"] > 0 and s["nnz"] == sum(s["nnz_layers"])
    assert s["sizes"] == [784, 128, 128, 128, 10] and s["evolution_s_median"] > 0
    assert s["nnz_layers"][-1] == 128 * 10  # fully dense output layer
    skipped = [r for r in rows if r.get("skipped")]
    assert {r["variant"] for r in skipped} == {"standard", "lean"}
    assert all("--dense-max-gib" in r["reason"] for r in skipped)
    red = {r["hh"]: r for r in rows if r["impl"] == "dense" and not r.get("skipped")
           and not r.get("estimate")}
    assert set(red) == {0, 1}
    assert red[1]["sizes"] == [784, 128, 128, 10] and red[1]["mask_dtype"] == "torch.bool"
    # the masks hold about the ER density (784 x 128: p = 20 * 912 / 100352 = 0.18)
    assert 0.15 < red[0]["nnz_layers"][0] / (784 * 128) < 0.21
    assert red[0]["nnz_layers"][1] == 128 * 10
    est = [r for r in rows if r.get("estimate")]
    assert len(est) == 1
    assert est[0]["step_s_median"] == pytest.approx(
        2 * red[1]["step_s_median"] - red[0]["step_s_median"])
    assert est[0]["rss_growth"] == 2 * red[1]["rss_growth"] - red[0]["rss_growth"]
    assert "(est.)" in p.stdout  # the summary table uses the estimate and says so
