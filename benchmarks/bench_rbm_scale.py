"""SET-RBM at scale on COIL20: sparsemlp against the original approach (SciPy CSR arithmetic).

COIL20 (1440 x 1024 in [0, 1]) split as the original demo (``RandomState(seed).shuffle``,
960 train / 480 test), 1024 visible and H hidden units, epsilon 10, CD-1, batch 10 (96
updates per epoch), lr 0.1, weight decay 2e-7, zeta 0.3, no momentum: the settings of the
original SET-RBM demo (Mocanu et al. 2018, H = 200) at any H. Implementations:

* ``original``: ``benchmarks/_original_rbm.py``, the original code's approach (float64 SciPy
  CSR products, COO round trip with a serial CD loop per batch, dok/lil evolution), one
  thread;
* ``sparsemlp``: ``RBMTrainer`` (``--model rbm``) with keyed Generator streams, the fast
  evolution and float32 (``--dtype``), pseudo-log-likelihood and AIS off.

Each (H, implementation) point runs in its own subprocess (under ``flock LOCK``), which records
RSS after imports and data, builds the model (init time apart), runs the epochs and reports
seconds per epoch (training + evolution, as for the original code; the test pass apart), the
median over epochs, peak RSS and bytes per connection. One JSON line per point in ``--out`` and
a table with ratios at the end.

Example::

    python benchmarks/bench_rbm_scale.py --h 200 100000 1000000 --epochs 3 --original-epochs 1
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import SHARED, append_jsonl, conditions, peak_rss, run_worker, vm_bytes  # noqa: E402

GIB = 2**30
PUBLISHED = {200: 0.53}  # the original SET-RBM code at the demo size, CPU s/epoch on a 2-vCPU VM






def coil20(seed):
    import scipy.io as sio

    path = os.path.join(SHARED, "coil20", "COIL20.mat")
    X = sio.loadmat(path)["X"].astype(np.float64)
    rs = np.random.RandomState(seed)
    idx = np.arange(X.shape[0])
    rs.shuffle(idx)
    n_tr = int(X.shape[0] * 2 / 3)
    return rs, X[idx[:n_tr]], X[idx[n_tr:]]


def worker_original(args):
    import _original_rbm as orig

    rs, Xtr, Xte = coil20(args.seed)
    if orig._cd_loop is not None:  # compile outside the timed region
        z = np.zeros((1, 1))
        orig.cd_update(0.0, 0.1, z, z, z, z, np.zeros(1, np.int32), np.zeros(1, np.int32),
                       np.zeros(1))
    base = vm_bytes("VmRSS")
    t0 = time.perf_counter()
    model = orig.OriginalSETRBM(Xtr.shape[1], args.h, rs=rs)
    init_s = time.perf_counter() - t0
    nnz = int(model.W.nnz)
    epochs = orig.run_epochs(model, Xtr, Xte, epochs=args.epochs)
    return dict(init_s=init_s, nnz=nnz, base_rss=base, peak_rss=peak_rss(), epochs=epochs,
                threads=1, dtype="float64", cd_kernel=orig.CD_KERNEL)


def worker_sparsemlp(args):
    import sparsemlp
    from sparsemlp import TrainConfig
    from sparsemlp.training.rbm import RBMTrainer

    _, Xtr, Xte = coil20(args.seed)
    Xtr, Xte = Xtr.astype(args.dtype), Xte.astype(args.dtype)
    cfg = TrainConfig(model="rbm", hidden=(args.h,), epsilon=10.0, epochs=args.epochs,
                      batch_size=10, lr=0.1, momentum=0.0, weight_decay=2e-7, decay="original",
                      zeta=(0.3,), drop_last=True, dtype=args.dtype, normalize="none",
                      pll="none", ais_every=0, seed=args.seed, threads=args.threads,
                      checkpoint_every=0).resolve()
    base = vm_bytes("VmRSS")
    t0 = time.perf_counter()
    tr = RBMTrainer.from_config(cfg, Xtr.shape[1], verbose=False)
    init_s = time.perf_counter() - t0
    nnz = tr.model.layer.nnz
    tr.fit(Xtr, Xte)
    epochs = [dict(train_s=r["seconds_train"], eval_s=r["seconds_eval"],
                   evolution_s=r["seconds_evolution"],
                   epoch_s=r["seconds_train"] + r["seconds_evolution"],
                   train_recon=r["train_recon"], test_recon=r["test_recon"], nnz=r["nnz"][0])
              for r in tr.history.records]
    return dict(init_s=init_s, nnz=nnz, base_rss=base, peak_rss=peak_rss(), epochs=epochs,
                threads=args.threads or os.cpu_count(), dtype=cfg.dtype,
                backend=tr.model.kernels.name, sparsemlp=sparsemlp.__version__)


def run_point(impl, h, epochs, args):
    wargs = ["--worker", impl, "--h", str(h), "--epochs", str(epochs), "--seed", str(args.seed),
             "--threads", str(args.threads), "--dtype", args.dtype]
    r = run_worker(__file__, wargs, args.lock)
    med = {k: float(np.median([e[k] for e in r["epochs"]]))
           for k in ("epoch_s", "train_s", "evolution_s", "eval_s")}
    r.update(impl=impl, h=h, n_epochs=len(r["epochs"]), **{f"{k}_median": v for k, v in med.items()},
             epoch_s_min=float(min(e["epoch_s"] for e in r["epochs"])),
             bytes_per_conn=(r["peak_rss"] - r["base_rss"]) / r["nnz"],
             peak_rss_gib=r["peak_rss"] / GIB)
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--h", type=int, nargs="+", default=[200, 100_000, 1_000_000])
    ap.add_argument("--impls", nargs="+", default=["original", "sparsemlp"],
                    choices=["original", "sparsemlp"])
    ap.add_argument("--epochs", type=int, default=3, help="sparsemlp epochs per point")
    ap.add_argument("--original-epochs", type=int, default=1,
                    help="epochs of the original approach at h >= 100000 (else --epochs)")
    ap.add_argument("--threads", type=int, default=0, help="sparsemlp threads (0 = all)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="sparsemlp dtype (the original is float64)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lock", default="/tmp/sparsemlp-bench.lock",
                    help="run each point under 'flock LOCK' ('' = no lock)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "rbm_scale.jsonl"))
    ap.add_argument("--worker", choices=["original", "sparsemlp"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.h = args.h[0]
        fn = worker_original if args.worker == "original" else worker_sparsemlp
        print(json.dumps(fn(args), default=float))
        return 0
    cond = conditions()
    print(f"# {cond}", flush=True)
    rows = {}
    for h in args.h:
        for impl in args.impls:
            ep = args.original_epochs if impl == "original" and h >= 100_000 else args.epochs
            r = run_point(impl, h, ep, args)
            r.update(conditions=cond, published_epoch_s=PUBLISHED.get(h) if impl == "original"
                     else None, command=" ".join(sys.argv))
            rows[h, impl] = r
            append_jsonl(args.out, r)
            print(f"h={h} {impl} ({r['dtype']}): nnz {r['nnz']}, {r['epoch_s_median']:.3f} s/epoch "
                  f"(train {r['train_s_median']:.3f} + evolution {r['evolution_s_median']:.3f}; "
                  f"test {r['eval_s_median']:.3f}), init {r['init_s']:.1f} s, peak RSS "
                  f"{r['peak_rss_gib']:.2f} GiB, {r['bytes_per_conn']:.1f} B/conn, test recon "
                  f"{r['epochs'][-1]['test_recon']:.5f}, load {r['loadavg_before'][0]:.2f}",
                  flush=True)
    print("\n| H | nnz | original s/epoch (train + evo) | sparsemlp s/epoch (train + evo) "
          "| speed-up | original peak RSS | sparsemlp peak RSS | B/conn orig / ours |")
    print("|---|---|---|---|---|---|---|---|")
    for h in args.h:
        o, s = rows.get((h, "original")), rows.get((h, "sparsemlp"))
        nnz = (s or o)["nnz"]

        def cell(r):
            return (f"{r['epoch_s_median']:.3f} ({r['train_s_median']:.3f} + "
                    f"{r['evolution_s_median']:.3f})") if r else "-"
        cells = [f"{h:,}", f"{nnz:,}", cell(o), cell(s),
                 f"{o['epoch_s_median'] / s['epoch_s_median']:.1f}x" if o and s else "-",
                 f"{o['peak_rss_gib']:.2f} GiB" if o else "-",
                 f"{s['peak_rss_gib']:.2f} GiB" if s else "-",
                 f"{o['bytes_per_conn']:.0f} / {s['bytes_per_conn']:.1f}" if o and s else "-"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
