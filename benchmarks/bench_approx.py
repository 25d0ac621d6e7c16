"""Structured approximation of a trained dense Fashion-MNIST MLP's layers at equal parameter budgets:
every `sparsemlp.approx` kind, magnitude and OBS+refit pruning, and a SET-trained sparse layer.

    python benchmarks/bench_approx.py --shares 0.02 0.05 0.1 0.2 0.3 --layers hidden output

The dense 784-1000-1000-10 model is trained once by the dense competitor of bench_fmnist.py
(benchmarks/_dense.py: the default mode's hyperparameters with BLAS products) and cached as an
``.npz`` (read back through ``training.sources.load_source``). For every layer (``hidden``: the
1000 x 1000 layer, ``output``: the 1000 x 10 one), share and method, the layer alone is replaced
(the others stay dense) and one JSON line records: parameters (and the SSS budget convention
``P(d)``), relative error ``||W - A||_F / ||W||_F``, test accuracy before and after ``--epochs``
epochs of fine-tuning the whole model (static topology; SET evolution of that layer for ``set``;
learning rate ``--tune-lr``), approximation seconds, and the layer's product time per sample
(batch 1 and batch 64, median of ``--repeats``, one thread).

Methods: the kinds of ``approx.KINDS``; ``magnitude`` and ``obs_refit`` (``sparsemlp.prune`` on
that layer only, 2048 training samples for OBS+refit); ``set``: the dense weights at a random
(Erdős–Rényi) pattern of the budget's count, fine-tuned with SET (zeta 0.3 on that layer, 0
elsewhere). ``--pyfaust`` adds pyfaust's hierarchical PALM4MSA (K = 2, the same nonzero split as
ours) on the same matrices where it imports: error and seconds. Results: JSON lines in
benchmarks/results/approx_cells.jsonl, a table on stdout.

Resumable and incremental: every (layer, method, share) cell is one JSON line with a ``cell``
name (``hidden:sss:0.05``) and the ``settings`` that change its numbers (data set, sizes,
fine-tuning epochs, samples and learning rate, bias correction). A rerun skips the cells already
in ``--out`` with the same settings (``--force`` reruns them), so the table can be filled over
several sessions; ``--cells`` picks cells by shell patterns (``'hidden:*:0.05' 'output:*:0.1'``),
``--list`` shows which are done and which are missing, and ``--table`` prints the file's cells
as the Markdown table of benchmarks/README.md. ``--bias-correct`` gives every approximation kind
its bias correction on the calibration samples (``approx.approximate_layer(calib=...)``).
"""

import argparse
import dataclasses
import fnmatch
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from _common import append_jsonl, conditions

from sparsemlp import TrainConfig, Trainer, approx
from sparsemlp._parallel import thread_limit
from sparsemlp._rng import Streams
from sparsemlp.nn.layers import SparseLinear
from sparsemlp.prune import prune
from sparsemlp.training.datasets import load_dataset
from sparsemlp.training.sourcedata import score
from sparsemlp.training.sources import load_source

HERE = os.path.dirname(os.path.abspath(__file__))
PRUNERS = {"magnitude": ("magnitude", "none"), "obs_refit": ("obs", "refit")}
METHODS = [*approx.KINDS, *PRUNERS, "set"]
# cheaper solver settings than the library defaults (same algorithms); --option overrides
OPTIONS = {"sparse_product": {"n_iter": 30}, "toeplitz_like": {"refine_iter": 30}}


def dense_model(args, cfg, ds):
    """The trained dense MLP as a SparseMLP (dense CSR layers), trained once and cached."""
    if not os.path.exists(args.dense_cache):
        sys.path.insert(0, HERE)
        from _dense import train_dense

        dcfg = dataclasses.replace(cfg, epochs=args.dense_epochs, lr=args.dense_lr)
        with thread_limit(args.threads):
            m, _ = train_dense(dcfg, ds, rng=np.random.default_rng(args.seed), log=print)
        arrays = {f"W_{i}": w for i, w in enumerate(m.W)} | {f"b_{i}": b for i, b in enumerate(m.b)}
        os.makedirs(os.path.dirname(os.path.abspath(args.dense_cache)), exist_ok=True)
        np.savez(args.dense_cache, **arrays)
    return load_source(args.dense_cache, activations=["relu", "softmax"], layout="in_out",
                       dtype="float32").model


