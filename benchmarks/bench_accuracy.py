"""Accuracy of reference mode, default mode and ablations on digits and COIL20 (several seeds).

Example::

    python benchmarks/bench_accuracy.py --datasets digits coil20 --seeds 0 1 2 --epochs 20
"""

import argparse
import dataclasses
import os
import time

import numpy as np
from _common import SHARED, append_jsonl, conditions

from sparsemlp import TrainConfig, Trainer
from sparsemlp._rng import Streams
from sparsemlp.data import load

_C01 = dict(mode="default", lr=0.01, lr_schedule="constant")
_C05 = dict(mode="default", lr=0.05, lr_schedule="constant")

# name -> TrainConfig overrides (mode presets fill the rest)
CONFIGS = {
    "reference": dict(mode="reference"),
    "default": dict(mode="default"),  # lr 0.05 with cosine decay since 64bcf4f+1
    "lr0.01-constant": dict(**_C01),
    "default-lr0.05": dict(**_C05),
    "default-no-dropout": dict(**_C01, dropout=0.0),
    "default-sigmoid-mse": dict(**_C01, output_activation="sigmoid", loss="mse"),
    "default-normal-init": dict(**_C01, init="normal", er_law="draws"),
    "default-original-decay": dict(**_C01, decay="original"),
    # the same ablations around lr = 0.05 (constant)
    "lr0.05-no-dropout": dict(**_C05, dropout=0.0),
    "lr0.05-sigmoid-mse": dict(**_C05, output_activation="sigmoid", loss="mse"),
    "lr0.05-normal-init": dict(**_C05, init="normal", er_law="draws"),
    "lr0.05-xavier-init": dict(**_C05, init="xavier_uniform"),
    "lr0.05-evolve-output": dict(**_C05, evolve_output=True),
    "lr0.05-static": dict(**_C05, topology="static"),
}


def dataset_path(name):
    if name == "digits":
        return "digits"
    if name == "coil20":
        return os.path.join(SHARED, "coil20", "COIL20.mat")
    raise SystemExit(f"unknown data set {name}")


def run(ds_name, cfg_name, seed, epochs, hidden, threads):
    over = CONFIGS[cfg_name]
    cfg = TrainConfig(**over, epochs=epochs, seed=seed, hidden=hidden, threads=threads,
                      dataset=dataset_path(ds_name)).resolve()
    streams = Streams(cfg.seed, legacy=cfg.legacy_rng)
    ds = load(cfg.dataset, test_size=cfg.test_size, normalize_how=cfg.normalize,
              reference=cfg.mode == "reference", rng=streams.get("split"))
    t0 = time.perf_counter()
    tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=streams, verbose=False)
    tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
    wall = time.perf_counter() - t0
    h = tr.history.records
    return {"dataset": ds_name, "config": cfg_name, "seed": seed, "epochs": epochs,
            "hidden": list(hidden), "final_acc": h[-1]["test_accuracy"],
            "best_acc": h[-1]["best_test_accuracy"], "final_test_loss": h[-1]["test_loss"],
            "nnz": sum(h[-1]["nnz"]), "wall_s": wall,
            "s_per_epoch": float(np.mean([r["seconds_train"] + r["seconds_evolution"] for r in h])),
            "resolved": {k: v for k, v in dataclasses.asdict(cfg).items()
                         if k in ("batch_size", "lr", "lr_schedule", "dropout", "init", "loss",
                                  "decay")}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "coil20"])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", nargs="+", type=int, default=[3000, 3000, 3000])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "accuracy.jsonl"))
    a = p.parse_args()
    cond = conditions()
    rows = []
    for ds in a.datasets:
        for c in a.configs:
            for s in a.seeds:
                r = run(ds, c, s, a.epochs, tuple(a.hidden), a.threads)
                r.update(conditions=cond)
                append_jsonl(a.out, r)
                rows.append(r)
                print(f"{ds:8s} {c:24s} seed {s}: final {r['final_acc']:.4f} best "
                      f"{r['best_acc']:.4f}  {r['s_per_epoch']:.2f} s/epoch", flush=True)
    print("\nsummary (mean ± std over seeds)")
    print(f"{'dataset':8s} {'config':24s} {'final acc':>16s} {'best acc':>16s} {'s/epoch':>8s}")
    for ds in a.datasets:
        for c in a.configs:
            rs = [r for r in rows if r["dataset"] == ds and r["config"] == c]
            f = np.array([r["final_acc"] for r in rs])
            b = np.array([r["best_acc"] for r in rs])
            t = np.median([r["s_per_epoch"] for r in rs])
            print(f"{ds:8s} {c:24s} {f.mean():.4f} ± {f.std():.4f} {b.mean():.4f} ± {b.std():.4f} "
                  f"{t:8.2f}")


if __name__ == "__main__":
    main()
