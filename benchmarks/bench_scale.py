"""Full SET epochs at scale and the scaling curve (seconds per epoch against connections).

The lung demo shape of the original SET-MLP code of Mocanu et al. (2018): synthetic 203 x 3312,
5 classes, 135 / 68 split, batch 2, 67 steps per epoch, 3312-h-h-h-5, epsilon 20, zeta 0.3,
``mode="reference"`` (sigmoid + MSE, N(0, 0.1^2) draws init, original decay, output layer
evolved), float32, with keyed Generator streams (``legacy_rng=False``: the legacy stream
replays one scalar draw per connection at init, minutes at 60 M connections; training is the
same algorithm).

Every h runs in its own subprocess (under ``flock --lock``): RSS after imports and data is the
baseline; then the model is built (``init_s``), and ``--epochs`` full epochs run with a run
directory and a checkpoint after every epoch (``checkpoint_every=1``, one kept). The wall time
of epoch e >= 2 is measured between the ends of epochs e - 1 and e, so it holds training,
evaluation, evolution and one checkpoint; its median is ``epoch_wall_s``. Peak RSS covers
everything, init and the final checkpoint included.

With ``--plot`` the points are drawn on log-log axes (seconds per epoch against connections)
and the least-squares slope of log(seconds) on log(connections) is printed.

Example::

    python benchmarks/bench_scale.py --h 300000 600000
    python benchmarks/bench_scale.py --curve --plot benchmarks/results/scaling.png
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import append_jsonl, conditions, peak_rss, run_worker, vm_bytes  # noqa: E402

# nnz ~ 66 000 + 105 h: about 1e5, 2e5, 4e5, 1e6, 3.2e6, 1e7, 3.2e7, 6.3e7, 1e8 connections
CURVE_H = [320, 1000, 3000, 9000, 30000, 95000, 300000, 600000, 950000]




class _Clock:
    def __init__(self, n):
        self.n, self.ends = n, []

    def on_train_begin(self, trainer):
        self.ends.append(time.perf_counter())

    def on_epoch_end(self, trainer, record):
        self.ends.append(time.perf_counter())
        return len(trainer.history.records) >= self.n

    def on_train_end(self, trainer):
        pass


def worker(args):
    from bench_original import N_CLASSES, N_FEATURES, lung_data

    import sparsemlp
    from sparsemlp import TrainConfig, Trainer

    _, Xtr, ytr, Xte, yte = lung_data(args.seed)
    Xtr, Xte = Xtr.astype(np.float32), Xte.astype(np.float32)
    run_dir = tempfile.mkdtemp(prefix="sparsemlp-scale-", dir=args.tmp)
    cfg = TrainConfig(mode="reference", hidden=(args.h,) * 3, epochs=1000, seed=args.seed,
                      threads=args.threads, legacy_rng=False, checkpoint_every=1,
                      keep_checkpoints=1).resolve()
    base = vm_bytes("VmRSS")
    try:
        t0 = time.perf_counter()
        clock = _Clock(args.epochs)
        tr = Trainer.from_config(cfg, N_FEATURES, N_CLASSES, verbose=False, run_dir=run_dir,
                                 callbacks=[clock])
        init_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        tr.fit(Xtr, ytr, Xte, yte)
        fit_s = time.perf_counter() - t1
        final_s = time.perf_counter() - clock.ends[-1]
        peak = peak_rss()
        nnz = sum(tr.model.nnz())
        recs = tr.history.records
        walls = np.diff(clock.ends).tolist()
        ck = os.path.join(run_dir, "final")
        ck_bytes = sum(os.path.getsize(os.path.join(ck, f)) for f in os.listdir(ck))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    full = walls[1:] or walls
    med = lambda k: float(np.median([r[k] for r in recs]))  # noqa: E731
    return dict(
        h=args.h, nnz=nnz, nnz_layers=tr.model.nnz(), neurons=int(sum(tr.model.sizes)),
        init_s=init_s, fit_s=fit_s, epoch_walls_s=walls, epoch_wall_s=float(np.median(full)),
        train_s=med("seconds_train"), evolution_s=med("seconds_evolution"),
        eval_s=med("seconds_eval"), final_checkpoint_s=final_s, checkpoint_bytes=ck_bytes,
        train_evo_s=float(np.median([r["seconds_train"] + r["seconds_evolution"]
                                     for r in recs])),
        base_rss=base, peak_rss=peak, peak_rss_gib=peak / 2**30,
        bytes_per_conn=(peak - base) / nnz, threads=args.threads or os.cpu_count(),
        backend=tr.model.kernels.name, sparsemlp=sparsemlp.__version__, dtype=cfg.dtype,
        n_epochs=len(recs), test_accuracy=recs[-1].get("test_accuracy"))


def run_point(h, args):
    wargs = ["--worker", "--h", str(h), "--epochs", str(args.epochs), "--seed", str(args.seed),
             "--threads", str(args.threads)] + (["--tmp", args.tmp] if args.tmp else [])
    r = run_worker(__file__, wargs, args.lock)
    return r


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([r["nnz"] for r in rows], float)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    out = {}
    for key, label, mk in [("epoch_wall_s", "full epoch (train+eval+evolution+checkpoint)",
                            "o-"), ("train_evo_s", "training + evolution", "s--")]:
        y = np.array([r[key] for r in rows], float)
        slope, icpt = np.polyfit(np.log10(x), np.log10(y), 1)
        out[key] = slope
        ax.loglog(x, y, mk, label=f"{label}: slope {slope:.3f}")
    xs = np.array([x.min(), x.max()])
    y0 = rows[-1]["epoch_wall_s"] * xs / x[-1]
    ax.loglog(xs, y0, ":", color="gray", label="linear (slope 1) through the largest point")
    ax.set_xlabel("connections (nnz)")
    ax.set_ylabel("seconds per epoch")
    ax.set_title("sparsemlp, 3312-h-h-h-5, batch 2, 67 steps/epoch, 2 cores")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--h", type=int, nargs="+", default=[300000, 600000])
    ap.add_argument("--curve", action="store_true", help=f"h = {CURVE_H}")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="kernel threads (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmp", default=None, help="parent of the temporary run directories")
    ap.add_argument("--lock", default="/tmp/sparsemlp-bench.lock",
                    help="run each point under 'flock LOCK' ('' = no lock)")
    ap.add_argument("--plot", default=None, help="PNG path of the log-log curve")
    ap.add_argument("--from-jsonl", default=None,
                    help="plot the newest line per h of this file instead of running")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "scale.jsonl"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.h = args.h[0]
        print(json.dumps(worker(args), default=float))
        return 0
    hs = CURVE_H if args.curve else args.h
    rows = []
    if args.from_jsonl:
        last = {}
        with open(args.from_jsonl) as fh:
            for line in fh:
                r = json.loads(line)
                last[r["h"]] = r
        rows = [last[h] for h in sorted(last) if h in hs]
    else:
        cond = conditions()
        print(f"# {cond}")
        for h in hs:
            r = run_point(h, args)
            r.update(conditions=cond, command=" ".join(sys.argv))
            append_jsonl(args.out, r)
            rows.append(r)
            print(f"h={h}: nnz {r['nnz']:,} neurons {r['neurons']:,} | init {r['init_s']:.1f} s "
                  f"| epoch {r['epoch_wall_s']:.2f} s (train {r['train_s']:.2f} + evolution "
                  f"{r['evolution_s']:.2f} + eval {r['eval_s']:.2f} + checkpoint) | "
                  f"peak RSS {r['peak_rss_gib']:.2f} GiB, {r['bytes_per_conn']:.1f} B/conn | "
                  f"load {r['loadavg_before'][0]:.2f}", flush=True)
    print("\n| h | neurons | connections | init s | s/epoch (full) | train | evolution | eval "
          "| peak RSS GiB | B/conn |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['h']:,} | {r['neurons']:,} | {r['nnz']:,} | {r['init_s']:.1f} | "
              f"{r['epoch_wall_s']:.2f} | {r['train_s']:.2f} | {r['evolution_s']:.2f} | "
              f"{r['eval_s']:.2f} | {r['peak_rss_gib']:.2f} | {r['bytes_per_conn']:.1f} |")
    if args.plot and len(rows) >= 2:
        slopes = plot(rows, args.plot)
        for k, s in slopes.items():
            verdict = "within" if abs(s - 1) <= 0.1 else "NOT within"
            verdict = "within" if abs(s - 1) <= 0.1 else "NOT within"
            print(f"fitted log-log slope ({k}): {s:.3f} ({verdict} 10% of linear)")
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
