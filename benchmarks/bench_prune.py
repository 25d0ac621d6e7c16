"""Post-hoc pruning (sparsemlp.prune): the CTO setting, a large layer, dense-then-pruned against SET.

Parts (each writes JSON lines to ``--out``):

- ``large``: a dense 1000 x 1000 layer pruned to 10 % with compensation (2,048 calibration
  points), median seconds of ``--repeats`` runs.
- ``seed``: a dense [196, 10, 10, 10] (ReLU, softmax) trained by scikit-learn on the 10,000
  MNIST test images downsampled to 14 x 14 (8,000 train / 2,000 test); 499 of its 2,160 weights
  removed by every criterion x compensation, and accuracy against sparsity from 0 to 95 %.
- ``fmnist``: Fashion-MNIST, a dense 784-1000-1000-10 (scikit-learn) pruned by ``obs`` + ``refit``
  to the per-layer connections of a SET-trained 784-1000-1000-10 (epsilon 20), with and without
  5 epochs of fine-tuning (``train --init-from``), against that SET model; then the SET model
  pruned further to half its connections.

Example::

    python benchmarks/bench_prune.py --parts large seed --out results/prune.jsonl
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from _common import SHARED, append_jsonl, conditions

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COMBOS = [(c, k) for c in ("magnitude", "obd", "obs") for k in ("none", "refit", "obs")]


def _acc(model, X, y):
    return float(np.mean(np.argmax(model.predict_raw(X), axis=1) == y))


def _emit(out, rec):
    rec["conditions"] = conditions()
    append_jsonl(out, rec)
    print(json.dumps({k: v for k, v in rec.items() if k != "conditions"}), flush=True)


# ------------------------------------------------------------------------------------ large


def part_large(a):
    import scipy.sparse as sp

    from sparsemlp import SparseMLP
    from sparsemlp.prune import prune

    rng = np.random.default_rng(0)
    W = sp.csr_array(rng.standard_normal((1000, 1000)) / np.sqrt(1000))
    m = SparseMLP.from_weights([W], activation="relu", output_activation="identity")
    X = rng.standard_normal((2048, 1000)) @ rng.standard_normal((1000, 1000)) / np.sqrt(1000)
    for crit, comp in (("magnitude", "refit"), ("obd", "refit"), ("obs", "refit"),
                       ("obs", "none")):
        times, layer_s = [], []
        for _ in range(a.repeats):
            t = time.perf_counter()
            p, rep = prune(m, density=0.1, criterion=crit, compensate=comp, calib=X,
                           threads=a.threads)
            times.append(time.perf_counter() - t)
            layer_s.append(rep.layers[0].seconds)
        _emit(a.out, {"bench": "prune", "part": "large", "shape": [1000, 1000], "density": 0.1,
                      "criterion": crit, "compensate": comp, "calib": 2048,
                      "threads": a.threads, "seconds_median": float(np.median(times)),
                      "seconds": times, "layer_seconds_median": float(np.median(layer_s)),
                      "rel_error": rep.layers[0].rel_error, "nnz_after": p.layers[0].nnz})


# ------------------------------------------------------------------------------------- seed


def mnist14(seed):
    """The 10,000 MNIST test images, 2 x 2 mean-pooled to 14 x 14, in [0, 1]; 8,000 / 2,000."""
    from sparsemlp.data.readers import read_idx

    d = os.path.join(SHARED, "mnist")
    X = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).astype(np.float64) / 255.0
    y = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    X = X.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(-1, 196)
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    tr, te = perm[:8000], perm[8000:]
    return X[tr], y[tr], X[te], y[te]


def part_seed(a):
    from sklearn.neural_network import MLPClassifier

    from sparsemlp.prune import prune
    from sparsemlp.training.sources import load_source

    for seed in a.seeds:
        Xtr, ytr, Xte, yte = mnist14(seed)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = MLPClassifier((10, 10), max_iter=a.seed_iter, random_state=seed).fit(Xtr, ytr)
        train_s = time.perf_counter() - t
        model = load_source(clf).model
        dense = _acc(model, Xte, yte)
        assert abs(dense - clf.score(Xte, yte)) < 1e-12
        calib = Xtr[np.random.default_rng(seed).choice(8000, 2048, replace=False)]
        base = {"bench": "prune", "part": "seed", "seed": seed, "dense_accuracy": dense,
                "train_seconds": train_s, "weights": int(sum(model.nnz()))}
        # the CTO point: 499 of 2,160 weights, the lowest saliencies over the whole net
        runs = [(c, k, calib, "data") for c, k in COMBOS]
        runs += [("obs", "refit", 2048, "noise"), ("magnitude", "refit", 2048, "noise")]
        if seed in a.od_seeds:  # O(weights² x samples): minutes
            runs += [("output_distance", k, Xtr[:a.od_samples], "data")
                     for k in ("none", "refit")]
        for crit, comp, cal, kind in runs:
            p, rep = prune(model, n_remove=499, criterion=crit, compensate=comp, calib=cal,
                           scope="global", threads=a.threads)
            _emit(a.out, dict(base, kind="n_remove", n_remove=499, sparsity=499 / 2160,
                              criterion=crit, compensate=comp, scope="global", calib=kind,
                              calib_samples=rep.calib_samples, accuracy=_acc(p, Xte, yte),
                              seconds=rep.seconds, nnz_after=rep.nnz_after,
                              layers_after=[la.nnz_after for la in rep.layers]))
        # accuracy against sparsity
        for scope in ("layer", "global"):
            for crit, comp in COMBOS:
                curve = []
                for s in a.sparsities:
                    if s == 0:
                        curve.append(dense)
                        continue
                    p, rep = prune(model, sparsity=s, criterion=crit, compensate=comp,
                                   calib=calib, scope=scope, threads=a.threads)
                    curve.append(_acc(p, Xte, yte))
                _emit(a.out, dict(base, kind="curve", criterion=crit, compensate=comp,
                                  scope=scope, sparsities=list(a.sparsities), accuracy=curve))


# ----------------------------------------------------------------------------------- fmnist


def _train_cli(args, out):
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = [sys.executable, "-m", "sparsemlp.train", *args, "--out", out, "-q"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t
    recs = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    return recs, seconds


def part_fmnist(a):
    from sklearn.neural_network import MLPClassifier

    from sparsemlp import TrainConfig
    from sparsemlp._rng import Streams
    from sparsemlp.prune import prune
    from sparsemlp.training.datasets import load_dataset
    from sparsemlp.training.loading import load_run
    from sparsemlp.training.modelrun import model_config, save_model_run
    from sparsemlp.training.sources import load_source

    tmp = a.workdir or tempfile.mkdtemp(prefix="bench_prune_")
    cfg = TrainConfig(dataset="fashion-mnist", hidden=(1000, 1000), seed=0).resolve()
    ds = load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng))
    Xte, yte = ds.X_test, ds.y_test
    base = {"bench": "prune", "part": "fmnist", "epochs": a.epochs, "threads": a.threads}
    # SET from scratch (default mode, epsilon 20)
    set_dir = os.path.join(tmp, "set")
    if not os.path.exists(set_dir):
        recs, secs = _train_cli(["--dataset", "fashion-mnist", "--hidden", "1000", "1000",
                                 "--epochs", str(a.epochs), "--threads", str(a.threads)], set_dir)
        _emit(a.out, dict(base, model="SET 784-1000-1000-10 (epsilon 20)",
                          accuracy=recs[-1]["test_accuracy"], seconds=secs,
                          params=int(sum(recs[-1]["nnz"]) + 2010)))
    set_model = load_run(set_dir).model
    set_nnz = set_model.nnz()
    # dense, scikit-learn, on the same scaled data
    pkl = os.path.join(tmp, "dense.pkl")
    if not os.path.exists(pkl):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = MLPClassifier((1000, 1000), max_iter=a.dense_epochs or a.epochs, random_state=0,
                                batch_size=128).fit(ds.X_train, ds.y_train)
        dense_s = time.perf_counter() - t
        with open(pkl, "wb") as fh:
            pickle.dump((clf, dense_s), fh)
    with open(pkl, "rb") as fh:
        clf, dense_s = pickle.load(fh)
    dense = load_source(clf).model
    _emit(a.out, dict(base, model="dense 784-1000-1000-10 (scikit-learn)", epochs=clf.n_iter_,
                      accuracy=_acc(dense, Xte, yte), seconds=dense_s,
                      params=int(sum(dense.nnz()) + 2010)))
    # dense -> the SET model's connections per layer, obs + refit
    rows = np.random.default_rng(0).choice(ds.X_train.shape[0], a.calib, replace=False)
    t = time.perf_counter()
    p = dense
    for i, target in enumerate(set_nnz):
        p, _ = prune(p, n_remove=p.layers[i].nnz - target, layers=[i], criterion="obs",
                     compensate="refit", calib=ds.X_train[rows], threads=a.threads)
    prune_s = time.perf_counter() - t
    assert p.nnz() == set_nnz
    _emit(a.out, dict(base, model="dense, pruned (obs + refit)", accuracy=_acc(p, Xte, yte),
                      seconds=dense_s + prune_s, prune_seconds=prune_s,
                      params=int(sum(p.nnz()) + 2010)))
    pruned_dir = os.path.join(tmp, "pruned")
    if not os.path.exists(pruned_dir):
        save_model_run(pruned_dir, p, model_config(p, dataset="fashion-mnist",
                                                   normalize="zscore", seed=0),
                       preprocessing=ds.preprocessing, initial=dense)
    recs, ft_s = _train_cli(["--init-from", pruned_dir, "--topology", "static", "--epochs", "5",
                             "--threads", str(a.threads)], os.path.join(tmp, "finetuned"))
    _emit(a.out, dict(base, model="dense, pruned, 5 epochs fine-tuned (static)",
                      accuracy=recs[-1]["test_accuracy"], seconds=dense_s + prune_s + ft_s,
                      prune_seconds=prune_s, finetune_seconds=ft_s,
                      params=int(sum(recs[-1]["nnz"]) + 2010)))
    # the SET model pruned further, to half its connections
    for crit, comp in (("obs", "refit"), ("magnitude", "none"), ("magnitude", "refit")):
        q, rep = prune(set_model, n_remove=sum(set_nnz) // 2, criterion=crit, compensate=comp,
                       calib=ds.X_train[rows], scope="layer", threads=a.threads)
        _emit(a.out, dict(base, part="set_half", model=f"SET, half pruned ({crit} + {comp})",
                          accuracy=_acc(q, Xte, yte), set_accuracy=_acc(set_model, Xte, yte),
                          seconds=rep.seconds, params=int(sum(q.nnz()) + 2010)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", default=["large", "seed", "fmnist"],
                   choices=["large", "seed", "fmnist"])
    p.add_argument("--repeats", type=int, default=3, help="runs of the large-layer timing")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seed-iter", type=int, default=200, help="scikit-learn epochs (seed net)")
    p.add_argument("--sparsities", type=float, nargs="+",
                   default=[0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    p.add_argument("--od-seeds", type=int, nargs="*", default=[0],
                   help="seeds also pruned by output distance")
    p.add_argument("--od-samples", type=int, default=200,
                   help="calibration samples of the output-distance criterion")
    p.add_argument("--epochs", type=int, default=10, help="Fashion-MNIST training epochs")
    p.add_argument("--dense-epochs", type=int, help="epochs of the dense net (default --epochs)")
    p.add_argument("--calib", type=int, default=2048, help="Fashion-MNIST calibration samples")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", help="keep the Fashion-MNIST models here (reused when present)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "prune.jsonl"))
    a = p.parse_args()
    for part in a.parts:
        {"large": part_large, "seed": part_seed, "fmnist": part_fmnist}[part](a)


if __name__ == "__main__":
    main()
