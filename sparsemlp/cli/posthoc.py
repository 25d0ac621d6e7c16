"""Shared parts of the post-hoc tools (prune, approx): source options, the run they write."""

import os
import time

from ..training.config import ConfigError
from ..training.history import peak_rss_mb
from ..training.modelrun import model_config, save_model_run
from ..training.rundir import NewRunGuard
from ..training.sourcedata import score, source_dataset
from ..training.sources import load_source

__all__ = ["add_imported_model_arguments", "default_out", "open_source", "write_run",
           "print_accuracy_and_next"]


def add_imported_model_arguments(parser):
    """Add the options of an imported dense model as an argument group.

    The options are ``--activations``, ``--layout`` and ``--dtype``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The tool's parser.
    """
    i = parser.add_argument_group("imported models")
    i.add_argument("--activations", nargs="+", help="activations of a .npy folder or .npz: one "
                   "per layer, or hidden and output (e.g. relu softmax)")
    i.add_argument("--layout", choices=("out-in", "in-out"), default="out-in",
                   help="orientation of the .npy/.npz matrices: n_out x n_in (PyTorch) or "
                        "n_in x n_out (scikit-learn's coefs_)")
    i.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                   help="value dtype of imported dense layers")


def default_out(args, suffix):
    """``args.out``, or ``runs/<source name>-<suffix>``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``out``, ``source``).
    suffix : str
        What the tool did (``pruned``, the approximation kind).

    Returns
    -------
    str
        The run directory to write.
    """
    if args.out:
        return args.out
    base = os.path.basename(os.path.normpath(args.source)) or "model"
    return os.path.join("runs", f"{os.path.splitext(base)[0]}-{suffix}")


def open_source(args, python_hint, check=None):
    """Load the trained model of ``args.source`` and its data set.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``source``, the imported-model options, ``dataset``,
        ``data_dir``, ``normalize``).
    python_hint : str
        What to do in Python instead, named in the error for a regressor.
    check : callable, optional
        ``check(src)`` runs before the data set is loaded (settings that depend on the
        model's sizes: a mistake then costs no data loading).

    Returns
    -------
    src : Source
        The loaded model (:func:`sparsemlp.training.sources.load_source`).
    ds : Dataset or None
        Its data set (the run's own, or ``--dataset``), None when there is none.
    run_cfg : TrainConfig
        The run's configuration, or one describing the model.

    Raises
    ------
    ConfigError
        For a regressor (run directories hold classifiers).
    """
    src = load_source(args.source, activations=args.activations,
                      layout=args.layout.replace("-", "_"), dtype=args.dtype)
    if check is not None:
        check(src)
    if src.regressor:
        raise ConfigError(f"{args.source} is a regressor; sparsemlp run directories hold "
                          f"classifiers. {python_hint}")
    ds, run_cfg = source_dataset(src, dataset=args.dataset, data_dir=args.data_dir,
                                 normalize=args.normalize)
    if run_cfg is None:
        run_cfg = model_config(src.model, epochs=max(1, src.epoch))
    return src, ds, run_cfg


def write_run(out, model, args, src, ds, run_cfg, *, tool, seconds, entry, info,
              train_loss=None, initial=None):
    """Score ``model`` on the test split and write it as a run directory.

    The run's history continues the source's with one record of what the tool did.

    Parameters
    ----------
    out : str
        Run directory (planned by the caller with ``plan_new_run``).
    model : SparseMLP
        The changed model.
    args : argparse.Namespace
        Parsed arguments, recorded as the tool's settings (``info[tool]``).
    src : Source
        Where the model came from.
    ds : Dataset or None
        The data set scored on, if any.
    run_cfg : TrainConfig
        Configuration written with the run.
    tool : str
        The tool's name (``"prune"``, ``"approx"``).
    seconds : float
        Time the tool's work took (recorded as evolution time).
    entry : dict
        One item, e.g. ``{"pruned": report}``, added to the history record.
    info : dict
        Extra entries of the run's ``info.json``.
    train_loss : float, optional
        Loss on training samples, when the tool measured one.
    initial : SparseMLP, optional
        The model before the change (the run's initial degrees).

    Returns
    -------
    dict or None
        The test score after the change (``accuracy``, ``loss``, ``count``), None without
        a data set.
    """
    t = time.perf_counter()
    after = score(model, ds.X_test, ds.y_test, run_cfg.loss) if ds is not None else None
    record = {"epoch": src.epoch, "lr": None, "train_loss": train_loss,
              "test_loss": None if after is None else after["loss"],
              "test_accuracy": None if after is None else after["accuracy"],
              "best_test_accuracy": None if after is None else after["accuracy"],
              "nnz": model.nnz(), "dense_params": model.dense_params(),
              "seconds_train": 0.0, "seconds_evolution": seconds,
              "seconds_eval": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb(), **entry}
    prep = src.preprocessing if src.kind == "run" or ds is None else ds.preprocessing
    settings = {k: v for k, v in vars(args).items() if k not in ("verbose", "quiet", "json")}
    with NewRunGuard(out, True):
        save_model_run(out, model, run_cfg, preprocessing=prep, epoch=src.epoch,
                       history=[*src.history, record], initial=initial,
                       info={**info, tool: settings})
    return after


def print_accuracy_and_next(out, ds, before, after, finetune):
    """Print the test accuracy before and after (or how to measure it) and the next commands.

    Parameters
    ----------
    out : str
        The written run directory.
    ds : Dataset or None
        The data set scored on.
    before, after : dict or None
        Test scores (None without a data set).
    finetune : str
        Extra flags of the suggested ``train --init-from`` command.
    """
    if before is not None:
        print(f"test accuracy {before['accuracy']:.4f} -> {after['accuracy']:.4f} "
              f"({after['count']} test samples of {ds.name})")
    else:
        print("no data set: test accuracy not measured. python -m sparsemlp.evaluate "
              f"{out} --dataset NAME scores it (features scaled as the model expects).")
    print(f"wrote {out}: python -m sparsemlp.evaluate {out}; fine-tune with python -m "
          f"sparsemlp.train --init-from {out}{finetune} --epochs 5 --out RUN")
