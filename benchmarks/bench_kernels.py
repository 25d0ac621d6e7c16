"""Kernel micro-benchmarks: every backend against plain SciPy (and torch.sparse if importable).

Times the forward product (spmm), the backward product (spmm_t), the weight gradient (sddmm),
the fused backward and the SGD update on Erdos-Renyi-like layers, plus ``forward_vcopy``: the
forward as ``spmm_t`` over the transposed index with a column-order copy of the values
(``data[perm]``, +4 B per connection, refreshed once per optimizer step; the copy is not in
the timing, its cost is recorded as ``vcopy_s``; timed against the default forward, which
reads ``data[perm[k]]`` through the transposed index, to weigh the two layouts), and
``forward_scatter``: the forward as ``spmm_scatter``, a row-order scatter over W's CSR arrays
(what layers use for batches of at most 4 on layers of at least 2M connections; its torch
competitor is torch's forward).
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

* ``cython-baseline``, ``cython-avx2``, ``cython-avx512``: one instruction-set variant of the
  Cython module each (``cython`` is the one sparsemlp picks here).

Threads are set with ``sparsemlp._parallel.thread_limit`` (OpenMP, BLAS, Numba, torch).
FLOP counts: 2*nnz*B per product, 4*nnz*B for the fused backward; sgd reports GB/s instead
(5 arrays of nnz values read or written).

Bandwidth: a STREAM-like triad ``a = b + s*c`` (float32, 3 x 4 B per element counted, Numba
``prange``) is measured in the same run for each thread count, and every kernel's ``bytes``
(the traffic model of ``traffic_bytes``: every nonzero fetches its whole gathered B-row in
64-byte lines, plus the index, value and output streams) is reported as GB/s and as a
fraction of that triad bandwidth. A fraction above 1 means the gathered rows were served
by the caches.
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

OPS = ("forward", "forward_vcopy", "forward_scatter", "backward", "sddmm", "fused", "sgd")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import wait_idle  # noqa: E402


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


def cpu_model():
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_describe():
    try:
        return subprocess.run(["git", "describe", "--dirty", "--always"], cwd=HERE,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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
            "forward_scatter": (lambda: ks.spmm_scatter(L.indptr, L.indices, L.data, L.xt,
                                                        L.out), lambda: L.out),
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
            "forward_scatter": (lambda: L.W.T @ L.xt, None),
            "backward": (lambda: L.W @ L.dyt, None),
            "sddmm": (lambda: ref.sddmm(L.indptr, L.indices, L.xt, L.dyt, L.dw), lambda: L.dw),
            "fused": (fused, None),
            "sgd": (sgd, None),
        }

    def torch_calls(self, torch, into_out):
        """torch.sparse CSR products; ``into_out``: write into preallocated outputs (``addmm``
        with ``beta=0`` and ``out=``, ``sampled_addmm(out=)``) instead of allocating them."""
        L = self
        idx = torch.int64 if L.indices.dtype == np.int64 else torch.int32

        def csr(indptr, indices, values, shape):
            return torch.sparse_csr_tensor(torch.from_numpy(indptr).to(idx),
                                           torch.from_numpy(indices).to(idx),
                                           torch.from_numpy(values), size=shape)

        Wt = csr(L.indptr_t, L.indices_t, L.data[L.perm], (L.n_out, L.n_in))
        W = csr(L.indptr, L.indices, L.data, (L.n_in, L.n_out))
        dW = csr(L.indptr, L.indices, L.data.copy(), (L.n_in, L.n_out))
        xt, dyt = torch.from_numpy(L.xt), torch.from_numpy(L.dyt)
        dyT = dyt.T  # (B, n_out) view: measured faster than a contiguous copy
        out = torch.from_numpy(L.out)
        dxt = torch.from_numpy(L.dxt)
        res = {}

        if into_out:
            def forward():
                torch.addmm(out, Wt, xt, beta=0.0, out=out)

            def backward():
                torch.addmm(dxt, W, dyt, beta=0.0, out=dxt)

            def sddmm():
                torch.sparse.sampled_addmm(W, xt, dyT, beta=0.0, out=dW)

            fw_res, bw_res = (lambda: L.out), (lambda: L.dxt)
            dw_res = lambda: dW.values().numpy()  # noqa: E731
        else:
            def forward():
                res["fw"] = torch.mm(Wt, xt)

            def backward():
                res["bw"] = torch.mm(W, dyt)

            def sddmm():
                res["dw"] = torch.sparse.sampled_addmm(W, xt, dyT, beta=0.0)

            fw_res, bw_res = (lambda: res["fw"].numpy()), (lambda: res["bw"].numpy())
            dw_res = lambda: res["dw"].values().numpy()  # noqa: E731

        def fused():
            backward()
            sddmm()

        return {
            "forward": (forward, fw_res),
            "forward_scatter": (forward, fw_res),
            "backward": (backward, bw_res),
            "sddmm": (sddmm, dw_res),
            "fused": (fused, dw_res),
        }


def traffic_bytes(op, layer):
    """Bytes a kernel moves if no gathered row is reused from cache (see the docstring).

    Per nonzero: its index (plus ``perm`` for the forward), its value or gradient (4 or 8 B),
    and the gathered B-row rounded up to 64-byte lines; per output row: the row written once;
    sddmm/fused also read their own ``xt`` rows once, sgd streams 5 arrays.
    """
    L = layer
    fsz, isz = L.data.itemsize, L.indices.itemsize
    row = -(-L.batch * fsz // 64) * 64
    nnz = L.nnz
    if op == "forward":
        return nnz * (2 * isz + fsz + row) + L.n_out * L.batch * fsz
    if op == "forward_vcopy":
        return nnz * (isz + fsz + row) + L.n_out * L.batch * fsz
    if op == "forward_scatter":  # the scattered output row is read and written
        return nnz * (isz + fsz + 2 * row) + L.n_in * L.batch * fsz
    if op == "backward":
        return nnz * (isz + fsz + row) + L.n_in * L.batch * fsz
    if op == "sddmm":
        return nnz * (isz + fsz + row) + L.n_in * L.batch * fsz
    if op == "fused":
        return nnz * (isz + 2 * fsz + row) + 2 * L.n_in * L.batch * fsz
    if op == "sgd":
        return 5 * nnz * fsz
    return None


def measure_triad(threads, n=40_000_000, repeats=7):
    """STREAM-like triad bandwidth in GB/s (12 B per float32 element), or (None, reason)."""
    try:
        import numba  # noqa: PLC0415 - optional
    except ImportError as exc:
        return None, f"numba not installed ({exc})"

    @numba.njit(parallel=True, cache=False)
    def triad(a, b, c, s):
        for i in numba.prange(a.shape[0]):
            a[i] = b[i] + s * c[i]

    a = np.zeros(n, np.float32)
    b = np.ones(n, np.float32)
    c = np.full(n, 2.0, np.float32)
    with thread_limit(threads):
        tmin, tmed, _ = time_call(lambda: triad(a, b, c, np.float32(3.0)), repeats, 0.0)
    return 12 * n / tmed / 1e9, None


def flops(op, nnz, batch):
    per = {"forward": 2, "forward_vcopy": 2, "forward_scatter": 2, "backward": 2, "sddmm": 2,
           "fused": 4}
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
    variants = _kernels.cython_variants()
    for name in args.backends:
        if name == "scipy":
            continue
        if name.startswith("cython-"):
            isa = name.split("-", 1)[1]
            if isa in variants:
                backends[name] = variants[isa]
            else:
                skipped[name] = _kernels._isa_reasons.get(isa, f"unknown variant {isa!r}")
            continue
        try:
            backends[name] = _kernels.get(name)
        except ValueError as exc:
            skipped[name] = str(exc)
    if "cython" in backends:
        base["cython_isa"] = backends["cython"].isa
    base["cpu"] = cpu_model()
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
    triads = {}
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
                    if threads not in triads:
                        triads[threads] = measure_triad(threads)
                        gbs, why = triads[threads]
                        rec = {**base, "op": "triad", "threads": threads, "gbytes_per_s": gbs,
                               "skipped": why, "time": datetime.datetime.now().isoformat()}
                        fout.write(json.dumps(rec) + "\n")
                        print(f"# triad, {threads} thread(s): "
                              + (f"{gbs:.1f} GB/s" if gbs else f"skipped ({why})"), flush=True)
                    triad_gbs = triads[threads][0]
                    with thread_limit(threads) as nt:
                        competitors = {"scipy": layer.scipy_calls()}
                        if torch_mod is not None:  # before ours: their best time is the ratio
                            torch_mod.set_num_threads(nt)
                            competitors["torch"] = layer.torch_calls(torch_mod, False)
                            competitors["torch-out"] = layer.torch_calls(torch_mod, True)
                        for name, ks in backends.items():
                            competitors[name] = layer.kernel_calls(ks)
                        for op in args.ops:
                            scipy_med = torch_med = None
                            for name, calls in competitors.items():
                                if op not in calls:
                                    continue
                                fn, result = calls[op]
                                busy = wait_idle(args.wait_idle) if args.wait_idle else None
                                la0 = os.getloadavg()
                                tmin, tmed, number = time_call(fn, args.repeats, args.min_time)
                                la1 = os.getloadavg()
                                err = None
                                key = {"fused": "sddmm", "forward_vcopy": "forward",
                                       "forward_scatter": "forward"}.get(op, op)
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
                                if name.startswith("torch"):
                                    torch_med = min(tmed, torch_med or np.inf)
                                f = flops(op, layer.nnz, batch)
                                nbytes = traffic_bytes(op, layer)
                                gbs = nbytes / tmed / 1e9 if nbytes else None
                                rec = {
                                    **base, "op": op, "backend": name, "n_in": n, "n_out": n,
                                    "nnz": layer.nnz, "batch": batch, "threads": nt,
                                    "number": number, "min_s": tmin, "median_s": tmed,
                                    "gflops": f / tmed / 1e9 if f else None,
                                    "bytes": nbytes, "gbytes_per_s": gbs,
                                    "triad_gbytes_per_s": triad_gbs,
                                    "fraction_of_triad": (gbs / triad_gbs
                                                          if gbs and triad_gbs else None),
                                    "speedup_vs_scipy": scipy_med / tmed if scipy_med else None,
                                    "speedup_vs_torch": (torch_med / tmed if torch_med and not
                                                         name.startswith("torch") else None),
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


HEADER = (f"{'op':<14}{'n':>7}{'B':>5}{'thr':>4} {'backend':<15}{'median ms':>11}{'min ms':>10}"
          f"{'GFLOP/s':>9}{'GB/s':>7}{'triad':>7}{'vs scipy':>10}{'vs torch':>10}")


def print_row(r):
    if not getattr(print_row, "_header", False):
        print(HEADER)
        print_row._header = True

    def fmt(v, spec, suffix=""):
        return "-" if v is None else f"{v:{spec}}{suffix}"

    print(f"{r['op']:<14}{r['n_in']:>7}{r['batch']:>5}{r['threads']:>4} {r['backend']:<15}"
          f"{r['median_s'] * 1e3:>11.3f}{r['min_s'] * 1e3:>10.3f}{fmt(r['gflops'], '.2f'):>9}"
          f"{fmt(r['gbytes_per_s'], '.1f'):>7}{fmt(r['fraction_of_triad'], '.2f'):>7}"
          f"{fmt(r['speedup_vs_scipy'], '.2f', 'x'):>10}{fmt(r['speedup_vs_torch'], '.2f', 'x'):>10}",
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
