"""Command line: ``python -m sparsemlp.info RUN_DIR`` describes a trained sparse network."""

import argparse
import json
import os
import sys

import numpy as np

from ..data.preprocessing import describe_classes
from ..topology import ClashFreeSchedule
from ..training.loading import load_run
from .common import parse, read_run_config, run_tool


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sparsemlp.info",
        description="Layers, connections, density, bytes per connection and topology statistics "
                    "of a run directory or checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory or checkpoint directory")
    p.add_argument("--checkpoint", default="final",
                   help="'final', 'latest' or a name under checkpoints/ (e.g. epoch-0010)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--schedule-out", metavar="DIR",
                   help="write the cycle schedule of every clash-free layer to DIR/layer_<i>.csv "
                        "and .json (cycle, lane, bank, address, input, output)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="tracebacks on errors")
    return p


def _stats(deg):
    deg = np.asarray(deg)
    if deg.size == 0:
        return {"min": 0, "mean": 0.0, "max": 0, "std": 0.0, "zero": 0}
    return {"min": int(deg.min()), "mean": float(deg.mean()), "max": int(deg.max()),
            "std": float(deg.std()), "zero": int(np.count_nonzero(deg == 0))}


def layer_info(W, *, epsilon=None, schedule=None):
    """Size, storage, degree statistics and clash-freedom of one CSR weight matrix.

    Parameters
    ----------
    W : scipy.sparse.csr_array
        Weights of shape (n_in, n_out).
    epsilon : float, optional
        The Erdős–Rényi epsilon of the run, to report the expected density.
    schedule : ClashFreeSchedule, optional
        The layer's cycle schedule, checked against W.

    Returns
    -------
    dict
        ``shape``, ``nnz``, ``density``, ``er_density`` (when ``epsilon`` is given),
        ``dtype``, ``index_dtype``, ``bytes`` (values + indices + row pointers),
        ``bytes_per_connection``, ``out_degree`` and ``in_degree`` statistics (min, mean,
        max, std, number of neurons with degree zero), ``regular`` (every input the same
        out-degree and every output the same in-degree), and with a schedule
        ``clash_free``: its :meth:`~sparsemlp.topology.ClashFreeSchedule.summary`.
    """
    n_in, n_out = W.shape
    nbytes = W.data.nbytes + W.indices.nbytes + W.indptr.nbytes
    out = {"shape": [int(n_in), int(n_out)], "nnz": int(W.nnz),
           "density": W.nnz / max(1, n_in * n_out), "dtype": str(W.data.dtype),
           "index_dtype": str(W.indices.dtype), "bytes": int(nbytes),
           "bytes_per_connection": nbytes / max(1, W.nnz),
           "out_degree": _stats(np.diff(W.indptr)),
           "in_degree": _stats(np.bincount(W.indices, minlength=n_out))}
    out["regular"] = (out["out_degree"]["min"] == out["out_degree"]["max"]
                      and out["in_degree"]["min"] == out["in_degree"]["max"])
    if epsilon is not None:
        out["er_density"] = min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))
    if schedule is not None:
        out["clash_free"] = schedule.summary(W)
    return out


