"""Command line: ``python -m sparsemlp.evaluate RUN_DIR`` scores a trained MLP or RBM on a data set."""

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from .._rng import Streams
from ..data import DataError
from ..training.config import ConfigError
from ..training.loading import find_checkpoint
from .common import parse, run_tool


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sparsemlp.evaluate",
        description="Score a trained sparse MLP or RBM (a run directory or checkpoint) on a data "
                    "set.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory or checkpoint directory")
    p.add_argument("--checkpoint", default="final",
                   help="'final', 'latest' or a name under checkpoints/ (e.g. epoch-0010)")
    p.add_argument("--dataset", help="data set (default: the run's own)")
    p.add_argument("--data-dir", help="directory searched for data set files")
    p.add_argument("--split", choices=("test", "train", "both"), default="test",
                   help="which split to score")
    p.add_argument("--backend", choices=("auto", "cython", "numba", "numpy"), default=None,
                   help="kernel backend (default: the run's)")
    p.add_argument("--threads", type=_threads, default=None, help="kernel threads (0 = all)")
    p.add_argument("--ais", action="store_true",
                   help="RBM runs: also estimate the log-likelihood by AIS (the run's "
                        "--ais-chains and --ais-betas)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("-v", "--verbose", action="count", default=0, help="tracebacks on errors")
    return p


def _threads(text):
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count (0 = all cores, or "
                                         "a positive integer)")
    return n


def _model_class(ck):
    try:
        with open(os.path.join(ck, "meta.json")) as fh:
            return json.load(fh).get("model_class")
    except (OSError, ValueError):
        return None  # Trainer.from_checkpoint reports the problem


def _dataset(tr, *, dataset, data_dir, threads):
    """The data to score, scaled (and labelled) as the run's model expects.

    ``tr.config`` gets the overrides. The run's own data set is loaded exactly as in
    training (split, subsample); another data set keeps its own train/test split (or is
    split with the run's ``test_size`` and seed) and is not subsampled. Both are scaled
    with the run's statistics and labelled with the run's classes, from the checkpoint or,
    for checkpoints that lack them, from the run's own data set.
    """
    from ..training.datasets import load_dataset

    run_cfg = tr.config
    over = {k: v for k, v in (("dataset", dataset), ("data_dir", data_dir), ("threads", threads))
            if v is not None}
    if dataset is not None:
        over.update(train_samples=0, test_samples=0)
        if not os.fspath(dataset).endswith(".csv"):
            over["label_column"] = -1
    cfg = tr.config = dataclasses.replace(run_cfg, **over)
    prep = tr.preprocessing
    if prep is None and dataset is not None:
        try:
            prep = load_dataset(run_cfg, Streams(run_cfg.seed, legacy=run_cfg.legacy_rng),
                                training=False).preprocessing
        except DataError as exc:
            raise DataError(f"this checkpoint does not store the run's label map and scaling "
                            f"(an older or library-made run), and the run's own data set, "
                            f"needed to recover them, cannot be loaded: {exc}") from None
    return load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng), preprocessing=prep,
                        training=False)


def evaluate_rbm(ck, *, dataset=None, data_dir=None, split="test", backend=None, threads=None,
                 ais=False):
    """Score a ``--model rbm`` checkpoint: reconstruction error, PLL, optionally AIS.

    Parameters
    ----------
    ck : str
        Checkpoint directory (``model_class`` ``"SparseRBM"``).
    dataset, data_dir : str, optional
        Override the run's data set (scaled with the run's statistics).
    split : {"test", "train", "both"}, default="test"
        Which split to score.
    backend : str, optional
        Kernel backend override.
    threads : int, optional
        Thread count override.
    ais : bool, default=False
        Also estimate log Z by AIS and the mean log-likelihood.

    Returns
    -------
    dict
        ``checkpoint``, ``epoch``, ``dataset``, ``model_class`` and per split ``recon``,
        ``pll``, ``pll_method``, ``log_likelihood``, ``log_z``, ``count``.
    """
    from ..rbm.metrics import base_rate
    from ..training.datasets import rbm_data
    from ..training.rbm import RBMTrainer

    tr = RBMTrainer.from_checkpoint(ck, backend=backend, verbose=False)
    ds = _dataset(tr, dataset=dataset, data_dir=data_dir, threads=threads)
    if ds.n_features != tr.model.n_visible:
        raise DataError(f"{ds.name} has {ds.n_features} features but the RBM has "
                        f"{tr.model.n_visible} visible units. Evaluate on the data set it was "
                        "trained on.")
    Xs = dict(zip(("train", "test"), rbm_data(tr.config, ds, new_data=dataset is not None)))
    out = {"checkpoint": ck, "epoch": tr.epoch, "dataset": ds.name, "model_class": "SparseRBM"}
    for part in ("train", "test") if split == "both" else (split,):
        r = tr.evaluate(Xs[part], ais=ais, ais_base=base_rate(Xs["train"], tr.model.visible))
        out[part] = {"recon": r["recon"], "pll": r["pll"], "pll_method": r["pll_method"],
                     "log_likelihood": r["log_likelihood"], "log_z": r["log_z"],
                     "count": int(Xs[part].shape[0])}
    return out