def layer_dense(layer):
    """``n_in x n_out`` weights of any layer, read off its forward pass (float64)."""
    eye = np.eye(layer.n_in, dtype=layer.dtype)
    out = np.empty((layer.n_out, layer.n_in), layer.dtype)
    layer.forward(eye, out)
    return (out - layer.b[:, None]).T.astype(np.float64)


def product_us(layer, batch, repeats, samples=2000):
    """Median microseconds per sample of ``layer.forward`` on a batch (``samples`` per repeat)."""
    rng = np.random.default_rng(1)
    xt = np.ascontiguousarray(rng.standard_normal((layer.n_in, batch)), dtype=layer.dtype)
    out = np.empty((layer.n_out, batch), layer.dtype)
    n = max(1, int(samples / batch))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            layer.forward(xt, out)
        times.append((time.perf_counter() - t) / (n * batch))
    return 1e6 * float(np.median(times))


def random_pattern(W, nnz, rng):
    """The CSR of W (n_in x n_out) kept at nnz uniformly random positions."""
    n_in, n_out = W.shape
    keys = np.sort(rng.choice(n_in * n_out, size=nnz, replace=False))
    r, c = keys // n_out, keys % n_out
    C = sp.csr_array((W[r, c], (r, c)), shape=W.shape)
    C.sort_indices()
    return C


def replace(model, i, method, share, calib, options, rng, bias_correct=False):
    """A copy of the model with layer i replaced; (model, report dict)."""
    m = _copy(model)
    la = m.layers[i]
    t = time.perf_counter()
    rep = {}
    if method in approx.KINDS:
        opts = {**OPTIONS.get(method, {}), **options.get(method, {})}
        a = approx.approximate_layer(m, i, method, share=share,
                                     calib=calib if bias_correct else None, **opts)
        rep.update(budget=a.budget, solver_rel_error=a.rel_error)
        if hasattr(a, "budget_convention_params"):
            rep["budget_convention_params"] = a.budget_convention_params
        if method == "sparse_product":
            rep["factor_nnz"] = [int(f.nnz) for f in a.factors]
    elif method in PRUNERS:
        crit, comp = PRUNERS[method]
        m, _ = prune(m, density=share, criterion=crit, compensate=comp, layers=[i],
                     calib=calib if crit != "magnitude" else None)
    else:  # set: random pattern of the budget's size, the dense weights on it
        nnz = approx.budget_for((la.n_out, la.n_in), share)
        C = random_pattern(la.W.toarray(), nnz, rng)
        m.replace_layer(i, SparseLinear(C.astype(la.dtype), la.b.copy(), kernels=la.kernels))
    rep["seconds"] = time.perf_counter() - t
    return m, rep


def _copy(model):
    from sparsemlp import SparseMLP

    layers = [SparseLinear(la.W.copy(), la.b.copy(), kernels=la.kernels) for la in model.layers]
    return SparseMLP(layers, list(model.activations))


def fine_tune(model, i, method, cfg, ds, args):
    n = len(model.layers)
    over = dict(epochs=args.epochs, topology="static", lr=args.tune_lr)
    if method == "set":
        over.update(topology="set", zeta=tuple(0.3 if j == i else 0.0 for j in range(n)),
                    evolve_output=i == n - 1)
    tcfg = TrainConfig(dataset=cfg.dataset, hidden=cfg.hidden, seed=cfg.seed,
                       threads=cfg.threads, **over).resolve()
    tr = Trainer(model, tcfg, streams=Streams(args.seed), verbose=False)
    X, y = ds.X_train, ds.y_train
    if args.tune_samples:
        rows = np.random.default_rng(args.seed).choice(len(y), args.tune_samples, replace=False)
        X, y = X[rows], y[rows]
    t = time.perf_counter()
    tr.fit(X, y, ds.X_test, ds.y_test)
    return tr.history.records[-1]["test_accuracy"], time.perf_counter() - t


