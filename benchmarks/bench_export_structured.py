"""Exported structured layers (SSS, low rank, ...) against an exported dense layer of the same shape.

One sample through one exported layer (float32, gcc -O2, single thread, the export's own
bench program: median of the trials' ns per call, the competitors alternating in rounds so
that each sees the same load of the shared machine), at parameter shares 0.05, 0.1, 0.2 and
0.3 of a ``--n x --n`` matrix (default 1000 x 1000). The structured layers are the
approximations ``sparsemlp.approx.<kind>`` (``--kinds``: ``sss`` and ``low_rank`` by
default; ``hodlr``, ``hedlr``, ``hmatrix``, ``toeplitz_like``, ``sparse_product`` too) of a
random dense matrix (the timing does not depend on the values), put into a one-layer
SparseMLP and exported with
``sparsemlp.export.to_c``; the dense competitor is the textbook C99 layer of
``bench_export.py`` (``dense-dot``: ``y[j] = b[j] + sum_i W[j][i] x[i]``; ``dense-axpy``: the
column sweep compilers vectorise), the faster of the two being the reference. Reported: ns
per call on the wall clock and on the process CPU clock, the speed-up over dense, and the
Python layer's ``forward`` on the same sample (batch 1; run with one thread, e.g.
``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1``).

Example::

    python benchmarks/bench_export_structured.py
    python benchmarks/bench_export_structured.py --quick
    python benchmarks/bench_export_structured.py --kinds hodlr toeplitz_like --shares 0.01 0.1
"""

import argparse
import os
import subprocess
import tempfile
import time

import numpy as np
from _common import append_jsonl, conditions
from bench_export import _dense_export, _reps

from sparsemlp import SparseMLP, approx
from sparsemlp.export import to_c
from sparsemlp.export._build import build_harness, find_compiler, run_bench
from sparsemlp.nn.functions import make_activation

#: options of the approximations: the timing does not depend on the values, so the Toeplitz-like
#: generators skip the L-BFGS refinement (minutes at n = 1000)
OPTIONS = {"toeplitz_like": {"refine_iter": 0}}


def _python_ns(layer, x, trials, cpu):
    """Median ns of one sample through the Python layer's forward (batch 1), per call."""
    xt = np.ascontiguousarray(x.reshape(-1, 1), dtype=layer.dtype)
    out = np.empty((layer.n_out, 1), layer.dtype)
    clock = time.process_time_ns if cpu else time.perf_counter_ns
    reps, t0 = 1, clock()
    while clock() - t0 < 2e7:  # about 20 ms per trial
        for _ in range(reps):
            layer.forward(xt, out)
        reps *= 2
    ts = []
    for _ in range(trials):
        t0 = clock()
        for _ in range(reps):
            layer.forward(xt, out)
        ts.append((clock() - t0) / reps)
    return float(np.median(ts))


def _time(exes, x, trials, rounds, cpu):
    reps = {k: _reps(e) for k, e in exes.items()}
    t = {k: [] for k in exes}
    for _ in range(rounds):
        for k, e in exes.items():
            t[k] += list(run_bench(e, reps=reps[k], trials=max(1, trials // rounds), x=x,
                                   cpu_time=cpu))
    return {k: float(np.median(v)) for k, v in t.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="matrix size n x n")
    p.add_argument("--shares", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    p.add_argument("--kinds", nargs="+", default=["sss", "low_rank"])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="n = 300, fewer trials")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "export_structured.jsonl"))
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.trials, args.rounds = 300, 6, 2
    n = args.n
    rng = np.random.default_rng(0)
    W = rng.standard_normal((n, n))
    b = rng.standard_normal(n).astype(np.float32)
    x = rng.uniform(-1, 1, n).astype(np.float32)
    cc = subprocess.run([find_compiler("host"), "--version"], capture_output=True,
                        text=True).stdout.splitlines()[0]
    rec = dict(conditions(), compiler=cc, opt="-O2", dtype="float32", shape=[n, n])
    with tempfile.TemporaryDirectory() as d:
        dense = {}
        for form in ("dense-dot", "dense-axpy"):
            os.makedirs(os.path.join(d, form))
            dense[form] = build_harness(_dense_export(W.astype(np.float32), b,
                                                      os.path.join(d, form), form),
                                        "bench", os.path.join(d, form))
        for kind in args.kinds:
            for share in args.shares:
                a = getattr(approx, kind)(W, share=share, **OPTIONS.get(kind, {}))
                m = SparseMLP([a.to_layer(b, dtype=np.float32)], [make_activation("identity")])
                dd = os.path.join(d, f"{kind}{share}")
                exe = build_harness(to_c(m, dd), "bench", dd)
                r = dict(rec, kind=kind, share=share, params=int(a.n_params),
                         description=repr(a)[:120])
                for cpu in (False, True):
                    t = _time({"structured": exe, **dense}, x, args.trials, args.rounds, cpu)
                    best = min(t["dense-dot"], t["dense-axpy"])
                    clock = "cpu" if cpu else "wall"
                    r.update({f"{k}_{clock}_median_ns": v for k, v in t.items()})
                    r[f"speedup_vs_dense_{clock}"] = best / t["structured"]
                    r[f"python_layer_{clock}_median_ns"] = _python_ns(m.layers[0], x,
                                                                      args.trials, cpu)
                append_jsonl(args.out, r)
                print(f"{kind:8} share {share:4.2f} ({r['params']:7} parameters): "
                      f"{r['structured_cpu_median_ns'] / 1e3:8.2f} us CPU, dense "
                      f"{min(r['dense-dot_cpu_median_ns'], r['dense-axpy_cpu_median_ns']) / 1e3:8.2f}"
                      f" us CPU: {r['speedup_vs_dense_cpu']:5.1f}x (wall clock "
                      f"{r['speedup_vs_dense_wall']:5.1f}x); Python layer "
                      f"{r['python_layer_cpu_median_ns'] / 1e3:8.2f} us CPU")


if __name__ == "__main__":
    main()