def run_info(run_dir, *, checkpoint="final"):
    """Describe a run directory or checkpoint.

    Parameters
    ----------
    run_dir : str
        Run directory or checkpoint directory.
    checkpoint : str, default="final"
        Which checkpoint of a run directory.

    Returns
    -------
    dict
        ``checkpoint``, ``epoch``, ``model_class``, ``sizes``, ``layers`` (see
        :func:`layer_info`), totals, the equivalent dense parameter count, the bytes of
        the clash-free cycle schedules (``schedule_bytes``), the topology and rewiring
        settings, the user's labels in output order (``classes``) and the feature scaling
        (``normalize``) when the checkpoint stores them, and the run's last metrics and
        config when available.

    Raises
    ------
    CheckpointError
        If no valid checkpoint is found.
    """
    run = load_run(run_dir, checkpoint=checkpoint)
    ck, arrays, meta = run.path, run.arrays, run.meta
    weights = [layer.W for layer in run.model.sparse_layers()]
    cfg = meta.get("config", {})
    topology = cfg.get("topology", "set")
    eps = cfg.get("epsilon") if topology in ("set", "static") else None
    layers = [layer_info(W, epsilon=eps, schedule=ClashFreeSchedule.from_state_dict(
        arrays, f"layers.{i}.schedule.")) for i, W in enumerate(weights)]
    nnz = sum(la["nnz"] for la in layers)
    dense = sum(la["shape"][0] * la["shape"][1] for la in layers)
    state_bytes = sum(int(a.nbytes) for k, a in arrays.items()
                      if not k.startswith(("trainer.", "data.")) and ".schedule." not in k)
    prep = run.preprocessing
    schedule_bytes = sum(int(a.nbytes) for k, a in arrays.items() if ".schedule." in k)
    res = {"checkpoint": ck, "epoch": meta.get("epoch"), "model_class": meta.get("model_class"),
           "sizes": [weights[0].shape[0]] + [int(W.shape[1]) for W in weights],
           "layers": layers, "nnz": nnz, "dense_weights": dense, "share_of_dense": nnz / dense,
           "weight_bytes": sum(la["bytes"] for la in layers),
           "weight_bytes_per_connection": sum(la["bytes"] for la in layers) / max(1, nnz),
           "state_bytes_per_connection": state_bytes / max(1, nnz),
           "schedule_bytes": schedule_bytes,
           "best_test_accuracy": meta.get("best_accuracy"),
           "mode": cfg.get("mode"), "dataset": cfg.get("dataset"), "seed": cfg.get("seed"),
           "topology": topology, "rewire": cfg.get("rewire"),
           "classes": None if prep is None else prep.classes.tolist(),
           "normalize": None if prep is None else prep.scaling.how}
    hist = meta.get("history") or []
    if hist:
        last = hist[-1]
        keys = ("epoch", "train_recon", "test_recon", "test_pll", "test_log_likelihood",
                "peak_rss_mb") if meta.get("model_class") == "SparseRBM" else (
                "epoch", "test_accuracy", "test_loss", "train_loss", "peak_rss_mb")
        res["last_epoch"] = {k: last.get(k) for k in keys}
        res["seconds"] = {k: float(sum(r.get(f"seconds_{k}", 0.0) for r in hist))
                          for k in ("train", "evolution", "eval")}
    rc = read_run_config(run_dir) if os.path.isdir(os.path.join(run_dir, "checkpoints")) \
        or os.path.exists(os.path.join(run_dir, "config.json")) else None
    if rc:
        res["data"] = rc.get("dataset")
    return res


def _fmt_deg(s):
    return f"{s['min']}/{s['mean']:.1f}/{s['max']} (zero: {s['zero']})"


def export_schedules(run_dir, out_dir, *, checkpoint="final"):
    """Write the cycle schedules of a checkpoint's clash-free layers as CSV and JSON.

    Parameters
    ----------
    run_dir : str
        Run directory or checkpoint directory.
    out_dir : str
        Destination directory (created): ``layer_<i>.csv`` and ``layer_<i>.json``.
    checkpoint : str, default="final"
        Which checkpoint of a run directory.

    Returns
    -------
    list of str
        The files written (empty if no layer has a schedule).

    Raises
    ------
    CheckpointError
        If no valid checkpoint is found.
    """
    written = []
    for i, layer in enumerate(load_run(run_dir, checkpoint=checkpoint).model.sparse_layers()):
        s, W = getattr(layer, "schedule", None), layer.W
        if s is not None:
            os.makedirs(out_dir, exist_ok=True)
            written.append(s.to_csv(os.path.join(out_dir, f"layer_{i}.csv"), W))
            written.append(s.to_json(os.path.join(out_dir, f"layer_{i}.json"), W))
    return written


