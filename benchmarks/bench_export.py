"""Exported C (sparsemlp.export): csr against dense layers, latency against Python, ARM code size.

Three parts (``--parts``), one JSON line per point in ``--out``:

* ``density``: one sample through one exported layer, ``csr`` mode (float32, gcc -O2, single
  thread, the export's own bench program: median of ``--trials`` trials of about 10 ms of
  calls timed with ``clock_gettime``; the competitors alternate in 5 rounds, so that each
  sees the same load of the shared machine) against an exported dense layer of the same
  shape: the same program around a textbook C99 dense layer, ``static const float
  W[n_out][n_in]`` of hex-float literals and ``y[j] = b[j] + sum_i W[j][i] x[i]``
  (``dense-dot``), and its column-sweep form ``y += W[:, i] x[i]`` over ``static const float
  W[n_in][n_out]``, which compilers vectorize (``dense-axpy``). Shapes 100 x 4096 and
  1000 x 784 (outputs x inputs), densities 1-50 %, positions uniform at random.
* ``latency``: one sample through a 784-1000-1000-10 SparseMLP (Erdős–Rényi, epsilon 20,
  ReLU, softmax; ``--run DIR`` takes a trained run instead: the timing does not depend on the
  values, neither side skips zeros) exported as ``csr``, against sparsemlp's Python forward
  (``SparseMLP.forward`` on a (784, 1) float32 array) at 1 thread and at all threads (in
  alternating rounds), and against PyTorch's dense forward of the same shape when torch is
  installed. Also the Python forward of a 784-10-10 net (the fixed cost of a call), and the
  [196, 10, 10, 10] net of the CTO project (dense, csr and unrolled) against its Python
  forward.
* ``codesize``: instructions per connection of ``unrolled`` exports of a [196, 10, 10, 10]
  net (the CTO compiler's; random normal weights, magnitude-pruned to 100 / 50 / 10 %), from
  the ``-O2`` assembly of the ARM cross compilers (``--emit-asm``): instruction lines, not
  directives, labels or data, divided by the number of connections, for the whole file and
  beyond the same net without connections (activations, softmax, API); aarch64 with its
  default fused multiply-add and without (``-ffp-contract=off``), armv7 (``-mfpu=vfp``).

Example::

    python benchmarks/bench_export.py --parts density latency codesize
    python benchmarks/bench_export.py --quick
"""

import argparse
import os
import re
import subprocess
import tempfile
import time

import numpy as np
import scipy.sparse as sp
from _common import append_jsonl, conditions

from sparsemlp import SparseMLP
from sparsemlp._parallel import thread_limit
from sparsemlp.export import to_c
from sparsemlp.export._build import build_harness, compile_c, find_compiler, run_bench
from sparsemlp.export._codegen import CExport
from sparsemlp.export._emit import hex_literals


def _reps(exe, target_s=0.01):
    """Calls per trial so that a trial takes about ``target_s``."""
    reps = 10
    while True:
        t = np.median(run_bench(exe, reps=reps, trials=1)) * reps * 1e-9
        if t > target_s / 4 or reps > 10**7:
            break
        reps *= 10
    return max(1, int(reps * target_s / max(t, 1e-9)))


