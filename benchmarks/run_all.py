"""Run every benchmark with one command; ``--quick`` finishes in a few minutes.

Each benchmark runs as its own process (so one failure or a missing data set does not stop
the others), its output is streamed, and a summary of exit codes and wall times is printed
at the end. Full runs reproduce the tables in benchmarks/README.md and take hours; quick
runs use small sizes, write to ``benchmarks/results/quick/`` and are a smoke test, not
evidence.

Examples::

    python benchmarks/run_all.py --quick
    python benchmarks/run_all.py --only kernels evolution
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (script, quick arguments, full arguments); "{out}" is the results directory
BENCHMARKS = {
    "kernels": ("bench_kernels.py",
                ["--n", "3000", "--batch", "32", "--threads", "1", "2", "--repeats", "3",
                 "--out", "{out}/kernels.jsonl"],
                ["--n", "3000", "30000", "300000", "--batch", "32", "128", "--threads", "1", "2",
                 "--repeats", "7", "--out", "{out}/kernels.jsonl"]),
    "evolution": ("bench_evolution.py",
                  ["--cases", "3000x3000", "3000x5", "--repeats", "2", "--original-repeats", "1",
                   "--out", "{out}/evolution.jsonl"],
                  ["--out", "{out}/evolution.jsonl"]),
    "original": ("bench_original.py",
                 ["--h", "1000", "--epochs", "1", "--out", "{out}/original.jsonl"],
                 ["--out", "{out}/original.jsonl"]),
    "scale": ("bench_scale.py",
              ["--h", "3000", "--epochs", "1", "--out", "{out}/scale.jsonl", "--plot",
               "{out}/scaling.png"],
              ["--curve", "--out", "{out}/scale.jsonl", "--plot", "{out}/scaling.png"]),
    "masked_dense": ("bench_dense.py", ["--quick", "--out", "{out}/dense.jsonl"],
                     ["--out", "{out}/dense.jsonl", "--wait-idle", "30"]),
    "accuracy": ("bench_accuracy.py",
                 ["--datasets", "digits", "--configs", "default", "reference", "--seeds", "0",
                  "--epochs", "3", "--hidden", "200", "200", "--out", "{out}/accuracy.jsonl"],
                 ["--hidden", "1000", "1000", "1000", "--out", "{out}/accuracy_h1000.jsonl"]),
    "fmnist": ("bench_fmnist.py",
               ["--epochs", "1", "--hidden", "100", "100", "--out", "{out}/fmnist.jsonl"],
               ["--epochs", "30", "--out", "{out}/fmnist.jsonl"]),
    "predefined": ("bench_predefined.py",
                   ["--epochs", "1", "--seeds", "0", "--models", "regular", "clash-free",
                    "dense112", "--set", "lr=0.01", "--out", "{out}/predefined.jsonl"],
                   ["--models", "regular", "clash-free", "dense112", "dense100", "dense52",
                    "--seeds", "0", "1", "2", "--epochs", "30", "--set", "lr=0.01", "--out",
                    "{out}/predefined.jsonl"]),
    "tutorials": ("bench_tutorials.py",
                  ["--tutorials", "scads", "--seeds", "0", "--epochs", "3", "--out",
                   "{out}/tutorials.jsonl"],
                  ["--out", "{out}/tutorials.jsonl"]),
    "rbm": ("bench_rbm.py", ["--epochs", "5", "--out", "{out}/rbm.jsonl"],
            ["--out", "{out}/rbm.jsonl"]),
    "rbm_scale": ("bench_rbm_scale.py",
                  ["--h", "200", "10000", "--epochs", "1", "--original-epochs", "1", "--out",
                   "{out}/rbm_scale.jsonl"],
                  ["--out", "{out}/rbm_scale.jsonl"]),
    "export": ("bench_export.py", ["--quick", "--out", "{out}/export.jsonl"],
               ["--out", "{out}/export.jsonl"]),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, a few minutes in all")
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    p.add_argument("--out", help="results directory (default: results/ or results/quick/)")
    a = p.parse_args()
    out = a.out or os.path.join(HERE, "results", "quick" if a.quick else "")
    os.makedirs(out, exist_ok=True)
    summary = []
    for name in a.only or list(BENCHMARKS):
        script, quick, full = BENCHMARKS[name]
        path = os.path.join(HERE, script)
        if not os.path.exists(path):
            summary.append((name, "missing", 0.0))
            continue
        args = [s.replace("{out}", out) for s in (quick if a.quick else full)]
        print(f"\n=== {name}: {script} {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, path, *args], cwd=HERE)
        summary.append((name, "ok" if rc == 0 else f"exit {rc}", time.perf_counter() - t0))
    print("\nbenchmark      status      seconds")
    for name, status, sec in summary:
        print(f"{name:<14} {status:<11} {sec:8.1f}")
    print(f"results in {out}")
    return 0 if all(s == "ok" for _, s, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