def _fmt_topology(la):
    parts = []
    if la["regular"]:
        parts.append(f"regular: fan-out {la['out_degree']['max']}, fan-in {la['in_degree']['max']}")
    cf = la.get("clash_free")
    if cf is not None:
        state = ("clash-free: every cycle reads z different banks" if cf["clash_free"] else
                 f"NOT clash-free: {cf['n_clashing_cycles']} of {cf['n_cycles']} cycles clash")
        parts.append(f"{state} (z={cf['z']} banks x {cf['depth']} addresses, {cf['n_cycles']} "
                     f"cycles, kind {cf['kind']}, {'dither' if cf['dither'] else 'no dither'})")
    return "; ".join(parts)


def _run(args):
    r = run_info(args.run_dir, checkpoint=args.checkpoint)
    if args.schedule_out:
        r["schedule_files"] = export_schedules(args.run_dir, args.schedule_out,
                                               checkpoint=args.checkpoint)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['checkpoint']}: {r['model_class']} {r['sizes']}, epoch {r['epoch']}, "
          f"mode {r['mode']}, topology {r['topology']} (rewire {r['rewire']}), "
          f"data {r.get('data') or r['dataset']}, seed {r['seed']}")
    if r["classes"] is not None:
        what = (f"classes {describe_classes(r['classes'], limit=12)} (outputs 0.."
                f"{len(r['classes']) - 1}), " if r["model_class"] != "SparseRBM" else "")
        print(f"{what}features scaled by {r['normalize']} (training statistics)")
    print(f"{'layer':>5} {'shape':>15} {'nnz':>11} {'density':>9} {'ER':>9} {'B/conn':>7}  "
          f"{'out-degree min/mean/max':>28}  {'in-degree min/mean/max':>28}")
    for i, la in enumerate(r["layers"]):
        shape = f"{la['shape'][0]}x{la['shape'][1]}"
        er = f"{la['er_density']:.3%}" if "er_density" in la else "-"
        print(f"{i:>5} {shape:>15} {la['nnz']:>11,} {la['density']:>9.3%} {er:>9} "
              f"{la['bytes_per_connection']:>7.2f}  {_fmt_deg(la['out_degree']):>28}  "
              f"{_fmt_deg(la['in_degree']):>28}")
    for i, la in enumerate(r["layers"]):
        t = _fmt_topology(la)
        if t:
            print(f"layer {i}: {t}")
    for f in r.get("schedule_files", []):
        print(f"wrote {f}")
    print(f"total: {r['nnz']:,} connections = {r['share_of_dense']:.3%} of the dense "
          f"{r['dense_weights']:,}; weights {r['weight_bytes'] / 2**20:.2f} MiB "
          f"({r['weight_bytes_per_connection']:.2f} B/connection), biases + optimizer state "
          f"{r['state_bytes_per_connection']:.2f} B/connection"
          + (f", cycle schedules {r['schedule_bytes'] / 2**10:.1f} KiB" if r.get("schedule_bytes")
             else ""))
    if "last_epoch" in r and r["model_class"] == "SparseRBM":
        le, s = r["last_epoch"], r["seconds"]
        ll = [f"{k} {le[k]:.6g}" for k in ("train_recon", "test_recon", "test_pll",
                                           "test_log_likelihood") if le.get(k) is not None]
        print(f"last epoch {le['epoch']}: {', '.join(ll)}; peak RSS {le['peak_rss_mb']:.0f} "
              f"MiB; time train {s['train']:.1f} s, evolution {s['evolution']:.1f} s, eval "
              f"{s['eval']:.1f} s")
    elif "last_epoch" in r:
        le, s = r["last_epoch"], r["seconds"]
        print(f"last epoch {le['epoch']}: test accuracy {le['test_accuracy']:.4f} (best "
              f"{r['best_test_accuracy']:.4f}), peak RSS {le['peak_rss_mb']:.0f} MiB; time "
              f"train {s['train']:.1f} s, evolution {s['evolution']:.1f} s, eval {s['eval']:.1f} s")
    return 0


def main(argv=None):
    """Describe a run; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 failure, 2 usage or checkpoint error.
    """
    args, code = parse(_parser(), argv)
    if args is None:
        return code
    return run_tool(_run, args)


if __name__ == "__main__":
    sys.exit(main())