def pyfaust_row(W, factor_nnz, args):
    """pyfaust's hierarchical PALM4MSA on W (m x n) with our factor nonzeros (K = 2)."""
    try:
        from pyfaust.fact import hierarchical
        from pyfaust.factparams import ConstraintList, ParamsHierarchical, StoppingCriterion
    except ImportError as exc:
        return {"status": f"pyfaust not importable ({exc})"}
    m, n = W.shape
    p = max(m, n)
    fact = ConstraintList("sp", int(factor_nnz[0]), m, p)
    res = ConstraintList("sp", int(factor_nnz[1]), p, n)
    its = OPTIONS["sparse_product"]["n_iter"]
    params = ParamsHierarchical(fact, res, StoppingCriterion(num_its=its),
                                StoppingCriterion(num_its=its))
    t = time.perf_counter()
    F = hierarchical(np.asarray(W, np.float64), params)
    sec = time.perf_counter() - t
    A = F.toarray()
    return {"rel_error": float(np.linalg.norm(W - A) / np.linalg.norm(W)), "seconds": sec,
            "n_params": int(F.nnz_sum()), "n_iter": its}


def pyfaust_random(sizes, share, args):
    """Ours against pyfaust on seeded random N(0, 1) n x n matrices (K = 2, same nonzero split)."""
    cond = conditions()
    for n in sizes:
        W = np.random.default_rng(args.seed).standard_normal((n, n))
        with thread_limit(args.threads):
            t = time.perf_counter()
            a = approx.sparse_product(W, share=share, **OPTIONS["sparse_product"])
            sec = time.perf_counter() - t
            nnz = [int(f.nnz) for f in a.factors]
            row = {"bench": "approx_pyfaust", "shape": [n, n], "share": share, "factor_nnz": nnz,
                   "ours": {"rel_error": a.rel_error, "seconds": sec,
                                 "n_params": a.n_params},
                   "pyfaust": pyfaust_row(W, nnz, args), **cond}
        append_jsonl(args.out, row)
        print(f"{n} x {n}, share {share}: sparsemlp {row['ours']}, pyfaust {row['pyfaust']}",
              flush=True)


def cell_settings(a):
    """The settings that change a cell's numbers (a cell is redone when they differ)."""
    return {"dataset": a.dataset, "hidden": list(a.hidden), "epochs": a.epochs,
            "tune_samples": a.tune_samples, "tune_lr": a.tune_lr, "bias_correct": a.bias_correct,
            "options": a.option}


def done_cells(path, settings):
    """Names of the cells in the JSON lines file at path that were run with these settings."""
    done = set()
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                row = json.loads(line)
                if row.get("bench") == "approx" and row.get("settings") == settings:
                    done.add(row["cell"])
    return done


def all_cells(a):
    """Every cell of the run, in order: (name, layer, method, share); share None for dense."""
    out = []
    for which in a.layers:
        out.append((f"{which}:dense:1", which, "dense", None))
        out += [(f"{which}:{m}:{sh:g}", which, m, sh) for sh in a.shares for m in a.methods]
    return [c for c in out if not a.cells or any(fnmatch.fnmatch(c[0], p) for p in a.cells)]


def print_table(path, settings):
    """The cells of the file with these settings as the Markdown table of benchmarks/README.md."""
    rows = {}
    with open(path) as fh:
        for line in fh:
            r = json.loads(line)
            if r.get("bench") == "approx" and r.get("settings") == settings:
                rows[r["cell"]] = r  # the last line of a cell wins
    order = {m: k for k, m in enumerate(["dense", *METHODS])}
    print("| layer | share | method | parameters | rel. error | acc. before | acc. after "
          f"{settings['epochs']} ep. | approx. s | tune s | us/sample b1 | us/sample b64 | "
          "load |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows.values(), key=lambda r: (r["layer"] != "hidden", r.get("share") or 1,
                                                  order[r["method"]])):
        share = r.get("share") or 1
        load = f"{r['loadavg'][0]:.1f}"
        if r.get("status", "ok") != "ok":
            status = r["status"].split(":")[0] + (f" (min share {r['min_share']:.3g})"
                                                  if "min_share" in r else "")
            print(f"| {r['layer']} | {share:g} | {r['method']} | {status} | | | | | | | | {load} |")
            continue
        params = f"{r['n_params']:,}"
        if "budget_convention_params" in r:
            params += f" (P(d) {r['budget_convention_params']:,})"
        after = "" if r.get("acc_after") is None else f"{r['acc_after']:.4f}"
        sec = f"{r['seconds']:.1f}" if "seconds" in r else ""
        tune = f"{r['tune_seconds']:.0f}" if r.get("tune_seconds") else ""
        print(f"| {r['layer']} | {share:g} | {r['method']} | {params} | {r['rel_error']:.4f} | "
              f"{r['acc_before']:.4f} | {after} | {sec} | {tune} | {r['us_per_sample_b1']:.1f} | "
              f"{r['us_per_sample_b64']:.2f} | {load} |")


