"""Fashion-MNIST 784-1000-1000-1000-10: sparsemlp default mode against a dense MLP, same script.

Each model trains in its own subprocess, so peak RSS is that model's alone. The dense
competitor (benchmarks/_dense.py) uses the same data, split, hyperparameters, init law,
dropout, optimizer and schedule as the sparse default mode, with BLAS dense products.

Example::

    python benchmarks/bench_fmnist.py --models sparse dense --epochs 30 --seeds 0
"""

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from _common import append_jsonl, conditions, parse_overrides

HERE = os.path.dirname(os.path.abspath(__file__))


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cur_rss_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def point(model, seed, epochs, hidden, threads, overrides):
    from sparsemlp import TrainConfig, Trainer
    from sparsemlp._parallel import thread_limit
    from sparsemlp._rng import Streams
    from sparsemlp.cli.train import load_dataset

    base_rss = _rss_mib()
    cfg = TrainConfig(dataset="fashion-mnist", epochs=epochs, seed=seed, hidden=tuple(hidden),
                      threads=threads, **overrides).resolve()
    streams = Streams(cfg.seed, legacy=cfg.legacy_rng)
    ds = load_dataset(cfg, streams)
    data_rss = _rss_mib()
    data_cur = _cur_rss_mib()
    t0 = time.perf_counter()
    if model == "sparse":
        tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=streams, verbose=False)
        tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
        recs = tr.history.records
        params = sum(tr.model.nnz()) + sum(la.n_out for la in tr.model.layers)
    else:
        sys.path.insert(0, HERE)
        from _dense import train_dense

        with thread_limit(threads):
            m, recs = train_dense(cfg, ds, rng=np.random.default_rng(seed),
                                  log=lambda s: print(s, file=sys.stderr))
        params = m.n_params()
    wall = time.perf_counter() - t0
    end_cur = _cur_rss_mib()
    spe = [r["seconds_train"] + r.get("seconds_evolution", 0.0) for r in recs]
    return {"bench": "fmnist", "model": model, "seed": seed, "epochs": epochs,
            "hidden": list(hidden), "threads": threads, "overrides": overrides,
            "final_acc": recs[-1]["test_accuracy"], "best_acc": recs[-1]["best_test_accuracy"],
            "final_test_loss": recs[-1]["test_loss"], "params": int(params),
            "s_per_epoch_median": float(np.median(spe)),
            "s_eval_median": float(np.median([r["seconds_eval"] for r in recs])),
            "wall_s": wall, "rss_baseline_mib": base_rss, "rss_after_data_mib": data_rss,
            "peak_rss_mib": _rss_mib(),
            "rss_now_after_data_mib": data_cur, "rss_now_after_train_mib": end_cur,
            "model_rss_mib": end_cur - data_cur, "curve": [r["test_accuracy"] for r in recs],
            "resolved": {k: v for k, v in dataclasses.asdict(cfg).items()
                         if k in ("lr", "lr_schedule", "batch_size", "dropout", "init",
                                  "epsilon", "dtype")},
            "conditions": conditions()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["sparse", "dense"], choices=["sparse", "dense"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", nargs="+", type=int, default=[1000, 1000, 1000])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="TrainConfig overrides (JSON values), e.g. lr=0.02")
    p.add_argument("--out", default=os.path.join(HERE, "results", "fmnist.jsonl"))
    p.add_argument("--point", nargs=2, metavar=("MODEL", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args()
    overrides = parse_overrides(a.set)
    if a.point:
        rec = point(a.point[0], int(a.point[1]), a.epochs, a.hidden, a.threads, overrides)
        print(json.dumps(rec))
        return
    for seed in a.seeds:
        for model in a.models:
            cmd = [sys.executable, __file__, "--point", model, str(seed), "--epochs",
                   str(a.epochs), "--threads", str(a.threads), "--hidden", *map(str, a.hidden),
                   "--set", *a.set]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(res.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{model} seed {seed} failed")
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            append_jsonl(a.out, rec)
            print(f"{model:6s} seed {seed}: final {rec['final_acc']:.4f} best {rec['best_acc']:.4f}"
                  f" | {rec['params']:,} params | {rec['s_per_epoch_median']:.2f} s/epoch | peak "
                  f"RSS {rec['peak_rss_mib']:.0f} MiB, model + training {rec['model_rss_mib']:.0f} MiB",
                  flush=True)


if __name__ == "__main__":
    main()
