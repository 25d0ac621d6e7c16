"""Kernel micro-benchmarks: every backend against plain SciPy (and torch.sparse if importable).

Times the forward product (spmm), the backward product (spmm_t), the weight gradient (sddmm),
the fused backward and the SGD update on Erdos-Renyi-like layers, plus ``forward_vcopy``: the
forward as ``spmm_t`` over the transposed index with a column-order copy of the values
(``data[perm]``, +4 B per connection, refreshed once per optimizer step; the copy is not in
the timing, its cost is recorded as ``vcopy_s``; DESIGN.md 3.3 asks to benchmark both).
Prints a table of medians, GFLOP/s and speed-ups over SciPy, and appends one JSON line per
point to ``--out``.

Example::

    python benchmarks/bench_kernels.py --n 3000 30000 --batch 32 128 --threads 1 2 \
        --repeats 7 --backends cython numba numpy --out benchmarks/results/kernels.jsonl

Competitors, all in the same process:

* ``scipy``: the SciPy/NumPy-only path a user would write: ``W.T @ xt`` (forward),
  ``W @ dyt`` (backward), gather + einsum on W's pattern (sddmm; there is no SciPy SDDMM),
  ``W @ dyt`` followed by that sddmm (fused), NumPy expressions on ``W.data`` (sgd).
* ``torch``: ``torch.sparse_csr`` products (``mm`` of the transposed CSR for the forward,
  ``mm`` for the backward, ``sparse.sampled_addmm`` for sddmm); skipped with the reason recorded
  when torch is not importable.
* ``cython``, ``numba``, ``numpy``: sparsemlp kernel backends (skipped with the reason when
  unavailable). ``numpy`` is the reference backend (test oracle).

Threads are set with ``sparsemlp._parallel.thread_limit`` (OpenMP, BLAS, Numba).
FLOP counts: 2*nnz*B per product, 4*nnz*B for the fused backward; sgd reports GB/s instead
(5 arrays of nnz values read or written).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np
import scipy
import scipy.sparse as sp

from sparsemlp import _kernels
from sparsemlp._parallel import thread_limit

OPS = ("forward", "forward_vcopy", "backward", "sddmm", "fused", "sgd")
HERE = pathlib.Path(__file__).resolve().parent


def erdos_renyi_csr(n_in, n_out, epsilon, rng, dtype, index_dtype):
    """Random canonical CSR with ~epsilon*(n_in+n_out) uniform entries, O(nnz) memory.

    Draws linear positions i*n_out + j, keeps unique ones until the target count is reached,
    then sorts them (CSR order). Never allocates an n_in x n_out array.
    """
    total = n_in * n_out
    nnz = min(total, int(round(epsilon * (n_in + n_out))))
    if nnz > total // 2:  # dense enough: sample without replacement directly
        lin = np.sort(rng.choice(total, size=nnz, replace=False))
    else:
        lin = np.unique(rng.integers(0, total, size=nnz + nnz // 16 + 16, dtype=np.int64))
        while lin.shape[0] < nnz:
            extra = rng.integers(0, total, size=nnz - lin.shape[0] + 16, dtype=np.int64)
            lin = np.unique(np.concatenate([lin, extra]))
        if lin.shape[0] > nnz:
            lin = np.sort(rng.choice(lin, size=nnz, replace=False))
    rows, cols = np.divmod(lin, n_out)
    indptr = np.zeros(n_in + 1, index_dtype)
    np.cumsum(np.bincount(rows, minlength=n_in), out=indptr[1:])
    data = (rng.standard_normal(nnz) / np.sqrt(epsilon)).astype(dtype)
    return indptr, cols.astype(index_dtype), data


def git_describe():
    try:
        return subprocess.run(["git", "describe", "--dirty", "--always"], cwd=HERE,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_busy(interval=0.5):
    """Fraction of all CPUs busy over ``interval`` seconds (Linux /proc/stat), else None."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except OSError:
        return None
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(max_wait, threshold=0.1):
    """Wait up to ``max_wait`` s until other processes use < threshold of the CPUs."""
    t0 = time.monotonic()
    busy = cpu_busy()
    while busy is not None and busy >= threshold and time.monotonic() - t0 < max_wait:
        time.sleep(1.0)
        busy = cpu_busy()
    return busy