def run_cell(base, name, which, method, share, ctx, a):
    """One cell: the row written to the results file."""
    ds, calib, acc0, options = ctx["ds"], ctx["calib"], ctx["acc0"], ctx["options"]
    i = 1 if which == "hidden" else len(base.layers) - 1
    W = ctx["W"][which]
    row = {"bench": "approx", "cell": name, "settings": cell_settings(a), "layer": which,
           "index": i, "shape": list(W.shape), "method": method, "epochs": a.epochs,
           "acc_dense": acc0, "tune_samples": a.tune_samples or len(ds.y_train),
           "tune_lr": a.tune_lr, "bias_correct": a.bias_correct}
    if method == "dense":
        with thread_limit(a.threads):
            b1, b64 = (product_us(base.layers[i], b, a.repeats, a.timing_samples) for b in (1, 64))
        return {**row, "n_params": W.size, "rel_error": 0.0, "acc_before": acc0,
                "acc_after": acc0, "us_per_sample_b1": b1, "us_per_sample_b64": b64}
    row["share"] = share
    with thread_limit(a.threads):
        try:
            m, rep = replace(base, i, method, share, calib, options, np.random.default_rng(a.seed),
                             a.bias_correct)
        except approx.InfeasibleBudgetError as exc:
            return {**row, "status": "infeasible", "min_share": exc.min_share}
        except ValueError as exc:  # e.g. toeplitz_like of a non-square layer
            return {**row, "status": f"not applicable: {exc}"}
        la = m.layers[i]
        A = layer_dense(la)
        row.update(rep, status="ok", n_params=int(la.nnz),
                   rel_error=float(np.linalg.norm(W - A) / np.linalg.norm(W)),
                   acc_before=score(m, ds.X_test, ds.y_test, "cross_entropy")["accuracy"],
                   us_per_sample_b1=product_us(la, 1, a.repeats, a.timing_samples),
                   us_per_sample_b64=product_us(la, 64, a.repeats, a.timing_samples))
        row["acc_after"], row["tune_seconds"] = (fine_tune(m, i, method, ctx["cfg"], ds, a)
                                                 if a.epochs else (None, None))
        if a.pyfaust and method == "sparse_product":
            row["pyfaust"] = pyfaust_row(W.T, rep["factor_nnz"], a)
    return row