def _interleaved(exes, trials, rounds=5):
    """Median and minimum ns per call of each program, timed in alternating rounds.

    On a shared machine the load changes by the second: alternating the competitors in
    ``rounds`` rounds of ``trials // rounds`` trials exposes each to the same conditions.
    """
    reps = {k: _reps(e) for k, e in exes.items()}
    t = {k: [] for k in exes}
    for _ in range(rounds):
        for k, e in exes.items():
            t[k] += list(run_bench(e, reps=reps[k], trials=max(1, trials // rounds)))
    return {k: (float(np.median(v)), float(np.min(v)), reps[k]) for k, v in t.items()}


def _dense_export(W, b, d, form):
    """A dense C99 layer with the API of an export (so the same bench program times it)."""
    n_out, n_in = W.shape
    p, P = "net", "NET"
    hdr = [f"#ifndef {P}_H", f"#define {P}_H", "#include <stddef.h>",
           f"#define {P}_IN_SIZE {n_in}", f"#define {P}_OUT_SIZE {n_out}",
           f"#define {P}_SCRATCH_SIZE 1",
           f"int {p}_predict(const float *in, float *out, float *scratch);", "#endif"]
    rows = W if form == "dense-dot" else W.T
    src = [f'#include "{p}.h"', "#include <stdint.h>",
           f"static const float net_b[{n_out}] = {{{', '.join(hex_literals(b, 'f'))}}};",
           f"static const float net_W[{rows.shape[0]}][{rows.shape[1]}] = {{"]
    src += ["    {" + ", ".join(hex_literals(r, "f")) + "}," for r in rows]
    src += ["};", f"int {p}_predict(const float *in, float *out, float *scratch)", "{",
            "    uint32_t i, j;", "    (void)scratch;"]
    if form == "dense-dot":
        src += [f"    for (j = 0; j < {n_out}u; ++j) {{", "        float a = 0.0f;",
                f"        for (i = 0; i < {n_in}u; ++i)", "            a += net_W[j][i] * in[i];",
                "        out[j] = a + net_b[j];", "    }"]
    else:
        src += [f"    for (j = 0; j < {n_out}u; ++j)", "        out[j] = net_b[j];",
                f"    for (i = 0; i < {n_in}u; ++i) {{", "        const float v = in[i];",
                f"        for (j = 0; j < {n_out}u; ++j)", "            out[j] += net_W[i][j] * v;",
                "    }"]
    src += ["    return 0;", "}"]
    for name, lines in (("net.h", hdr), ("net.c", src)):
        with open(os.path.join(d, name), "w") as fh:
            fh.write("\n".join(lines) + "\n")
    return CExport(os.path.join(d, "net.h"), os.path.join(d, "net.c"), p, form, "float",
                   f"{p}_predict", f"{p}_predict", n_in, n_out, 1, n_in * n_out, False)


def part_density(args, rec):
    rng = np.random.default_rng(0)
    for n_out, n_in in ((100, 4096), (1000, 784)):
        with tempfile.TemporaryDirectory() as d:
            Wd = rng.standard_normal((n_out, n_in)).astype(np.float32)
            bd = rng.standard_normal(n_out).astype(np.float32)
            dense = {}
            for form in ("dense-dot", "dense-axpy"):
                os.makedirs(os.path.join(d, form))
                dense[form] = build_harness(_dense_export(Wd, bd, os.path.join(d, form), form),
                                            "bench", os.path.join(d, form))
            for dens in args.densities:
                W = sp.random(n_in, n_out, density=dens, format="csr", dtype=np.float32,
                              random_state=rng, data_rvs=rng.standard_normal)
                m = SparseMLP.from_weights([sp.csr_array(W)],
                                           biases=[rng.standard_normal(n_out)],
                                           output_activation="identity")
                dd = os.path.join(d, f"csr{dens}")
                csr = build_harness(to_c(m, dd), "bench", dd)
                t = _interleaved({"csr": csr, **dense}, args.trials)
                best = min(t["dense-dot"][0], t["dense-axpy"][0])
                r = dict(rec, part="density", shape=[n_out, n_in], density=dens, nnz=int(W.nnz),
                         **{f"{k}_median_ns": v[0] for k, v in t.items()},
                         **{f"{k}_min_ns": v[1] for k, v in t.items()},
                         speedup_vs_dense=best / t["csr"][0],
                         speedup_vs_dense_dot=t["dense-dot"][0] / t["csr"][0],
                         speedup_vs_dense_axpy=t["dense-axpy"][0] / t["csr"][0])
                append_jsonl(args.out, r)
                print(f"{n_out}x{n_in} {100 * dens:4.0f} %: csr {t['csr'][0] / 1e3:8.2f} us, "
                      f"dense-dot {t['dense-dot'][0] / 1e3:8.2f} us "
                      f"({r['speedup_vs_dense_dot']:5.1f}x), dense-axpy "
                      f"{t['dense-axpy'][0] / 1e3:8.2f} us ({r['speedup_vs_dense_axpy']:5.1f}x)")


def _py_forward_ns(model, threads, trials, reps):
    x = np.random.default_rng(1).standard_normal((model.sizes[0], 1)).astype(np.float32)
    out = []
    with thread_limit(threads):
        for _ in range(3):
            model.forward(x)
        for _ in range(trials):
            t0 = time.perf_counter()
            for _ in range(reps):
                model.forward(x)
            out.append((time.perf_counter() - t0) / reps * 1e9)
    return float(np.median(out)), float(np.min(out))


def part_latency(args, rec):
    if args.run:
        from sparsemlp.export._source import load_source

        model = load_source(args.run)[0]
        origin = f"run {args.run}"
    else:
        rng = np.random.default_rng(0)
        model = SparseMLP.erdos_renyi([784, 1000, 1000, 10], epsilon=20, rng=rng)
        for la in model.layers:
            la.b[:] = rng.standard_normal(la.n_out) * 0.1
        origin = "Erdos-Renyi epsilon 20, untrained"
    c, py = [], {1: [], 0: []}
    with tempfile.TemporaryDirectory() as d:
        exe = build_harness(to_c(model, d), "bench", d)
        reps = _reps(exe)
        for _ in range(5):  # alternate C and Python: both see the same load
            c += list(run_bench(exe, reps=reps, trials=max(1, args.trials // 5)))
            for t in py:
                py[t].append(_py_forward_ns(model, t, max(1, args.trials // 5), args.py_reps)[0])
    c = (float(np.median(c)), float(np.min(c)))
    py = {t: (float(np.median(v)), float(np.min(v))) for t, v in py.items()}
    tiny = SparseMLP.erdos_renyi([784, 10, 10], epsilon=5, rng=np.random.default_rng(2))
    floor = _py_forward_ns(tiny, 1, args.trials, args.py_reps * 10)
    r = dict(rec, part="latency", sizes=model.sizes, nnz=sum(model.nnz()), origin=origin,
             c_csr_median_ns=c[0], c_csr_min_ns=c[1], python_1thread_median_ns=py[1][0],
             python_allthreads_median_ns=py[0][0], python_call_floor_ns=floor[0],
             speedup_1thread=py[1][0] / c[0], speedup_allthreads=py[0][0] / c[0])
    try:
        import torch

        torch.set_num_threads(1)
        net = torch.nn.Sequential(torch.nn.Linear(784, 1000), torch.nn.ReLU(),
                                  torch.nn.Linear(1000, 1000), torch.nn.ReLU(),
                                  torch.nn.Linear(1000, 10), torch.nn.Softmax(dim=1)).eval()
        x = torch.randn(1, 784)
        ts = []
        with torch.no_grad():
            for _ in range(args.trials):
                t0 = time.perf_counter()
                for _ in range(args.py_reps):
                    net(x)
                ts.append((time.perf_counter() - t0) / args.py_reps * 1e9)
        r.update(torch_dense_1thread_median_ns=float(np.median(ts)),
                 speedup_vs_torch=float(np.median(ts)) / c[0])
    except ImportError as exc:
        r["torch"] = f"skipped: {exc}"
    append_jsonl(args.out, r)
    _latency_small(args, rec)
    print(f"784-1000-1000-10 ({sum(model.nnz())} connections): C csr {c[0] / 1e3:.1f} us, "
          f"Python forward {py[1][0] / 1e3:.1f} us (1 thread, {r['speedup_1thread']:.1f}x), "
          f"{py[0][0] / 1e3:.1f} us (all threads, {r['speedup_allthreads']:.1f}x); Python call "
          f"floor (784-10-10) {floor[0] / 1e3:.1f} us"
          + (f"; torch dense {r['torch_dense_1thread_median_ns'] / 1e3:.1f} us"
             if "torch_dense_1thread_median_ns" in r else f"; torch {r['torch']}"))


def _latency_small(args, rec):
    """The CTO net [196, 10, 10, 10], dense: where per-call Python costs dominate."""
    rng = np.random.default_rng(3)
    Ws = [sp.csr_array(rng.standard_normal((a, b)).astype(np.float32))
          for a, b in ((196, 10), (10, 10), (10, 10))]
    model = SparseMLP.from_weights(Ws)
    py, c = [], {"csr": [], "unrolled": []}
    with tempfile.TemporaryDirectory() as d:
        exes = {mode: build_harness(to_c(model, os.path.join(d, mode), mode=mode), "bench",
                                    os.path.join(d, mode)) for mode in c}
        reps = {mode: _reps(e) for mode, e in exes.items()}
        for _ in range(5):
            for mode, e in exes.items():
                c[mode] += list(run_bench(e, reps=reps[mode], trials=max(1, args.trials // 5)))
            py.append(_py_forward_ns(model, 1, max(1, args.trials // 5), args.py_reps * 10)[0])
    py = float(np.median(py))
    for mode, v in c.items():
        med = float(np.median(v))
        append_jsonl(args.out, dict(rec, part="latency", sizes=model.sizes, nnz=sum(model.nnz()),
                                    mode=mode, c_median_ns=med, python_1thread_median_ns=py,
                                    speedup_1thread=py / med))
        print(f"[196,10,10,10] ({sum(model.nnz())} connections): C {mode} {med / 1e3:.2f} us, "
              f"Python forward {py / 1e3:.1f} us (1 thread): {py / med:.0f}x")


_INSN = re.compile(r"^\t(?!\.)[a-z]")


def count_instructions(asm):
    """Instruction lines of gcc assembly: tab-indented mnemonics, not directives or labels.

    Parameters
    ----------
    asm : str
        Assembly text (``gcc -S``).

    Returns
    -------
    int
        Number of instructions.
    """
    return sum(1 for line in asm.splitlines() if _INSN.match(line))


def _asm_counts(m, d, target, flags):
    ex = to_c(m, d, mode="unrolled")
    asm = open(compile_c([ex.source], os.path.join(d, "net.s"), target=target, kind="asm",
                         flags=flags)).read()
    words = sum(1 for line in asm.splitlines() if re.match(r"^\t\.(word|4byte|long)\b", line))
    return count_instructions(asm), words


def part_codesize(args, rec):
    rng = np.random.default_rng(0)
    sizes = [196, 10, 10, 10]
    dense = [rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    biases = [rng.standard_normal(b).astype(np.float32) for b in sizes[1:]]
    # the same net without connections: activations, softmax, API, per-output bias code
    empty = SparseMLP.from_weights([sp.csr_array(W.shape, dtype=np.float32) for W in dense],
                                   biases=biases)
    variants = [("armv7", ()), ("aarch64", ()), ("aarch64", ("-ffp-contract=off",))]
    for dens in (1.0, 0.5, 0.1):
        Ws = []
        for W in dense:  # magnitude pruning of each layer to the density
            keep = (np.abs(W) >= np.quantile(np.abs(W), 1 - dens)) if dens < 1 else \
                np.ones(W.shape, bool)
            Ws.append(sp.csr_array(W * keep))
        m = SparseMLP.from_weights(Ws, biases=biases)
        nnz = sum(m.nnz())
        for target, flags in variants:
            try:
                find_compiler(target)
            except Exception as exc:  # noqa: BLE001 - recorded, not fatal
                append_jsonl(args.out, dict(rec, part="codesize", target=target, skipped=str(exc)))
                continue
            with tempfile.TemporaryDirectory() as d:
                n, words = _asm_counts(m, d, target, flags)
                n0, _ = _asm_counts(empty, d, target, flags)
            r = dict(rec, part="codesize", target=target, flags=list(flags), density=dens,
                     nnz=nnz, instructions=n, per_nonzero=n / nnz, fixed_instructions=n0,
                     marginal_per_nonzero=(n - n0) / nnz, literal_words=words)
            append_jsonl(args.out, r)
            print(f"[196,10,10,10] {100 * dens:3.0f} % ({nnz:4} nnz) {target:8} "
                  f"{' '.join(flags):18}: {n} instructions = {n / nnz:.2f} per nonzero; "
                  f"{(n - n0) / nnz:.2f} per nonzero beyond the {n0} of the same net without "
                  "connections")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", default=["density", "latency", "codesize"])
    p.add_argument("--densities", type=float, nargs="+",
                   default=[0.01, 0.05, 0.1, 0.2, 0.3, 0.5])
    p.add_argument("--trials", type=int, default=15)
    p.add_argument("--py-reps", type=int, default=100)
    p.add_argument("--run", help="a trained 784-1000-1000-10 run for the latency part")
    p.add_argument("--quick", action="store_true", help="fewer trials and densities")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "export.jsonl"))
    args = p.parse_args(argv)
    if args.quick:
        args.trials, args.py_reps, args.densities = 5, 20, [0.05, 0.5]
    cc = subprocess.run([find_compiler("host"), "--version"], capture_output=True,
                        text=True).stdout.splitlines()[0]
    rec = dict(conditions(), compiler=cc, opt="-O2", dtype="float32")
    for part in args.parts:
        {"density": part_density, "latency": part_latency, "codesize": part_codesize}[part](
            args, rec)


if __name__ == "__main__":
    main()
