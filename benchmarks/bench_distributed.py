"""Data-parallel training on MPI: allreduce cost of the flat gradient buffer and one step split.

Two measurements, each run under ``mpiexec`` (this script launches itself as the workers):

* ``allreduce``: one in-place ``Allreduce`` (sum) of a float32 buffer of 1e6, 1e7 and 1e8
  values (one per connection) on ``--ranks`` local ranks: median and min seconds over
  ``--repeats`` (a barrier before each), the algorithm bandwidth ``4 B * n / t`` and the ring
  bus bandwidth ``2 (N-1)/N * 4 B * n / t``;
* ``step``: the 784-10000-10000-10000-10 SET-MLP (epsilon 20, float32) at global batch 128,
  per step: compute (forward and backward of this rank's share), wait (a barrier: load
  imbalance and the other ranks' noise), allreduce of the flat buffer, optimizer update; and
  the whole step as the trainer runs it, with one blocking Allreduce after backward or with
  per-layer ``Iallreduce`` started as each layer's gradient is complete (overlap with the
  rest of backward). On one rank: the serial trainer's step (updates streamed per layer), on
  one thread and on every core.

Rank 0 prints one JSON line per measurement; the driver appends them to ``--out`` with the
run conditions and prints a table.

Example::

    python benchmarks/bench_distributed.py --out benchmarks/results/distributed.jsonl
    python benchmarks/bench_distributed.py --sizes 1e6 --steps 5 --repeats 3   # quick
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import append_jsonl, conditions  # noqa: E402


def _allreduce_worker(sizes, repeats):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    N = comm.Get_size()
    for n in sizes:
        buf = np.ones(int(n), np.float32)
        comm.Allreduce(MPI.IN_PLACE, buf)  # warm-up (pages, shared-memory segments)
        ts = []
        for _ in range(repeats):
            buf[:] = 1.0
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf)
            ts.append(time.perf_counter() - t0)
        every = comm.gather(ts, root=0)  # a step waits for the slowest rank
        if comm.Get_rank() == 0:
            worst = np.max(np.array(every), axis=0)
            assert buf[0] == N, "the sum is wrong"
            med = float(np.median(worst))
            print(json.dumps({"bench": "allreduce", "ranks": N, "values": int(n),
                              "bytes": 4 * int(n), "median_s": med, "min_s": float(worst.min()),
                              "algbw_GBps": 4 * n / med / 1e9,
                              "busbw_GBps": 2 * (N - 1) / N * 4 * n / med / 1e9}), flush=True)
        del buf


def _step_worker(steps, hidden, batch, threads):
    from mpi4py import MPI

    from sparsemlp import TrainConfig, Trainer
    from sparsemlp._parallel import thread_limit
    from sparsemlp._rng import ShardedGenerator, Streams
    from sparsemlp.distributed import MPIComm
    from sparsemlp.training.dataparallel import shard_bounds
    from sparsemlp.training.mlpstep import LayerStep

    comm = MPIComm()
    N, rank = comm.size, comm.rank
    cfg = TrainConfig(hidden=tuple(hidden), batch_size=batch, dtype="float32",
                      threads=threads).resolve()
    rng = np.random.default_rng(0)
    n = batch * (steps + 2)
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    tr = Trainer.from_config(cfg, 784, 10, streams=Streams(0), verbose=False,
                             comm=comm if N > 1 else None)
    model, lr = tr.model, cfg.lr
    drop = tr.streams.get("dropout", 0)
    nnz = sum(model.nnz())
    parts = {k: [] for k in ("compute", "wait", "allreduce", "update", "step", "step_overlap")}

    def serial_step(idx):
        lv, delta = tr._loss_delta(X, y, idx, drop)
        model.backward(delta, tr._grads, LayerStep(tr.optimizer, tr._grads, batch, lr))

    def split_step(idx):
        lo, hi = shard_bounds(batch, N, rank)
        t0 = time.perf_counter()
        lv, delta = tr._loss_delta(X, y, idx[lo:hi], ShardedGenerator(drop, batch, lo, hi))
        model.backward(delta, tr._grads)
        t1 = time.perf_counter()
        comm.barrier()
        t2 = time.perf_counter()
        tr._reduce(tr._flat, lv * (hi - lo), False)
        t3 = time.perf_counter()
        tr.optimizer.step(tr._grads, batch, lr=lr)
        t4 = time.perf_counter()
        for k, v in zip(("compute", "wait", "allreduce", "update"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[k].append(v)

    # per-layer slices of the flat buffer (W.data then b of each layer are adjacent)
    offs, o = [], 0
    for la in model.layers:
        k = la.W.data.shape[0] + la.b.shape[0]
        offs.append((o, o + k))
        o += k

    def overlap_step(idx):
        lo, hi = shard_bounds(batch, N, rank)
        lv, delta = tr._loss_delta(X, y, idx[lo:hi], ShardedGenerator(drop, batch, lo, hi))
        reqs = []

        def started(i):
            a, b = offs[i]
            reqs.append(comm._comm.Iallreduce(MPI.IN_PLACE, tr._flat[a:b]))

        model.backward(delta, tr._grads, started)
        MPI.Request.Waitall(reqs)
        tail = np.array([lv * (hi - lo), 0.0], tr._flat.dtype)
        comm.allreduce_sum_(tail)
        tr.optimizer.step(tr._grads, batch, lr=lr)

    with thread_limit(cfg.threads):
        order = np.arange(n)
        for j in range(steps + 1):  # the first step warms up
            idx = order[j * batch:(j + 1) * batch]
            if N == 1:
                t0 = time.perf_counter()
                serial_step(idx)
                if j:
                    parts["step"].append(time.perf_counter() - t0)
                continue
            split_step(idx)
            for key, fn in (("step", tr._shard_step), ("step_overlap", overlap_step)):
                comm.barrier()
                t0 = time.perf_counter()
                if key == "step":
                    fn(X, y, idx, drop, lr, 0, j, False)
                else:
                    fn(idx)
                if j:
                    parts[key].append(time.perf_counter() - t0)
    if N > 1:
        for k in ("compute", "wait", "allreduce", "update"):
            parts[k] = parts[k][1:]
    med = {k: float(np.median(v)) for k, v in parts.items() if v}
    every = comm.allgather_obj(med) if N > 1 else [med]
    if rank == 0:
        print(json.dumps({"bench": "step", "ranks": N, "sizes": model.sizes, "nnz": nnz,
                          "batch": batch, "threads_per_rank": cfg.threads, "steps": steps,
                          "median_s": med, "median_s_by_rank": every}), flush=True)


def _launch(n, args, timeout):
    mpiexec = (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
               or shutil.which("mpiexec"))
    if mpiexec is None:
        sys.exit('mpiexec not found: pip install -e ".[mpi]"')
    cmd = [mpiexec, "-n", str(n), sys.executable, os.path.abspath(__file__), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--hidden", type=int, nargs="+", default=[10000, 10000, 10000])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--skip", nargs="*", default=[], choices=["allreduce", "step"])
    ap.add_argument("--out")
    ap.add_argument("--worker", choices=["allreduce", "step"], help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker == "allreduce":
        return _allreduce_worker(a.sizes, a.repeats)
    if a.worker == "step":
        return _step_worker(a.steps, a.hidden, a.batch, a.threads)
    cores = len(os.sched_getaffinity(0))
    cond = conditions()
    recs = []
    if "allreduce" not in a.skip:
        recs += _launch(a.ranks, ["--worker", "allreduce", "--repeats", str(a.repeats), "--sizes",
                                  *map(str, a.sizes)], 3600)
    if "step" not in a.skip:
        common = ["--worker", "step", "--steps", str(a.steps), "--batch", str(a.batch),
                  "--hidden", *map(str, a.hidden)]
        for t in sorted({1, cores}):  # one process on one core (the per-core rate), every core
            recs += _launch(1, [*common, "--threads", str(t)], 3600)
        recs += _launch(a.ranks, [*common, "--threads", str(max(1, cores // a.ranks))], 3600)
    for r in recs:
        r.update(conditions=cond)
        if a.out:
            append_jsonl(a.out, r)
        if r["bench"] == "allreduce":
            print(f"allreduce {r['values']:.0e} float32 on {r['ranks']} ranks: median "
                  f"{r['median_s'] * 1e3:.2f} ms (min {r['min_s'] * 1e3:.2f}), algbw "
                  f"{r['algbw_GBps']:.2f} GB/s, busbw {r['busbw_GBps']:.2f} GB/s")
        else:
            parts = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in r["median_s"].items())
            print(f"step {r['sizes']} nnz {r['nnz']} batch {r['batch']} on {r['ranks']} rank(s) x "
                  f"{r['threads_per_rank']} thread(s): {parts}")


if __name__ == "__main__":
    main()
