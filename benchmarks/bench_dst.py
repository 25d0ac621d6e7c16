"""Dynamic sparse training: SET's random regrowth against gradient regrowth, static and dense.

Two parts, JSON lines each:

- ``accuracy``: Fashion-MNIST (or another named set) with the same hyperparameters for every
  rule (the default mode; only ``--regrow`` / ``--topology`` differ), per rule and seed the
  final and best test accuracy, parameters and seconds per epoch (training + evolution),
  and the evolution's share of the epoch. ``dense`` is the dense MLP of the same shape
  (benchmarks/_dense.py, same data, split, init law, dropout, optimizer and schedule).
- ``cost``: one topology update of an h x h Erdős–Rényi layer (ε = 20) by ``gradient``
  (blocked) and ``gradient-sampled`` against the time of one training epoch of that layer
  (60000 / B steps of forward + backward + SGD update, measured on a few steps). Above
  ``--blocked-max`` positions the blocked update is timed on a slice of the output
  columns and scaled (marked ``extrapolated``): its cost is linear in the columns.

Examples::

    python benchmarks/bench_dst.py accuracy --rules set gradient gradient-sampled static dense \\
        --seeds 0 1 2 --epochs 100
    python benchmarks/bench_dst.py cost --h 1000 10000 100000

The 100-epoch table takes about nine hours on two cores: with ``--work DIR`` every cell is a
run folder that checkpoints every 5 epochs, so the same command, started again after a stop,
continues where it stopped and skips the cells already written to ``--out``.
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
from _common import append_jsonl, conditions

RULES = ("set", "gradient", "gradient-sampled", "static", "dense")


def accuracy_point(rule, seed, a):
    from sparsemlp import TrainConfig, Trainer
    from sparsemlp._parallel import thread_limit
    from sparsemlp._rng import Streams
    from sparsemlp.training.datasets import load_dataset

    kw = {"static": dict(topology="static"), "gradient": dict(regrow="gradient"),
          "gradient-sampled": dict(regrow="gradient-sampled",
                                   regrow_candidates=a.candidates)}.get(rule, {})
    if rule == "dense":  # at the sparse nets' lr 0.05 the dense net diverges (bench_fmnist.py)
        kw = dict(lr=a.dense_lr)
    cfg = TrainConfig(dataset=a.dataset, epochs=a.epochs, seed=seed, hidden=tuple(a.hidden),
                      epsilon=a.epsilon, threads=a.threads, train_samples=a.train_samples,
                      regrow_batch=a.regrow_batch, checkpoint_every=5, **kw).resolve()
    streams = Streams(cfg.seed)
    ds = load_dataset(cfg, streams)
    run = os.path.join(a.work, _cell_name(rule, seed, a)) if a.work else None
    if rule == "dense":
        sys.path.insert(0, "benchmarks")
        from _dense import train_dense

        if run:
            os.makedirs(run, exist_ok=True)
        with thread_limit(a.threads):
            m, recs = train_dense(cfg, ds, rng=np.random.default_rng(seed),
                                  log=lambda s: print(s, file=sys.stderr),
                                  state=run and os.path.join(run, "dense-state.npz"))
        params = m.n_params()
    else:
        tr = _sparse_trainer(Trainer, cfg, ds, streams, run)
        tr.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
        recs = tr.history.records
        params = sum(tr.model.nnz()) + sum(la.n_out for la in tr.model.layers)
    spe = [r["seconds_train"] + r.get("seconds_evolution", 0.0) for r in recs]
    evo = [r.get("seconds_evolution", 0.0) for r in recs]
    return {"bench": "dst", "part": "accuracy", "rule": rule, "seed": seed, "dataset": a.dataset,
            "lr": cfg.lr,
            "epochs": a.epochs, "hidden": list(a.hidden), "epsilon": a.epsilon,
            "train_samples": a.train_samples, "params": int(params),
            "final_acc": recs[-1]["test_accuracy"], "best_acc": recs[-1]["best_test_accuracy"],
            "s_per_epoch_median": float(np.median(spe)),
            "s_evolution_median": float(np.median(evo)),
            "curve": [r["test_accuracy"] for r in recs]}


def _cell_name(rule, seed, a):
    """The run folder of one (rule, seed) cell: every setting that changes its result."""
    h = "-".join(map(str, a.hidden))
    return (f"{a.dataset}-h{h}-eps{a.epsilon:g}-n{a.train_samples}-e{a.epochs}-rb{a.regrow_batch}"
            f"-c{a.candidates:g}-dlr{a.dense_lr:g}/{rule}-seed{seed}")


def _sparse_trainer(Trainer, cfg, ds, streams, run):
    """A trainer for one cell; with a run folder it checkpoints every 5 epochs and a rerun
    continues from the newest checkpoint (resume is exact: the same result as one run)."""
    from sparsemlp.training import checkpoint

    if run is None:
        return Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=streams,
                                   verbose=False)
    if os.path.isdir(run) and checkpoint.read_latest(run) is not None:
        print(f"continuing {run}", file=sys.stderr)
        return Trainer.from_checkpoint(run, run_dir=run, verbose=False)
    shutil.rmtree(run, ignore_errors=True)  # stopped before its first checkpoint: start over
    return Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=streams, run_dir=run,
                               verbose=False)


def _done(path):
    """(rule, seed, settings) of the accuracy cells already in the output file."""
    if not os.path.exists(path):
        return set()
    keys = ("rule", "seed", "dataset", "epochs", "hidden", "epsilon", "train_samples")
    recs = [json.loads(x) for x in open(path) if x.strip()]
    return {json.dumps([r.get(k) for k in keys]) for r in recs if r.get("part") == "accuracy"}


def _median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def cost_point(h, a):
    from sparsemlp import _kernels
    from sparsemlp.evolution.gradient import gradient_topk, sampled_topk
    from sparsemlp.nn import SGD, SparseLinear
    from sparsemlp.topology import erdos_renyi

    rng = np.random.default_rng(0)
    W = erdos_renyi(h, h, epsilon=20, rng=rng)
    layer = SparseLinear(W, kernels="auto")
    ks = _kernels.get(layer.kernels.name)
    opt = SGD([layer.W.data, layer.b], lr=0.01, kernels=layer.kernels.name)
    B = a.batch
    x = rng.standard_normal((h, B)).astype(np.float32)
    z = np.empty((h, B), np.float32)
    dx = np.empty((h, B), np.float32)
    gw, gb = np.empty(layer.nnz, np.float32), np.empty(h, np.float32)

    def step():
        layer.forward(x, z)
        layer.backward(x, z, gw, gb, dxt=dx)
        opt.step([gw, gb], B)
    step()
    n_steps = max(1, 4_000_000 // layer.nnz)  # a sample of >= ~4M connection-steps

    def steps():
        for _ in range(n_steps):
            step()
    t_step = _median_time(steps, a.repeats) / n_steps
    epoch = t_step * (60000 / B)
    Bg = a.regrow_batch
    xt = rng.standard_normal((h, Bg)).astype(np.float32)
    dyt = rng.standard_normal((h, Bg)).astype(np.float32)
    k = int(0.3 * layer.nnz)
    ip, ind = layer.W.indptr, layer.W.indices
    out = {"bench": "dst", "part": "cost", "h": h, "nnz": layer.nnz, "k": k, "batch": B,
           "regrow_batch": Bg, "backend": layer.kernels.name, "s_step": t_step,
           "s_epoch_est": epoch}
    t_s = _median_time(lambda: sampled_topk(ks, ip, ind, h, h, xt, dyt, k, a.candidates,
                                     np.random.default_rng(1)), a.repeats)
    out.update(s_sampled=t_s, sampled_share=t_s / epoch, candidates=a.candidates)
    cols = h if h * h <= a.blocked_max else max(1, a.blocked_max // h)
    sub = layer.W[:, :cols].tocsr() if cols < h else layer.W
    sub.sort_indices()
    kk = min(k, cols * h - sub.nnz)
    t_b = _median_time(lambda: gradient_topk(ks, sub.indptr.astype(ind.dtype),
                                      sub.indices.astype(ind.dtype), cols, xt, dyt[:cols], kk),
                1 if cols < h else a.repeats)
    t_b *= h / cols
    out.update(s_blocked=t_b, blocked_share=t_b / epoch, extrapolated=cols < h,
               blocked_columns_timed=cols)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=("accuracy", "cost"))
    p.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--hidden", nargs="+", type=int, default=[1000, 1000, 1000])
    p.add_argument("--epsilon", type=float, default=20.0)
    p.add_argument("--train-samples", type=int, default=0)
    p.add_argument("--regrow-batch", type=int, default=256)
    p.add_argument("--candidates", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--dense-lr", type=float, default=0.01,
                   help="learning rate of the dense net (it diverges at the sparse nets' 0.05)")
    p.add_argument("--h", nargs="+", type=int, default=[1000, 10000, 100000])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--blocked-max", type=int, default=10**9,
                   help="positions above which the blocked update is timed on a column slice")
    p.add_argument("--out", default="results/dst.jsonl")
    p.add_argument("--work", default="",
                   help="folder of resumable runs (checkpoints every 5 epochs): a rerun "
                        "continues unfinished cells; cells already in --out are skipped")
    p.add_argument("--force", action="store_true", help="run cells already in --out again")
    a = p.parse_args(argv)
    cond = conditions()
    if a.part == "cost":
        for h in a.h:
            r = {**cost_point(h, a), "conditions": cond}
            append_jsonl(a.out, r)
            print(f"h={h}: epoch ~{r['s_epoch_est']:.3g}s, blocked {r['s_blocked']:.3g}s "
                  f"({100 * r['blocked_share']:.2g}%{' extrapolated' if r['extrapolated'] else ''})"
                  f", sampled {r['s_sampled']:.3g}s ({100 * r['sampled_share']:.2g}%)", flush=True)
        return 0
    done = set() if a.force else _done(a.out)
    for seed in a.seeds:
        for rule in a.rules:
            key = json.dumps([rule, seed, a.dataset, a.epochs, list(a.hidden), a.epsilon,
                              a.train_samples])
            if key in done:
                print(f"{rule} seed {seed}: already in {a.out} (--force to run again)")
                continue
            r = {**accuracy_point(rule, seed, a), "conditions": cond}
            append_jsonl(a.out, r)
            print(f"{rule} seed {seed}: final {r['final_acc']:.4f} best {r['best_acc']:.4f} "
                  f"params {r['params']} {r['s_per_epoch_median']:.2f} s/epoch "
                  f"(evolution {r['s_evolution_median']:.3f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
