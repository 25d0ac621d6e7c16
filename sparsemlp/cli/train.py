"""Command line: ``python -m sparsemlp.train``; ``main(argv=None) -> int``."""

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import time

from .. import _kernels
from .._parallel import resolve_threads
from .._rng import Streams
from .._version import __version__
from ..distributed import end_job, from_rank0, quiet_other_ranks, rank0_first, world
from ..training.config import ConfigError, TrainConfig, load_toml
from ..training.datasets import load_dataset, pad_features, rbm_data  # noqa: F401 - public here too
from ..training.modelrun import write_degrees as save_degrees
from ..training.modelrun import write_json
from ..training.rundir import NewRunGuard, drop_after, locate_resume, plan_new_run, plan_resume
from ..training.signals import signals_raise
from ..training.warmstart import inherited_settings, init_preprocessing
from .common import parse, run_tool

logger = logging.getLogger("sparsemlp")


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sparsemlp.train",
        description="Train a truly sparse MLP (or, with --model rbm, an RBM) with Sparse "
                    "Evolutionary Training (SET).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", help="TOML file with settings (defaults < file < flags)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--profile", action="store_true",
                   help="print where the epochs' time went, per phase and per layer")
    p.add_argument("--resume", metavar="PATH",
                   help="continue a run exactly: its directory, or one of its checkpoints "
                        "(RUN/checkpoints/epoch-NNNN, RUN/final)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more output (tracebacks)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    p.add_argument("--version", action="version", version=f"sparsemlp {__version__}")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        md = f.metadata
        kw = dict(dest=f.name, default=argparse.SUPPRESS, help=md.get("help", ""))
        if f.type is bool or f.type == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif md.get("nargs"):
            kw.update(nargs=md["nargs"], type=md.get("type", str))
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            kw["type"] = typ if typ in (int, float, str) else str
            if md.get("choices"):
                kw["choices"] = md["choices"]
        p.add_argument(flag, **kw)
    return p


def _resolve(args):
    settings = {}
    if args.config:
        try:
            table = load_toml(args.config)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"config file {args.config} cannot be read ({reason}). Pass a "
                              "TOML file with --config.") from None
        if not isinstance(table, dict):
            raise ConfigError(f"config file {args.config}: [train] must be a table of settings. "
                              "Got a value.")
        settings.update(table)
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    settings.update(flags)
    if settings.get("init_from") and not args.resume:  # the trained model's sizes and data
        settings = dict(inherited_settings(settings["init_from"], settings), **settings)
    return TrainConfig.from_dict(settings, source=args.config or "flags").resolve(), flags


def _run_dir(cfg):
    if cfg.out:
        return cfg.out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.splitext(os.path.basename(cfg.dataset))[0]
    return os.path.join("runs", f"{base}-{cfg.mode}-{stamp}")


def save_schedules(run_dir, model):
    """Write the cycle schedule of every clash-free layer as CSV and JSON.

    Parameters
    ----------
    run_dir : str
        Run directory; files go to ``<run_dir>/schedules/layer_<i>.csv`` and ``.json``.
    model : SparseMLP
        The model (layers without a schedule are skipped).

    Returns
    -------
    list of str
        The files written.
    """
    out = []
    for i, layer in enumerate(model.layers):
        s = layer.schedule
        if s is None:
            continue
        d = os.path.join(run_dir, "schedules")
        os.makedirs(d, exist_ok=True)
        out.append(s.to_csv(os.path.join(d, f"layer_{i}.csv"), layer.W))
        out.append(s.to_json(os.path.join(d, f"layer_{i}.json"), layer.W))
    return out


