"""sparsemlp against the original SET-MLP approach on the original demo shape (lung, 3312-h-h-h-5).

Lung-shaped synthetic data (203 x 3312, 5 classes, 135 / 68 split, z-scored with training
statistics), 3312-h-h-h-5, epsilon 20, zeta 0.3, batch 2, lr 0.01, momentum 0.9, decay 2e-4,
evolution after every epoch. Implementations:

* ``original``: ``benchmarks/_original.py``, the original code's approach (float64 SciPy
  CSR, COO gradient, allocating CSR update, set-operation evolution), single-threaded;
* ``sparsemlp``: ``Trainer`` with ``TrainConfig(mode="reference", ...)`` (float32).

Every (h, implementation) point runs in its own subprocess (under ``flock --lock`` when the
lock file is given, so timings of different people do not overlap), which measures its RSS
after imports and data (the baseline), builds the model, runs the epochs and reports
seconds per epoch (training + evolution; the test pass separately), the median over epochs,
and bytes per connection = (peak RSS - baseline RSS) / nnz. Results: a table with ratios,
and one JSON line per point in ``--out``.

Example::

    python benchmarks/bench_original.py --h 1000 3000 10000 30000 --epochs 3
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import append_jsonl, conditions, peak_rss, run_worker, vm_bytes  # noqa: E402

# The original SET-MLP code (Mocanu et al. 2018: the authors' code and Cython kernel, plus two
# compatibility fixes for NumPy 2 / SciPy 1.17), timed on a 2-vCPU x86-64 VM on this lung shape:
# seconds per epoch (training + fast evolution), and ~107 bytes per connection net of imports
PUBLISHED = {1000: 1.93, 3000: 6.2, 10000: 22.9, 30000: 72.5}
PUBLISHED_BYTES = 107.0
N_SAMPLES, N_FEATURES, N_CLASSES, N_TRAIN = 203, 3312, 5, 135






def lung_data(seed):
    """Synthetic data of the lung demo's shape, split and z-scored as the original (1.9)."""
    from sparsemlp.data import make_synthetic

    rs = np.random.RandomState(seed)
    X, y = make_synthetic(N_SAMPLES, N_FEATURES, N_CLASSES, rng=np.random.default_rng(seed))
    idx = np.arange(N_SAMPLES)
    rs.shuffle(idx)
    tr, te = idx[:N_TRAIN], idx[N_TRAIN:]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    Xtr, Xte = (X[tr] - mu) / (sd + 1e-4), (X[te] - mu) / (sd + 1e-4)
    return rs, Xtr, y[tr], Xte, y[te]


def worker_original(args):
    import _original

    rs, Xtr, ytr, Xte, yte = lung_data(args.seed)
    Ytr, Yte = np.eye(N_CLASSES)[ytr], np.eye(N_CLASSES)[yte]
    sizes = [N_FEATURES, args.h, args.h, args.h, N_CLASSES]
    if _original._sddmm_loop is not None:  # compile outside the timed region
        _original.sddmm(np.ones((2, 2)), np.ones((2, 2)), np.zeros(1, np.int32),
                        np.zeros(1, np.int32))
    base = vm_bytes("VmRSS")
    t0 = time.perf_counter()
    model = _original.OriginalSETMLP(sizes, rs=rs)
    init_s = time.perf_counter() - t0
    nnz = sum(model.nnz())
    epochs = _original.run_epochs(model, Xtr, Ytr, Xte, Yte, epochs=args.epochs)
    return dict(init_s=init_s, nnz=nnz, nnz_layers=model.nnz(), base_rss=base,
                peak_rss=peak_rss(), epochs=epochs, threads=1, dtype="float64",
                sddmm=_original.SDDMM)


class _StopAfter:
    def __init__(self, n):
        self.n = n

    def on_train_begin(self, trainer):
        pass

    def on_epoch_end(self, trainer, record):
        return len(trainer.history.records) >= self.n

    def on_train_end(self, trainer):
        pass