def evaluate_run(run_dir, *, checkpoint="final", dataset=None, data_dir=None, split="test",
                 backend=None, threads=None, ais=False):
    """Load a run's model and score it on a data set.

    The run's own data set is loaded, split and scaled exactly as the run did (same
    config and seed). Another ``dataset`` is scaled with the run's statistics and its
    labels are mapped through the run's classes (labels the model never saw are
    refused); it keeps its own test split or is split as the run's data was, and is not
    subsampled.

    Parameters
    ----------
    run_dir : str
        Run directory or checkpoint directory.
    checkpoint : str, default="final"
        Which checkpoint of a run directory (see :func:`find_checkpoint`).
    dataset, data_dir : str, optional
        Override the run's data set.
    split : {"test", "train", "both"}, default="test"
        Which split to score.
    backend : str, optional
        Kernel backend override.
    threads : int, optional
        Thread count override.
    ais : bool, default=False
        RBM checkpoints: also estimate the log-likelihood by AIS.

    Returns
    -------
    dict
        ``checkpoint``, ``epoch``, ``dataset``, ``classes`` (the user's labels, output
        order) and per split ``loss``, ``accuracy``, ``count``, ``per_class_accuracy`` and
        ``per_class_count`` (dicts keyed by the label's text; accuracy None for a class
        with no sample). An RBM: see :func:`evaluate_rbm`.

    Raises
    ------
    CheckpointError
        If the checkpoint is missing or corrupted.
    DataError
        If the data set cannot be loaded or does not fit the model.
    """
    from ..training.mlp import Trainer

    ck = find_checkpoint(run_dir, checkpoint)
    if _model_class(ck) == "SparseRBM":
        return evaluate_rbm(ck, dataset=dataset, data_dir=data_dir, split=split,
                            backend=backend, threads=threads, ais=ais)
    if ais:
        raise ConfigError("--ais estimates an RBM's log-likelihood; this run is a "
                        f"{_model_class(ck)}. Drop --ais.")
    tr = Trainer.from_checkpoint(ck, backend=backend, verbose=False)
    ds = _dataset(tr, dataset=dataset, data_dir=data_dir, threads=threads)
    n_in, n_out = tr.model.layers[0].n_in, tr.model.layers[-1].n_out
    if ds.n_features != n_in:
        raise DataError(f"{ds.name} has {ds.n_features} features but the model takes {n_in}. "
                        "Evaluate on data with the model's features.")
    if ds.n_classes != n_out:
        raise DataError(f"{ds.name} has {ds.n_classes} classes but the model has {n_out} "
                        "outputs. Evaluate on the data set the model was trained on.")
    labels = [str(c) for c in ds.classes.tolist()]
    out = {"checkpoint": ck, "epoch": tr.epoch, "dataset": ds.name,
           "classes": ds.classes.tolist()}
    parts = ("train", "test") if split == "both" else (split,)
    for part in parts:
        X, y = getattr(ds, f"X_{part}"), getattr(ds, f"y_{part}")
        r = tr.evaluate(X, y)
        pred = np.argmax(tr.model.predict_raw(X, batch_size=tr.config.eval_batch_size), axis=1)
        count = np.bincount(y, minlength=n_out)
        hits = np.bincount(y[pred == y], minlength=n_out)
        out[part] = {"loss": r["loss"], "accuracy": r["accuracy"], "count": r["count"],
                     "per_class_accuracy": {lab: float(hits[c] / count[c]) if count[c] else None
                                            for c, lab in enumerate(labels)},
                     "per_class_count": {lab: int(count[c]) for c, lab in enumerate(labels)}}
    return out


def _run(args):
    res = evaluate_run(args.run_dir, checkpoint=args.checkpoint, dataset=args.dataset,
                       data_dir=args.data_dir, split=args.split, backend=args.backend,
                       threads=args.threads, ais=args.ais)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['checkpoint']} (epoch {res['epoch']}) on {res['dataset']}")
    if res.get("model_class") == "SparseRBM":
        for part in ("train", "test"):
            if part in res:
                r = res[part]
                pll = "n/a" if r["pll"] is None else f"{r['pll']:.5g} ({r['pll_method']})"
                ll = "" if r["log_likelihood"] is None else (
                    f"  log-likelihood (AIS) {r['log_likelihood']:.5g} (log Z {r['log_z']:.6g})")
                print(f"  {part}: reconstruction error {r['recon']:.6g}  pseudo-log-likelihood "
                      f"{pll}{ll}  ({r['count']} samples)")
        return 0
    for part in ("train", "test"):
        if part in res:
            r = res[part]
            pc = "  ".join(f"{lab}: " + ("-" if a is None else f"{a:.3f}")
                           for lab, a in r["per_class_accuracy"].items())
            print(f"  {part}: accuracy {r['accuracy']:.4f}  loss {r['loss']:.6g}  "
                  f"({r['count']} samples)\n    per class: {pc}")
    return 0


def main(argv=None):
    """Evaluate a run; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 failure, 2 usage/data/checkpoint error.
    """
    args, code = parse(_parser(), argv)
    if args is None:
        return code
    return run_tool(_run, args)


if __name__ == "__main__":
    sys.exit(main())