@contextlib.contextmanager
def _logging_to_stderr(verbose, quiet):
    """The package logger prints bare messages to stderr for the duration of one ``main`` call;
    its handlers, level and propagation are restored afterwards (``main`` called in-process,
    from a notebook or a test, leaves logging as it found it)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("sparsemlp")
    saved = root.handlers[:], root.level, root.propagate
    root.handlers[:] = [h]
    root.setLevel(level)
    root.propagate = False
    try:
        yield
    finally:
        root.handlers[:], root.propagate = saved[0], saved[2]
        root.setLevel(saved[1])


def main(argv=None):
    """Run the trainer; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 failure, 2 usage/config/data error, 130 interrupted (Ctrl-C),
        143 terminated (SIGTERM); both save a checkpoint first once training has begun.
    """
    args, code = parse(_parser(), argv)
    if args is None:
        return code
    args.comm = None  # set by _main: this process's rank (SerialComm unless under mpiexec)
    with _logging_to_stderr(args.verbose, args.quiet), signals_raise():
        return end_job(args.comm, run_tool(_main, args))


def _main(args):
    from ..training.mlp import Trainer

    comm = args.comm = world()
    quiet_other_ranks(comm)
    args.quiet = args.quiet or comm.rank > 0  # rank 0 alone shows progress and writes the run
    if comm.rank == 0:
        if args.resume:
            locate_resume(args.resume)  # a bad path first, before the flags
            cfg, run_dir, ck = plan_resume(args.resume, _resolve(args)[1])
        else:
            cfg, _ = _resolve(args)
            run_dir, ck = _run_dir(cfg), None
            if not args.print_config:
                plan_new_run(run_dir)
    cfg, run_dir, ck = from_rank0(comm, (cfg, run_dir, ck) if comm.rank == 0 else None)
    if args.print_config:
        if comm.rank == 0:
            print(cfg.to_json())
        return 0
    if comm.size > 1:
        logger.info("data parallel: %d MPI ranks, %d kernel threads each", comm.size,
                    resolve_threads(cfg.threads))

    streams = Streams(cfg.seed, legacy=cfg.legacy_rng)
    # a run started from a trained model scales and labels its data as that model expects
    prep = init_preprocessing(cfg.init_from) if cfg.init_from and ck is None else None
    ds = rank0_first(comm, lambda: load_dataset(cfg, streams, progress=not args.quiet,
                                                preprocessing=prep))
    ks = _kernels.get(cfg.backend)
    logger.info("sparsemlp %s | backend %s | threads %s | seed %s | run %s", __version__,
                ks.name, cfg.threads or "all", cfg.seed, run_dir)
    logger.info("data %s: %d train / %d test, %d features, %d classes", ds.name,
                ds.X_train.shape[0], ds.X_test.shape[0], ds.n_features, ds.n_classes)
    with NewRunGuard(run_dir, ck is None and comm.rank == 0):
        if cfg.model == "rbm":
            return _main_rbm(args, cfg, run_dir, ck, ds, ks, streams)
        return _main_mlp(args, cfg, run_dir, ck, ds, ks, streams, Trainer)


def _main_mlp(args, cfg, run_dir, ck, ds, ks, streams, Trainer):
    trainer = _open_run(Trainer, args, cfg, run_dir, ck, ds, ks, streams,
                        (ds.n_features, ds.n_classes))
    m = trainer.model
    logger.info("model %s: nnz %s (%.3g%% of dense), topology %s, rewire %s", m.sizes, m.nnz(),
                100 * sum(m.nnz()) / max(1, sum(la.n_in * la.n_out for la in m.layers)),
                cfg.topology, cfg.rewire)
    for i, la in enumerate(m.layers):
        if la.schedule is not None:
            logger.info("layer %d: clash-free, z=%d banks, %d cycles", i, la.schedule.z,
                        la.schedule.n_cycles)
    t0 = time.perf_counter()
    prof = None
    if args.profile:
        from ..training.profile import Profiler

        prof = Profiler(trainer)
    hist = trainer.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
    if args.comm.rank > 0:
        return 0
    written = save_schedules(run_dir, m)
    if written:
        logger.info("clash-free schedules (cycle, lane, bank, address, input, output): %s",
                    ", ".join(written))
    if prof is not None:
        prof.detach()
        print(prof.report())
        write_json(os.path.join(run_dir, "profile.json"), prof.as_dict())
    wall = time.perf_counter() - t0
    last = hist[-1] if len(hist) else {}
    n_ep = max(1, len(hist))
    spe = sum((r["seconds_train"] + r["seconds_evolution"]) for r in hist.records) / n_ep
    dense_w = sum(la.n_in * la.n_out for la in m.layers)
    print(f"done: test accuracy {last.get('test_accuracy', float('nan')):.4f} "
          f"(best {last.get('best_test_accuracy', float('nan')):.4f}) | connections "
          f"{sum(m.nnz())} = {100 * sum(m.nnz()) / dense_w:.3g}% of dense | "
          f"{spe:.3f} s/epoch | peak RSS {last.get('peak_rss_mb', 0):.0f} MiB | "
          f"{wall:.1f} s | run {run_dir}")
    return 0


def _open_run(cls, args, cfg, run_dir, ck, ds, ks, streams, shape):
    """The trainer resumed from checkpoint ``ck`` (what came after it is dropped), or, for
    ``ck=None``, a new one; the model is built before its run directory is created, which
    then gets ``config.json`` and ``initial_degrees.npz``. ``shape`` goes to from_config.
    Ranks other than 0 of a data-parallel run write nothing."""
    comm = args.comm
    if comm.rank > 0:
        if ck is not None:
            trainer = cls.from_checkpoint(ck, backend=cfg.backend, verbose=False, comm=comm)
            trainer.config = cfg
        else:
            trainer = cls.from_config(cfg, *shape, streams=streams, verbose=False, comm=comm)
        if trainer.preprocessing is None or ck is None:
            trainer.preprocessing = ds.preprocessing
        return trainer
    if ck is not None:
        trainer = cls.from_checkpoint(ck, run_dir=run_dir, backend=cfg.backend,
                                      verbose=not args.quiet, comm=comm)
        trainer.config = cfg
        if trainer.preprocessing is None:  # a checkpoint of format 1 had no label map or scaling
            trainer.preprocessing = ds.preprocessing  # (the same config gives the same data)
        for p in drop_after(run_dir, ck):
            logger.warning("removed %s: it came after the checkpoint resumed from", p)
        return trainer
    trainer = cls.from_config(cfg, *shape, streams=streams, verbose=not args.quiet, comm=comm)
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(metrics):  # a run started over
        os.remove(metrics)
    trainer.preprocessing = ds.preprocessing  # label map and scaling go into checkpoints
    trainer.set_run_dir(run_dir)
    write_json(os.path.join(run_dir, "config.json"),
                {"config": cfg.to_dict(), "sparsemlp_version": __version__,
                 "backend": ks.name, "dataset": ds.name,
                 "n_features": ds.n_features, "n_classes": ds.n_classes,
                 "classes": ds.classes.tolist(), "normalize": ds.preprocessing.scaling.how})
    save_degrees(os.path.join(run_dir, "initial_degrees.npz"), trainer.model)
    return trainer


def _main_rbm(args, cfg, run_dir, ck, ds, ks, streams):
    from ..training.rbm import RBMTrainer

    if args.profile:
        raise ConfigError("--profile times the MLP's layers; it does not apply to --model rbm "
                          "(metrics.jsonl has seconds_train, seconds_eval, seconds_ais and "
                          "seconds_evolution per epoch).")
    Xtr, Xte = rbm_data(cfg, ds)
    trainer = _open_run(RBMTrainer, args, cfg, run_dir, ck, ds, ks, streams, (ds.n_features,))
    m = trainer.model
    logger.info("model %s: nnz %d (%.3g%% of dense)", m, m.layer.nnz,
                100 * m.layer.nnz / (m.n_visible * m.n_hidden))
    t0 = time.perf_counter()
    hist = trainer.fit(Xtr, Xte)
    if args.comm.rank > 0:
        return 0
    wall = time.perf_counter() - t0
    last = hist[-1] if len(hist) else {}
    spe = sum(r["seconds_train"] + r["seconds_evolution"] for r in hist.records) / max(1, len(hist))
    ll = [r["test_log_likelihood"] for r in hist.records if r.get("test_log_likelihood") is not None]

    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    print(f"done: test reconstruction error {num(last.get('test_recon'), '.6g')} | test PLL "
          f"{num(last.get('test_pll'), '.5g')} | test log-likelihood (AIS) "
          f"{num(ll[-1] if ll else None, '.5g')} | connections {m.layer.nnz} = "
          f"{100 * m.layer.nnz / (m.n_visible * m.n_hidden):.3g}% of dense | {spe:.3f} s/epoch | "
          f"peak RSS {last.get('peak_rss_mb', 0):.0f} MiB | {wall:.1f} s | run {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