def time_call(fn, repeats, min_time):
    """(min, median, number) seconds per call; each repeat runs ``number`` calls >= min_time."""
    fn()  # warm-up (first-touch, JIT, caches)
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(np.ceil(min_time / one)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return float(np.min(samples)), float(np.median(samples)), number


class Layer:
    """One benchmark layer and its preallocated buffers."""

    def __init__(self, n_in, n_out, batch, epsilon, dtype, index_dtype, seed):
        rng = np.random.default_rng(seed)
        self.indptr, self.indices, self.data = erdos_renyi_csr(n_in, n_out, epsilon, rng, dtype,
                                                               index_dtype)
        self.n_in, self.n_out, self.batch = n_in, n_out, batch
        self.nnz = int(self.indices.shape[0])
        self.W = sp.csr_array((self.data, self.indices, self.indptr), shape=(n_in, n_out))
        self.xt = rng.standard_normal((n_in, batch)).astype(dtype)
        self.dyt = rng.standard_normal((n_out, batch)).astype(dtype)
        ref = _kernels.get("numpy")
        self.indptr_t = np.empty(n_out + 1, index_dtype)
        self.indices_t = np.empty(self.nnz, index_dtype)
        self.perm = np.empty(self.nnz, index_dtype)
        ref.csr_transpose(self.indptr, self.indices, n_out, self.indptr_t, self.indices_t,
                          self.perm)
        self.data_t = self.data[self.perm]  # column-order value copy (forward_vcopy)
        self.out = np.empty((n_out, batch), dtype)
        self.dxt = np.empty((n_in, batch), dtype)
        self.dw = np.empty(self.nnz, dtype)
        self.param = self.data.copy()
        self.velocity = np.zeros(self.nnz, dtype)
        self.grad = (rng.standard_normal(self.nnz) * 0.01).astype(dtype)

    def refresh_value_copy(self):
        """The per-step cost of forward_vcopy: data_t = data[perm]."""
        np.take(self.data, self.perm, out=self.data_t)

    def kernel_calls(self, ks):
        """op -> (zero-argument callable, function returning the result to check)."""
        L = self
        return {
            "forward": (lambda: ks.spmm(L.indptr_t, L.indices_t, L.perm, L.data, L.xt, L.out),
                        lambda: L.out),
            "forward_vcopy": (lambda: ks.spmm_t(L.indptr_t, L.indices_t, L.data_t, L.xt, L.out),
                              lambda: L.out),
            "backward": (lambda: ks.spmm_t(L.indptr, L.indices, L.data, L.dyt, L.dxt),
                         lambda: L.dxt),
            "sddmm": (lambda: ks.sddmm(L.indptr, L.indices, L.xt, L.dyt, L.dw), lambda: L.dw),
            "fused": (lambda: ks.backward_fused(L.indptr, L.indices, L.data, L.xt, L.dyt, L.dxt,
                                                L.dw), lambda: L.dw),
            "sgd": (lambda: ks.sgd_update(L.param, L.velocity, L.grad, 0.01, 0.9, 2e-4,
                                          float(L.batch), 0, 0), None),
        }

    def scipy_calls(self):
        """The SciPy/NumPy-only path (no sparsemlp kernels)."""
        L = self
        ref = _kernels.get("numpy")

        def fused():
            L.W @ L.dyt
            ref.sddmm(L.indptr, L.indices, L.xt, L.dyt, L.dw)

        def sgd():  # the original SET code's update on W.data (g already a batch sum)
            g = L.grad / L.batch
            L.velocity[...] = 0.9 * L.velocity - 0.01 * g
            L.param += L.velocity - 2e-4 * L.param

        return {
            "forward": (lambda: L.W.T @ L.xt, None),
            "forward_vcopy": (lambda: L.W.T @ L.xt, None),
            "backward": (lambda: L.W @ L.dyt, None),
            "sddmm": (lambda: ref.sddmm(L.indptr, L.indices, L.xt, L.dyt, L.dw), lambda: L.dw),
            "fused": (fused, None),
            "sgd": (sgd, None),
        }

    def torch_calls(self, torch):
        L = self
        idx = torch.int64 if L.indices.dtype == np.int64 else torch.int32
        Wt = torch.sparse_csr_tensor(torch.from_numpy(L.indptr_t).to(idx),
                                     torch.from_numpy(L.indices_t).to(idx),
                                     torch.from_numpy(L.data[L.perm]),
                                     size=(L.n_out, L.n_in))
        W = torch.sparse_csr_tensor(torch.from_numpy(L.indptr).to(idx),
                                    torch.from_numpy(L.indices).to(idx),
                                    torch.from_numpy(L.data), size=(L.n_in, L.n_out))
        xt, dyt = torch.from_numpy(L.xt), torch.from_numpy(L.dyt)
        dyT = dyt.T.contiguous()

        def sddmm():
            return torch.sparse.sampled_addmm(W, xt, dyT, beta=0.0, alpha=1.0)

        def fused():
            torch.mm(W, dyt)
            sddmm()

        return {
            "forward": (lambda: torch.mm(Wt, xt), None),
            "backward": (lambda: torch.mm(W, dyt), None),
            "sddmm": (sddmm, None),
            "fused": (fused, None),
        }


def flops(op, nnz, batch):
    per = {"forward": 2, "forward_vcopy": 2, "backward": 2, "sddmm": 2, "fused": 4}
    return per.get(op, 0) * nnz * batch


def run(args):
    git = git_describe()
    base = {
        "bench": "kernels", "numpy": np.__version__, "scipy": scipy.__version__,
        "python": platform.python_version(), "git": git, "nproc": os.cpu_count(),
        "epsilon": args.epsilon, "dtype": args.dtype, "index_dtype": args.index_dtype,
        "repeats": args.repeats, "seed": args.seed,
    }
    backends = {}
    skipped = {}
    for name in args.backends:
        if name == "scipy":
            continue
        try:
            backends[name] = _kernels.get(name)
        except ValueError as exc:
            skipped[name] = str(exc)
    try:
        import torch  # noqa: PLC0415 - optional competitor

        torch_mod = torch
    except ImportError as exc:
        torch_mod = None
        skipped["torch"] = f"torch not importable: {exc}"
    if "cython" in backends:
        from sparsemlp._kernels import _cython  # noqa: PLC0415 - report the build

        base["cython_openmp"] = bool(_cython.openmp_enabled())
    for name, why in skipped.items():
        print(f"# skipped {name}: {why}", file=sys.stderr)

    out_path = pathlib.Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(out_path, "a") as fout:
        for name, why in skipped.items():
            fout.write(json.dumps({**base, "backend": name, "skipped": why,
                                   "time": datetime.datetime.now().isoformat()}) + "\n")
        for n in args.n:
            for batch in args.batch:
                layer = Layer(n, n, batch, args.epsilon, np.dtype(args.dtype),
                              np.dtype(args.index_dtype), args.seed)
                vcopy = time_call(layer.refresh_value_copy, 3, 0.0)[0]
                ref_calls = layer.kernel_calls(_kernels.get("numpy"))
                expected = {}
                for op in ("forward", "backward", "sddmm"):
                    ref_calls[op][0]()
                    expected[op] = ref_calls[op][1]().copy()
                for threads in args.threads:
                    with thread_limit(threads) as nt:
                        competitors = {"scipy": layer.scipy_calls()}
                        for name, ks in backends.items():
                            competitors[name] = layer.kernel_calls(ks)
                        if torch_mod is not None:
                            torch_mod.set_num_threads(nt)
                            competitors["torch"] = layer.torch_calls(torch_mod)
                        for op in args.ops:
                            scipy_med = None
                            for name, calls in competitors.items():
                                if op not in calls:
                                    continue
                                fn, result = calls[op]
                                busy = wait_idle(args.wait_idle) if args.wait_idle else None
                                la0 = os.getloadavg()
                                tmin, tmed, number = time_call(fn, args.repeats, args.min_time)
                                la1 = os.getloadavg()
                                err = None
                                key = {"fused": "sddmm", "forward_vcopy": "forward"}.get(op, op)
                                if result is not None and key in expected:
                                    exp = expected[key]
                                    scale = max(1.0, float(np.abs(exp).max(initial=0)))
                                    err = float(np.abs(result() - exp).max(initial=0)) / scale
                                    if err > (1e-4 if args.dtype == "float32" else 1e-10):
                                        print(f"# WARNING {name} {op}: max relative error "
                                              f"{err:.2e} against the numpy backend",
                                              file=sys.stderr)
                                if name == "scipy":
                                    scipy_med = tmed
                                f = flops(op, layer.nnz, batch)
                                rec = {
                                    **base, "op": op, "backend": name, "n_in": n, "n_out": n,
                                    "nnz": layer.nnz, "batch": batch, "threads": nt,
                                    "number": number, "min_s": tmin, "median_s": tmed,
                                    "gflops": f / tmed / 1e9 if f else None,
                                    "gbytes_per_s": (5 * layer.nnz * layer.data.itemsize / tmed
                                                     / 1e9) if op == "sgd" else None,
                                    "speedup_vs_scipy": scipy_med / tmed if scipy_med else None,
                                    "max_rel_err_vs_numpy": err,
                                    "vcopy_s": vcopy if op == "forward_vcopy" else None,
                                    "loadavg_before": la0, "loadavg_after": la1,
                                    "cpu_busy_before": busy,
                                    "time": datetime.datetime.now().isoformat(),
                                }
                                fout.write(json.dumps(rec) + "\n")
                                fout.flush()
                                rows.append(rec)
                                print_row(rec)
    return rows


HEADER = (f"{'op':<14}{'n':>7}{'B':>5}{'thr':>4} {'backend':<8}{'median ms':>11}{'min ms':>10}"
          f"{'GFLOP/s':>9}{'vs scipy':>10}")


def print_row(r):
    if not getattr(print_row, "_header", False):
        print(HEADER)
        print_row._header = True
    rate = f"{r['gflops']:.2f}" if r["gflops"] else f"{r['gbytes_per_s']:.1f}GB/s"
    ratio = f"{r['speedup_vs_scipy']:.2f}x" if r["speedup_vs_scipy"] else "-"
    print(f"{r['op']:<14}{r['n_in']:>7}{r['batch']:>5}{r['threads']:>4} {r['backend']:<8}"
          f"{r['median_s'] * 1e3:>11.3f}{r['min_s'] * 1e3:>10.3f}{rate:>9}{ratio:>10}",
          flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[3000, 30000],
                   help="layer width n_in = n_out (default: 3000 30000)")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128], help="batch sizes B")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="thread counts (0 = all cores)")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats per point")
    p.add_argument("--min-time", type=float, default=0.02,
                   help="seconds per repeat (calls are looped to reach it)")
    p.add_argument("--backends", nargs="+", default=["cython", "numba", "numpy"],
                   help="sparsemlp backends to time besides scipy (and torch if importable)")
    p.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    p.add_argument("--epsilon", type=float, default=20.0, help="ER density parameter")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--index-dtype", default="int32", choices=["int32", "int64"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each point, wait up to SECONDS for the other processes on a "
                        "shared machine to leave the CPUs < 10%% busy (0: do not wait)")
    p.add_argument("--out", default=str(HERE / "results" / "kernels.jsonl"),
                   help="JSON-lines file to append to")
    args = p.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
