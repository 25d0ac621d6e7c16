"""Shared helpers for the benchmark scripts: run conditions and JSON-lines output."""

import json
import os
import platform
import subprocess
import time

import numpy as np
import scipy

SHARED = os.environ.get("SPARSEMLP_SHARED_DATA",
                        os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


def conditions():
    """Run conditions recorded with every result line."""
    try:
        git = subprocess.run(["git", "describe", "--dirty", "--always"], capture_output=True,
                             text=True, cwd=os.path.dirname(__file__)).stdout.strip()
    except OSError:
        git = "?"
    import sparsemlp
    from sparsemlp import _kernels

    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "git": git, "nproc": os.cpu_count(),
            "loadavg": os.getloadavg(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "sparsemlp": sparsemlp.__version__, "backend": _kernels.active()}


def append_jsonl(path, record):
    """Append one JSON line (creating the folder)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=float) + "\n")
