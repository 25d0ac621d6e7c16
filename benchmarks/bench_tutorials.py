"""The original SET tutorials on Fashion-MNIST subsets against their published curves.

The tutorials are Mocanu et al.'s "Scalable Deep Learning" tutorial at ECMLPKDD 2019 and its
SCADS Summer School 2020 version; their settings and result files:

ECMLPKDD 2019 (TUT): 2000 train / 1000 test, 784-1000³-10, sigmoid + MSE, N(0, 0.1²) init by
draws, dropout 0.2, ε 13, batch 40, lr 0.05, output layer evolved, 400 epochs.
SCADS 2020: 5000 / 1000, softmax + cross-entropy, He-uniform Bernoulli init, inverted dropout
0.2, ε 13, batch 40, lr 0.05, output layer not evolved, 400 epochs. Both: momentum 0.9,
the original decay rule with λ = 2e-4, ζ = 0.3. Each run is ``python -m sparsemlp.train``.

Example::

    python benchmarks/bench_tutorials.py --tutorials scads tut --seeds 0 1 2 3 4
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from _common import SHARED, append_jsonl, conditions

HERE = os.path.dirname(os.path.abspath(__file__))
COMMON = ["--dataset", "fashion-mnist", "--test-samples", "1000", "--hidden", "1000", "1000",
          "1000", "--epsilon", "13", "--batch-size", "40", "--lr", "0.05", "--lr-schedule",
          "constant", "--momentum", "0.9", "--weight-decay", "2e-4", "--decay", "original",
          "--dropout", "0.2", "--zeta", "0.3", "--checkpoint-every", "0", "-q"]
TUTORIALS = {
    "tut": dict(args=["--mode", "reference", "--train-samples", "2000"],
                files="fashionmnist2000_ecmlpkdd_{kind}_mlp_2000_training_samples{e}_rand*.txt",
                kinds={"set": "set", "static": "fixprob", "dense": "fc"}),
    "scads": dict(args=["--mode", "default", "--train-samples", "5000", "--no-evolve-output",
                        "--init", "he_uniform", "--er-law", "bernoulli"],
                  files="fashionmnist5000_scads_{kind}_mlp_5000_training_samples{e}_rand*.txt",
                  kinds={"set": "set", "static": "fixprob", "dense": "dense"}),
}


def published(tut, kind):
    spec = TUTORIALS[tut]
    e = "" if kind == "dense" else "_e13"
    pat = spec["files"].format(kind=spec["kinds"][kind], e=e)
    files = sorted(glob.glob(os.path.join(SHARED, "set-reference-results", pat)))
    return [float(np.loadtxt(f)[-1, 3]) for f in files]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tutorials", nargs="+", default=["scads", "tut"], choices=list(TUTORIALS))
    p.add_argument("--topologies", nargs="+", default=["set"], choices=["set", "static"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(HERE, "results", "tutorials.jsonl"))
    a = p.parse_args()
    for tut in a.tutorials:
        for topo in a.topologies:
            pub = published(tut, topo)
            if not pub:
                print(f"{tut}: published curves not found under {SHARED}; skipped", file=sys.stderr)
                continue
            finals = []
            for seed in a.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    run = os.path.join(tmp, "run")
                    cmd = [sys.executable, "-m", "sparsemlp.train", *COMMON, *TUTORIALS[tut]["args"],
                           "--topology", topo, "--seed", str(seed), "--epochs", str(a.epochs),
                           "--threads", str(a.threads), "--out", run]
                    r = subprocess.run(cmd, capture_output=True, text=True)
                    if r.returncode:
                        raise SystemExit(f"{tut} seed {seed} failed: {r.stderr[-2000:]}")
                    recs = [json.loads(x) for x in open(os.path.join(run, "metrics.jsonl"))]
                acc = recs[-1]["test_accuracy"]
                finals.append(acc)
                rec = {"bench": "tutorial", "tutorial": tut, "topology": topo, "seed": seed,
                       "epochs": a.epochs, "final_acc": acc,
                       "best_acc": recs[-1]["best_test_accuracy"],
                       "s_per_epoch": float(np.median([x["seconds_train"] + x["seconds_evolution"]
                                                       for x in recs])),
                       "curve": [x["test_accuracy"] for x in recs],
                       "published_final": pub, "command": cmd[1:], "conditions": conditions()}
                append_jsonl(a.out, rec)
                print(f"{tut} {topo} seed {seed}: final {acc:.4f} (published {min(pub):.3f}-"
                      f"{max(pub):.3f}) {rec['s_per_epoch']:.2f} s/epoch", flush=True)
            verdict = "within or above" if min(finals) >= min(pub) else "BELOW"
            print(f"{tut} {topo}: ours {min(finals):.4f}-{max(finals):.4f} mean "
                  f"{np.mean(finals):.4f}; published {min(pub):.4f}-{max(pub):.4f} mean "
                  f"{np.mean(pub):.4f} -> {verdict} the published spread", flush=True)


if __name__ == "__main__":
    main()
