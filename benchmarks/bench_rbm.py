"""COIL20 SET-RBM (the demo of Mocanu et al.'s SET-RBM code): its settings, SET against a static topology.

Example::

    python benchmarks/bench_rbm.py --epochs 1000 --topologies set static
"""

import argparse
import os
import time

import numpy as np
import scipy.io as sio
from _common import SHARED, append_jsonl, conditions

from sparsemlp._rng import Streams
from sparsemlp.training import TrainConfig
from sparsemlp.training.rbm import RBMTrainer

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLISHED = {"set": ("coil20_set_rbm_metrics.txt", 0.01359),
             "static": ("coil20_rbm_fixprob_metrics.txt", 0.02663)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--topologies", nargs="+", default=["set", "static"], choices=["set", "static"])
    p.add_argument("--out", default=os.path.join(HERE, "results", "rbm.jsonl"))
    a = p.parse_args()
    path = os.path.join(SHARED, "coil20", "COIL20.mat")
    if not os.path.exists(path):
        raise SystemExit(f"COIL20 not found at {path}; set SPARSEMLP_SHARED_DATA")
    X = sio.loadmat(path)["X"].astype(np.float64)
    for topo in a.topologies:
        streams = Streams(0, legacy=True)  # one RandomState(0): split, topology, training
        idx = np.arange(X.shape[0])
        streams.get("split").shuffle(idx)
        ntr = int(X.shape[0] * 2 / 3)
        cfg = TrainConfig(model="rbm", mode="reference", epochs=a.epochs, topology=topo,
                          pll="none", ais_every=0, checkpoint_every=0)
        tr = RBMTrainer.from_config(cfg, 1024, streams=streams, verbose=False)
        t0 = time.perf_counter()
        hist = tr.fit(X[idx[:ntr]], X[idx[ntr:]]).records
        wall = time.perf_counter() - t0
        ref = np.loadtxt(os.path.join(SHARED, "set-reference-results", PUBLISHED[topo][0]))
        n = min(len(hist), len(ref))
        got = np.array([[r["train_recon_original"], r["test_recon"]] for r in hist[:n]])
        rel = np.abs(got - ref[:n]) / np.abs(ref[:n])
        first_off = int(np.argmax(rel.max(axis=1) > 1e-6)) + 1 if (rel > 1e-6).any() else None
        rec = {"bench": "rbm_coil20", "topology": topo, "epochs": a.epochs,
               "final_test_recon": hist[-1]["test_recon"], "published_final": PUBLISHED[topo][1],
               "published_at_epoch": float(ref[n - 1, 1]), "max_rel_dev_first10": float(rel[:10].max()),
               "first_epoch_off_by_1e-6": first_off, "final_nnz": hist[-1]["nnz"][0], "wall_s": wall,
               "s_per_epoch": wall / a.epochs, "conditions": conditions()}
        append_jsonl(a.out, rec)
        print(f"{topo}: final test recon {rec['final_test_recon']:.5f} (published "
              f"{rec['published_at_epoch']:.5f} at epoch {n}); identical to 1e-6 until epoch "
              f"{(first_off - 1) if first_off else n}; {rec['s_per_epoch']:.3f} s/epoch", flush=True)


if __name__ == "__main__":
    main()