def print_row(r):
    share = r.get("share") or 1
    head = f"{r['layer']:>6} {share:>5g} {r['method']:>14}"
    if r.get("status", "ok") != "ok":
        print(f"{head} {r['status'][:70]}" + (f" (min share {r['min_share']:.3g})"
                                              if "min_share" in r else ""), flush=True)
        return
    after = "-" if r.get("acc_after") is None else f"{r['acc_after']:.4f}"
    print(f"{head} {r['n_params']:>8} {r['rel_error']:>7.4f} {r['acc_before']:>6.4f} {after:>6} "
          f"{r.get('seconds', 0.0):>6.1f} {r['us_per_sample_b1']:>8.2f} "
          f"{r['us_per_sample_b64']:>8.2f}" + (f"  pyfaust {r['pyfaust']}" if "pyfaust" in r else ""),
          flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--hidden", type=int, nargs="+", default=[1000, 1000])
    p.add_argument("--dense-epochs", type=int, default=5)
    p.add_argument("--dense-lr", type=float, default=0.01,
                   help="as bench_fmnist's dense model (0.05 diverges)")
    p.add_argument("--dense-cache", help="trained dense model (.npz; default "
                   "results/approx_dense_<dataset>_<hidden>.npz, not committed)")
    p.add_argument("--layers", nargs="+", default=["hidden", "output"],
                   choices=("hidden", "output"))
    p.add_argument("--shares", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2, 0.3])
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--cells", nargs="+", metavar="PATTERN",
                   help="only the cells whose name LAYER:METHOD:SHARE matches a shell pattern")
    p.add_argument("--force", action="store_true", help="rerun cells already in --out")
    p.add_argument("--list", action="store_true", help="list done and missing cells, run nothing")
    p.add_argument("--table", action="store_true", help="print --out's cells as Markdown, run nothing")
    p.add_argument("--option", action="append", default=[], metavar="KIND:NAME=VALUE")
    p.add_argument("--fine-tune-epochs", "--epochs", dest="epochs", type=int, default=5,
                   help="fine-tuning epochs (0: none)")
    p.add_argument("--tune-lr", type=float, default=0.01, help="fine-tuning learning rate "
                   "(cosine schedule)")
    p.add_argument("--tune-samples", type=int, default=0,
                   help="training samples for fine-tuning (0: all)")
    p.add_argument("--bias-correct", action="store_true",
                   help="bias correction of the approximation kinds on the calibration samples")
    p.add_argument("--calib-samples", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--timing-samples", type=int, default=2000,
                   help="samples per timing repeat (batch 1: as many calls)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pyfaust", action="store_true", help="compare sparse_product with pyfaust")
    p.add_argument("--pyfaust-random", type=int, nargs="+", metavar="N",
                   help="only compare with pyfaust on random N x N matrices at the first share")
    p.add_argument("--out", default=os.path.join(HERE, "results", "approx_cells.jsonl"))
    a = p.parse_args()
    a.dense_cache = a.dense_cache or os.path.join(
        HERE, "results", f"approx_dense_{a.dataset}_{'-'.join(map(str, a.hidden))}.npz")
    options = {}
    for item in a.option:
        kind, _, kv = item.partition(":")
        name, _, value = kv.partition("=")
        options.setdefault(kind, {})[name] = float(value) if "." in value else int(value)
    if a.pyfaust_random:
        return pyfaust_random(a.pyfaust_random, a.shares[0], a)
    settings = cell_settings(a)
    if a.table:
        return print_table(a.out, settings)
    done = done_cells(a.out, settings)
    cells = all_cells(a)
    todo = [c for c in cells if a.force or c[0] not in done]
    if a.list:
        for c in cells:
            print(f"{'done' if c[0] in done else 'missing':>7} {c[0]}")
        print(f"{len(cells) - len(todo)} of {len(cells)} cells done with {settings}")
        return None
    if not todo:
        print(f"all {len(cells)} cells are in {a.out} (--force reruns them)")
        return None
    cfg = TrainConfig(dataset=a.dataset, hidden=tuple(a.hidden), seed=a.seed,
                      threads=a.threads).resolve()
    ds = load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng))
    base = dense_model(a, cfg, ds)
    acc0 = score(base, ds.X_test, ds.y_test, "cross_entropy")["accuracy"]
    rng = np.random.default_rng(a.seed)
    k = min(a.calib_samples, len(ds.y_train))
    ctx = {"ds": ds, "cfg": cfg, "acc0": acc0, "options": options,
           "calib": ds.X_train[np.sort(rng.choice(len(ds.y_train), k, replace=False))],
           "W": {w: base.layers[1 if w == "hidden" else len(base.layers) - 1].W.toarray()
                 .astype(np.float64) for w in a.layers}}
    print(f"dense {base.sizes}: test accuracy {acc0:.4f}; {len(todo)} of {len(cells)} cells to run")
    print(f"{'layer':>6} {'share':>5} {'method':>14} {'params':>8} {'rel_err':>7} {'acc0':>6} "
          f"{'acc5':>6} {'sec':>6} {'us/x b1':>8} {'us/x b64':>8}")
    for name, which, method, share in todo:
        t = time.perf_counter()
        row = run_cell(base, name, which, method, share, ctx, a)
        row.update(conditions(), cell_seconds=time.perf_counter() - t)
        append_jsonl(a.out, row)
        print_row(row)
    return None


if __name__ == "__main__":
    main()
