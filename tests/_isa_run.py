"""Train small SET models with the variant SPARSEMLP_ISA names; print a JSON digest of every run.

Run by tests/test_isa_variants.py in one subprocess per instruction-set variant (the variant is
chosen once per process, at the first kernel import). Usage: ``python _isa_run.py WORKDIR``.
"""

import contextlib
import hashlib
import io
import json
import pathlib
import sys

import numpy as np

from sparsemlp import _kernels
from sparsemlp.train import main

# Each run evolves its topology (SET after every epoch); batch sizes at and off the vector
# widths (32 = 2 AVX-512 float vectors, 33 and 10 leave tails). Timings and RSS are not results.
RUNS = {
    "mlp-f32": ["--hidden", "64", "48", "--epochs", "3", "--batch-size", "32"],
    "mlp-f64-adam": ["--hidden", "64", "48", "--epochs", "3", "--batch-size", "33",
                     "--dtype", "float64", "--optimizer", "adam", "--lr", "0.003"],
    "rbm-f32": ["--model", "rbm", "--hidden", "40", "--epochs", "3", "--batch-size", "32",
                "--ais-every", "3", "--ais-chains", "16", "--ais-betas", "50", "--pll", "exact"],
    "rbm-f64": ["--model", "rbm", "--hidden", "40", "--epochs", "3", "--batch-size", "10",
                "--dtype", "float64", "--ais-every", "0", "--pll", "exact"],
}
NOT_RESULTS = ("seconds", "peak_rss", "time")


def _digest(run_dir):
    """Exact metrics (JSON floats round-trip), a SHA-256 of every final array, and whether
    the first layer's topology changed (its input degrees differ from the initial ones)."""
    recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    metrics = [{k: v for k, v in r.items() if not any(s in k for s in NOT_RESULTS)}
               for r in recs]
    arrays = {}
    for f in sorted((run_dir / "final").glob("*.npz")):
        with np.load(f, allow_pickle=False) as z:
            for k in sorted(z.files):
                a = z[k]
                h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
                h.update(np.ascontiguousarray(a).tobytes())
                arrays[f"{f.stem}/{k}"] = h.hexdigest()
    with np.load(run_dir / "initial_degrees.npz") as init, \
            np.load(run_dir / "final" / "layer_0.npz") as w0:
        evolved = not np.array_equal(np.diff(w0["indptr"]), init["out_0"])
    return {"metrics": metrics, "arrays": arrays, "evolved": evolved}


def run(workdir):
    out = {"isa": _kernels.get("cython").isa, "runs": {}}
    common = ["--seed", "3", "--backend", "cython", "--quiet", "--checkpoint-every", "0"]
    for name, argv in RUNS.items():
        run_dir = pathlib.Path(workdir) / name
        with contextlib.redirect_stdout(io.StringIO()):
            code = main([*argv, *common, "--out", str(run_dir)])
        if code != 0:
            raise SystemExit(f"{name}: exit code {code}")
        out["runs"][name] = _digest(run_dir)
    return out


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1])))
