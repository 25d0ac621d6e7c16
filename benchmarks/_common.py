"""Shared helpers for the benchmark scripts: run conditions and JSON-lines output."""

import json
import os
import platform
import resource
import subprocess
import sys
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


def vm_bytes(key):
    """A memory figure of this process from /proc/self/status (``VmRSS``, ``VmHWM``), bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss():
    """Peak RSS of this process in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_worker(script, args, lock=None):
    """Run ``python script *args`` (under ``flock lock``); its last stdout line is JSON.

    Returns that record with ``loadavg_before`` and ``loadavg_after`` added; raises
    RuntimeError with the end of stderr if the worker fails.
    """
    cmd = [sys.executable, os.path.abspath(script), *args]
    if lock:
        cmd = ["flock", lock] + cmd
    before = os.getloadavg()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r.update(loadavg_before=before, loadavg_after=os.getloadavg())
    return r


def cpu_busy(interval=0.5):
    """Fraction of all CPUs busy over ``interval`` seconds (Linux /proc/stat), else None."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except OSError:
        return None
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(max_wait, threshold=0.1):
    """Wait up to ``max_wait`` s until other processes use < threshold of the CPUs."""
    t0 = time.monotonic()
    busy = cpu_busy()
    while busy is not None and busy >= threshold and time.monotonic() - t0 < max_wait:
        time.sleep(1.0)
        busy = cpu_busy()
    return busy


def parse_overrides(pairs):
    """``["lr=0.01", "init=normal"]`` -> ``{"lr": 0.01, "init": "normal"}`` (JSON values,
    else the string), for the benchmarks' ``--set KEY=VALUE`` TrainConfig overrides."""
    out = {}
    for kv in pairs:
        k, v = kv.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out
