"""Fashion-MNIST: pre-defined sparse [800, 100, 10] (fan-out [50, 10]) against dense MLPs, same script.

The comparison of Dey et al., "Pre-Defined Sparse Neural Networks with Hardware Acceleration",
IEEE JETCAS 9(2):332-345 (2019) (the trained models shipped with their code: sparse 97.97 %,
dense [784, 112, 10] 98.09 % MNIST test accuracy), on Fashion-MNIST: the sparse net pads the
784 pixels to 800 and uses a frozen ``regular`` or ``clash-free`` (z = [200, 5], 200 cycles per
layer) pattern; the dense competitors are ``benchmarks/_dense.py`` MLPs [784, 112, 10] (the
original's dense reference), [784, 100, 10] and [784, 52, 10] (about the sparse net's parameter
count). Every model uses the same data, split, scaling, init law, dropout, loss, optimizer, L2
and schedule (sparsemlp's default mode), each in its own subprocess. After all points, the KL
divergence of every model's test softmax outputs from the dense [784, 112, 10] predictions
averaged over seeds (the original's ``preds_compare``; leave-one-out for the dense-112 runs
themselves; compared outputs floored at 1e-7, as exact float32 zeros make it infinite) is
computed and one JSON line per point is appended. ``regular-rewire`` and ``clash-free-rewire``
train the same patterns with degree-preserving SET rewiring of the hidden layer after every
epoch (``--rewire degree-preserving``).

Example::

    python benchmarks/bench_predefined.py --models regular clash-free dense112 dense100 \\
        dense52 --seeds 0 1 2 --epochs 30 --set lr=0.01
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import append_jsonl, conditions, parse_overrides

HERE = os.path.dirname(os.path.abspath(__file__))

# model -> TrainConfig settings (sparse) or hidden size (dense, benchmarks/_dense.py)
MODELS = {
    "regular": dict(topology="regular", hidden=(100,), fan_out=(50, 10), pad_inputs=800),
    "clash-free": dict(topology="clash-free", hidden=(100,), fan_out=(50, 10), z=(200, 5),
                       pad_inputs=800),
    # the same patterns, rewired after every epoch by degree-preserving SET (hidden layer)
    "regular-rewire": dict(topology="regular", hidden=(100,), fan_out=(50, 10), pad_inputs=800,
                           rewire="degree-preserving"),
    "clash-free-rewire": dict(topology="clash-free", hidden=(100,), fan_out=(50, 10),
                              z=(200, 5), pad_inputs=800, rewire="degree-preserving"),
    "dense112": dict(hidden=(112,)),
    "dense100": dict(hidden=(100,)),
    "dense52": dict(hidden=(52,)),
}
REFERENCE_MODEL = "dense112"
KL_EPS = 1e-7  # float32 softmax outputs underflow to 0; floor them as the loss clip does


def point(model, seed, epochs, threads, overrides, preds_path):
    from sparsemlp import TrainConfig, Trainer
    from sparsemlp._parallel import thread_limit
    from sparsemlp._rng import Streams
    from sparsemlp.cli.train import load_dataset

    spec = MODELS[model]
    cfg = TrainConfig(dataset="fashion-mnist", epochs=epochs, seed=seed, threads=threads,
                      **spec, **overrides).resolve()
    streams = Streams(cfg.seed, legacy=cfg.legacy_rng)
    ds = load_dataset(cfg, streams)
    t0 = time.perf_counter()
    extra = {}
    if model.startswith("dense"):
        sys.path.insert(0, HERE)
        from _dense import train_dense

        with thread_limit(threads):
            m, recs = train_dense(cfg, ds, rng=np.random.default_rng(seed),
                                  log=lambda s: print(s, file=sys.stderr))
            X = np.ascontiguousarray(ds.X_test, dtype=m.dtype)
            preds = np.concatenate([m.forward(X[s:s + 1024])[0][-1]
                                    for s in range(0, X.shape[0], 1024)])
        weights = sum(w.size for w in m.W)
        params = m.n_params()
        sizes = m.sizes
    else:
        tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=streams,
                                 verbose=False)
        before = [la.W.indices.copy() for la in tr.model.layers]
        tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
        recs = tr.history.records
        with thread_limit(threads):
            preds = tr.model.predict_raw(ds.X_test)
        weights = sum(tr.model.nnz())
        params = weights + sum(la.n_out for la in tr.model.layers)
        sizes = tr.model.sizes
        extra["topology_unchanged"] = all(np.array_equal(b, la.W.indices)
                                          for b, la in zip(before, tr.model.layers))
        extra["degrees"] = [{"out": sorted(set(np.diff(la.W.indptr).tolist())),
                             "in": sorted(set(np.bincount(la.W.indices,
                                                          minlength=la.n_out).tolist()))}
                            for la in tr.model.layers]
        extra["clash_free"] = [None if la.schedule is None else la.schedule.summary(la.W)
                               for la in tr.model.layers]
    wall = time.perf_counter() - t0
    np.save(preds_path, np.asarray(preds, dtype=np.float64))
    acc = float(np.mean(np.argmax(preds, axis=1) == ds.y_test))
    spe = [r["seconds_train"] + r.get("seconds_evolution", 0.0) for r in recs]
    return {"bench": "predefined", "model": model, "seed": seed, "epochs": epochs,
            "sizes": list(sizes), "threads": threads, "overrides": overrides,
            "weights": int(weights), "params": int(params),
            "final_acc": recs[-1]["test_accuracy"], "best_acc": recs[-1]["best_test_accuracy"],
            "acc_from_preds": acc, "final_test_loss": recs[-1]["test_loss"],
            "s_per_epoch_median": float(np.median(spe)), "wall_s": wall,
            "s_evolution_total": float(sum(r.get("seconds_evolution", 0.0) for r in recs)),
            "curve": [r["test_accuracy"] for r in recs], **extra,
            "resolved": {k: v for k, v in dataclasses.asdict(cfg).items()
                         if k in ("lr", "lr_schedule", "batch_size", "dropout", "init",
                                  "weight_decay", "momentum", "dtype", "topology", "rewire",
                                  "fan_out", "z", "pad_inputs")},
            "conditions": conditions()}


def add_kl(records, preds):
    """KL of each point's predictions from the mean dense-112 predictions over seeds."""
    from sparsemlp.nn.functions import kl_divergence

    ref_keys = [k for k in preds if k[0] == REFERENCE_MODEL]
    for rec in records:
        key = (rec["model"], rec["seed"])
        others = [k for k in ref_keys if k != key]
        if not others:
            rec["kl_vs_dense112"] = None
            continue
        ref = np.mean([preds[k] for k in others], axis=0)
        rec["kl_vs_dense112"] = kl_divergence(ref, preds[key], eps=KL_EPS)
        rec["kl_vs_dense112_exact"] = kl_divergence(ref, preds[key])  # no floor: may be inf
        rec["kl_reference_runs"] = len(others)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="TrainConfig overrides for every model (JSON values), e.g. lr=0.01")
    p.add_argument("--out", default=os.path.join(HERE, "results", "predefined.jsonl"))
    p.add_argument("--point", nargs=3, metavar=("MODEL", "SEED", "PREDS"),
                   help=argparse.SUPPRESS)
    a = p.parse_args()
    overrides = parse_overrides(a.set)
    if a.point:
        rec = point(a.point[0], int(a.point[1]), a.epochs, a.threads, overrides, a.point[2])
        print(json.dumps(rec))
        return
    records, preds = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            for model in a.models:
                path = os.path.join(tmp, f"{model}-{seed}.npy")
                cmd = [sys.executable, __file__, "--point", model, str(seed), path, "--epochs",
                       str(a.epochs), "--threads", str(a.threads), "--set", *a.set]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode:
                    print(res.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{model} seed {seed} failed")
                rec = json.loads(res.stdout.strip().splitlines()[-1])
                records.append(rec)
                preds[(model, seed)] = np.load(path)
                print(f"{model:17s} seed {seed}: final {rec['final_acc']:.4f} (best "
                      f"{rec['best_acc']:.4f}) | {rec['params']:,} params | "
                      f"{rec['s_per_epoch_median']:.2f} s/epoch | load "
                      f"{rec['conditions']['loadavg'][0]:.2f}", flush=True)
    add_kl(records, preds)
    for rec in records:
        append_jsonl(a.out, rec)
    print(f"\n{'model':17s} {'params':>8s} {'final acc (mean over seeds)':>28s} {'KL vs dense112':>15s}")
    for model in a.models:
        rs = [r for r in records if r["model"] == model]
        accs = [r["final_acc"] for r in rs]
        kls = [r["kl_vs_dense112"] for r in rs if r["kl_vs_dense112"] is not None]
        kl = f"{np.mean(kls):.4f}" if kls else "-"
        print(f"{model:17s} {rs[0]['params']:8,d} {np.mean(accs):20.4f} +- {np.std(accs):.4f} "
              f"{kl:>15s}")


if __name__ == "__main__":
    main()