def worker_sparsemlp(args):
    import sparsemlp
    from sparsemlp import TrainConfig, Trainer

    _, Xtr, ytr, Xte, yte = lung_data(args.seed)
    Xtr, Xte = Xtr.astype(np.float32), Xte.astype(np.float32)
    cfg = TrainConfig(mode="reference", hidden=(args.h,) * 3, epochs=1000, seed=args.seed,
                      threads=args.threads, legacy_rng=not args.generator).resolve()
    base = vm_bytes("VmRSS")
    t0 = time.perf_counter()
    tr = Trainer.from_config(cfg, N_FEATURES, N_CLASSES, verbose=False,
                             callbacks=[_StopAfter(args.epochs)])
    init_s = time.perf_counter() - t0
    nnz = sum(tr.model.nnz())
    tr.fit(Xtr, ytr, Xte, yte)
    epochs = [dict(train_s=r["seconds_train"], eval_s=r["seconds_eval"],
                   evolution_s=r["seconds_evolution"],
                   epoch_s=r["seconds_train"] + r["seconds_evolution"],
                   train_loss=r["train_loss"], test_accuracy=r["test_accuracy"])
              for r in tr.history.records]
    return dict(init_s=init_s, nnz=nnz, nnz_layers=tr.model.nnz(), base_rss=base,
                peak_rss=peak_rss(), epochs=epochs, threads=args.threads or os.cpu_count(),
                dtype=cfg.dtype, legacy_rng=cfg.legacy_rng, backend=tr.model.kernels.name,
                sparsemlp=sparsemlp.__version__)


def run_point(impl, h, epochs, args):
    wargs = ["--worker", impl, "--h", str(h), "--epochs", str(epochs), "--seed", str(args.seed),
             "--threads", str(args.threads)] + (["--generator"] if args.generator else [])
    r = run_worker(__file__, wargs, args.lock)
    ep = [e["epoch_s"] for e in r["epochs"]]
    r.update(impl=impl, h=h, n_epochs=len(ep), epoch_s_median=float(np.median(ep)),
             epoch_s_min=float(np.min(ep)),
             train_s_median=float(np.median([e["train_s"] for e in r["epochs"]])),
             evolution_s_median=float(np.median([e["evolution_s"] for e in r["epochs"]])),
             eval_s_median=float(np.median([e["eval_s"] for e in r["epochs"]])),
             bytes_per_conn=(r["peak_rss"] - r["base_rss"]) / r["nnz"])
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--h", type=int, nargs="+", default=[1000, 3000, 10000, 30000])
    ap.add_argument("--impls", nargs="+", default=["original", "sparsemlp"],
                    choices=["original", "sparsemlp"])
    ap.add_argument("--epochs", type=int, default=3, help="epochs per point")
    ap.add_argument("--original-max-epochs-30k", type=int, default=1,
                    help="epochs of the original approach at h >= 30000")
    ap.add_argument("--threads", type=int, default=0, help="sparsemlp threads (0 = all)")
    ap.add_argument("--generator", action="store_true",
                    help="sparsemlp with keyed Generator streams instead of the legacy "
                         "RandomState (same model and training, faster init)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lock", default="/tmp/sparsemlp-bench.lock",
                    help="run each point under 'flock LOCK' ('' = no lock)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "original.jsonl"))
    ap.add_argument("--worker", choices=["original", "sparsemlp"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.h = args.h[0]
        fn = worker_original if args.worker == "original" else worker_sparsemlp
        print(json.dumps(fn(args), default=float))
        return 0
    cond = conditions()
    print(f"# {cond}")
    rows = {}
    for h in args.h:
        for impl in args.impls:
            ep = args.epochs
            if impl == "original" and h >= 30000:
                ep = min(ep, args.original_max_epochs_30k)
            r = run_point(impl, h, ep, args)
            r.update(conditions=cond, published_epoch_s=PUBLISHED.get(h),
                     command=" ".join(sys.argv))
            rows[h, impl] = r
            append_jsonl(args.out, r)
            print(f"h={h} {impl}: nnz {r['nnz']}, {r['epoch_s_median']:.3f} s/epoch "
                  f"(train {r['train_s_median']:.3f} + evolution {r['evolution_s_median']:.3f}; "
                  f"test {r['eval_s_median']:.3f}), init {r['init_s']:.1f} s, "
                  f"{r['bytes_per_conn']:.1f} B/conn, load {r['loadavg_before'][0]:.2f}",
                  flush=True)
    print("\n| h | nnz | original s/epoch | published | orig/published | sparsemlp s/epoch "
          "| speed-up | original B/conn | sparsemlp B/conn |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h in args.h:
        o, s = rows.get((h, "original")), rows.get((h, "sparsemlp"))
        nnz = (s or o)["nnz"]
        pub = PUBLISHED.get(h)
        cells = [f"{h:,}", f"{nnz:,}",
                 f"{o['epoch_s_median']:.2f}" if o else "-",
                 f"{pub}" if pub else "-",
                 f"{o['epoch_s_median'] / pub:.2f}" if o and pub else "-",
                 f"{s['epoch_s_median']:.3f}" if s else "-",
                 f"{o['epoch_s_median'] / s['epoch_s_median']:.1f}x" if o and s else "-",
                 f"{o['bytes_per_conn']:.0f}" if o else "-",
                 f"{s['bytes_per_conn']:.1f}" if s else "-"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
