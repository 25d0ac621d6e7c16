"""The run directory: where a resume starts, leftovers of killed writers, --out and --resume checks."""

import dataclasses
import json
import logging
import os
import re
import shutil

from .checkpoint import CheckpointError, check_meta, read_latest, read_meta, write_latest
from .config import ConfigError, TrainConfig

logger = logging.getLogger("sparsemlp")

_NAME = re.compile(r"epoch-(\d+)(?:-step-(\d+))?")
_LEFTOVER = re.compile(r"(.+)\.(tmp|old)(?:-(\d+))?")


def checkpoint_key(name):
    """Order of a checkpoint directory name: ``(epochs, batches)``, or None for other names.

    ``epoch-0012`` is ``(12, 0)``; the interrupt checkpoint ``epoch-0012-step-000040``,
    40 batches into the 13th epoch, is ``(12, 40)``.

    Parameters
    ----------
    name : str
        Directory name.

    Returns
    -------
    tuple of int or None
        The key, or None if ``name`` is not a checkpoint name.
    """
    m = _NAME.fullmatch(name)
    return None if m is None else (int(m.group(1)), int(m.group(2) or 0))


def _epoch_checkpoints(run_dir):
    """Complete ``checkpoints/epoch-*`` directories of a run, in training order."""
    root = os.path.join(run_dir, "checkpoints")
    names = [d for d in (os.listdir(root) if os.path.isdir(root) else ())
             if checkpoint_key(d) is not None and os.path.exists(os.path.join(root, d, "meta.json"))]
    return [os.path.join(root, d) for d in sorted(names, key=checkpoint_key)]


def newest_checkpoint(run_dir):
    """The checkpoint a resume of ``run_dir`` continues from, or None before the first one.

    ``latest`` when it names an existing checkpoint; otherwise (a crash between writing
    a checkpoint and ``latest``) ``final/`` if complete, else the furthest complete
    ``checkpoints/epoch-*``.

    Parameters
    ----------
    run_dir : str
        Run directory.

    Returns
    -------
    str or None
        Checkpoint directory.
    """
    latest = read_latest(run_dir)
    if latest is not None and os.path.isdir(latest):
        return latest
    final = os.path.join(run_dir, "final")
    if os.path.exists(os.path.join(final, "meta.json")):
        return final
    cks = _epoch_checkpoints(run_dir)
    return cks[-1] if cks else None


def _pid_alive(pid):
    if pid == os.getpid():
        return False  # our own leftovers, from an earlier failure in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


def clean_leftovers(run_dir):
    """Remove what killed writers left in a run directory; put back an interrupted swap.

    ``<name>.tmp-<pid>`` (a checkpoint, ``latest`` or ``metrics.jsonl`` being written) is
    removed, and ``<name>.old-<pid>`` (the previous version of a checkpoint being
    replaced) too, or renamed back to ``<name>`` if the writer died before the new one
    took its place. Only leftovers of processes that are no longer running are touched (a
    run directory belongs to one process at a time); ``<name>.tmp`` without a PID always.

    Parameters
    ----------
    run_dir : str
        Run directory; it and its ``checkpoints/`` are cleaned.

    Returns
    -------
    list of str
        What was removed or restored, for a log line.
    """
    done = []
    for d in (run_dir, os.path.join(run_dir, "checkpoints")):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            m = _LEFTOVER.fullmatch(name)
            if m is None or (m.group(3) and _pid_alive(int(m.group(3)))):
                continue
            p, base = os.path.join(d, name), os.path.join(d, m.group(1))
            if m.group(2) == "old" and not os.path.exists(base):
                os.replace(p, base)
                done.append(f"restored {base}")
                continue
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.remove(p)
            done.append(f"removed {p}")
    return done


def drop_after(run_dir, ck):
    """Remove the checkpoints of ``run_dir`` that come after ``ck`` and point ``latest`` at it.

    Resuming from an earlier checkpoint abandons what followed it (``metrics.jsonl`` is
    cut at the same epoch): later ``checkpoints/epoch-*`` and ``final/`` go.

    Parameters
    ----------
    run_dir : str
        Run directory.
    ck : str
        The checkpoint resumed from, inside ``run_dir``.

    Returns
    -------
    list of str
        The directories removed.
    """
    ck = os.path.abspath(ck)
    final = os.path.abspath(os.path.join(run_dir, "final"))
    gone = []
    if ck != final:
        key = checkpoint_key(os.path.basename(ck))
        later = [p for p in _epoch_checkpoints(run_dir)
                 if checkpoint_key(os.path.basename(p)) > key]
        for p in [*later, *([final] if os.path.isdir(final) else [])]:
            shutil.rmtree(p)
            gone.append(p)
    rel = os.path.relpath(ck, os.path.abspath(run_dir))
    latest = read_latest(run_dir)
    if latest is None or os.path.abspath(latest) != ck:
        write_latest(run_dir, rel)
    return gone


def locate_resume(path):
    """The run directory and checkpoint that ``--resume PATH`` names.

    Parameters
    ----------
    path : str
        A run directory (it resumes from its newest checkpoint), or one of its
        checkpoints: ``RUN/checkpoints/epoch-NNNN[-step-SSSSSS]`` or ``RUN/final``.

    Returns
    -------
    run_dir : str
        The run directory.
    ck : str or None
        The checkpoint directory given, or None for a run directory.

    Raises
    ------
    ConfigError
        If ``path`` is missing, a file, or neither a run directory nor one of its checkpoints.
    """
    fix = ("Pass the --out directory of a run, or one of its checkpoints "
           "(RUN/checkpoints/epoch-NNNN or RUN/final).")
    if not os.path.exists(path):
        raise ConfigError(f"--resume {path}: no such directory. {fix}")
    if not os.path.isdir(path):
        raise ConfigError(f"--resume {path} is a file, not a directory. {fix}")
    if os.path.exists(os.path.join(path, "config.json")):
        return path, None
    if os.path.exists(os.path.join(path, "meta.json")):
        parent = os.path.dirname(os.path.abspath(path))
        name = os.path.basename(os.path.abspath(path))
        in_run = name == "final" or (checkpoint_key(name) is not None
                                     and os.path.basename(parent) == "checkpoints")
        run_dir = parent if name == "final" else os.path.dirname(parent)
        if not in_run or not os.path.exists(os.path.join(run_dir, "config.json")):
            raise ConfigError(f"--resume {path} is a checkpoint, but not one of a run directory; "
                              f"the command line resumes runs. {fix} (A lone checkpoint loads "
                              "with Trainer.from_checkpoint.)")
        return run_dir, path
    raise ConfigError(f"--resume {path} is not a run directory (no config.json). {fix}")


def read_run_config(run_dir):
    """The ``config`` mapping of a run's ``config.json``.

    Parameters
    ----------
    run_dir : str
        Run directory.

    Returns
    -------
    dict
        The settings the run was started with.

    Raises
    ------
    ConfigError
        If the file cannot be read or is not a sparsemlp run configuration.
    """
    p = os.path.join(run_dir, "config.json")
    try:
        with open(p, encoding="utf-8") as fh:
            d = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p} cannot be read ({exc}). Restore it from a copy, or start a "
                          "new run with --out.") from None
    if not isinstance(d, dict) or not isinstance(d.get("config"), dict):
        raise ConfigError(f"{p} is not a sparsemlp run configuration (no 'config' table). "
                          "Restore it from a copy, or start a new run with --out.")
    return d["config"]


def check_out_dir(path, flag="--out"):
    """Refuse a run directory that is a file or cannot be written, before anything is computed.

    Parameters
    ----------
    path : str
        Run directory (to be).
    flag : str, default="--out"
        The option that named it, for messages.

    Raises
    ------
    ConfigError
        Naming the path, the problem and the fix.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path} is an existing file, not a directory. Pass a new "
                          "directory name.")
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ConfigError(f"{flag} {path} cannot be created: {probe} is a file. Pass a path "
                          "in a directory.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: {probe} is not writable. Pass a path where you may "
                          "write.")


#: Flags that may change when a run is resumed; any other flag must match the run's.
RESUME_FLAGS = frozenset({"epochs", "threads", "backend", "checkpoint_every", "keep_checkpoints",
                          "out", "eval_batch_size"})


def plan_resume(path, flags):
    """Config, run directory and checkpoint of ``--resume PATH`` (None: the run saved none yet).

    Everything is checked before any data is loaded: the path, ``config.json`` against the
    checkpoint's verified config, the flags against the run, ``--epochs`` against the
    checkpoint's epoch. Leftovers of killed writers are cleaned first.

    Parameters
    ----------
    path : str
        What ``--resume`` names (see :func:`locate_resume`).
    flags : dict
        The TrainConfig fields given on the command line.

    Returns
    -------
    cfg : TrainConfig
        The checkpoint's config (the run's ``config.json`` before its first checkpoint)
        with the flags of ``RESUME_FLAGS`` applied.
    run_dir : str
        Run directory.
    ck : str or None
        Checkpoint to resume from; None starts the run over from its ``config.json``.

    Raises
    ------
    ConfigError
        If the path is not a run or a checkpoint of one, a flag conflicts with the run,
        or ``--epochs`` lies before the checkpoint.
    CheckpointError
        If the checkpoint's metadata is corrupted, changed, or disagrees with config.json.
    """
    run_dir, ck = locate_resume(path)
    check_out_dir(run_dir, "--resume")  # writable
    cfg_path = os.path.join(run_dir, "config.json")
    try:
        file_cfg = TrainConfig.from_dict(read_run_config(run_dir), source=cfg_path).resolve()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg_path} holds an invalid configuration: {exc}") from None
    for what in clean_leftovers(run_dir):
        logger.info("%s (left by a killed process)", what)
    ck = ck if ck is not None else newest_checkpoint(run_dir)
    epoch, mid = 0, False
    base = file_cfg
    if ck is not None:
        meta = read_meta(ck)
        where = os.path.join(ck, "meta.json")
        check_meta(meta, where, config=dict, epoch=int)
        try:
            base = TrainConfig.from_dict(meta["config"], source=where).resolve()
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where} has an invalid config: {exc}") from None
        for f in dataclasses.fields(TrainConfig):
            a, b = getattr(file_cfg, f.name), getattr(base, f.name)
            if f.name not in RESUME_FLAGS and a != b:
                raise CheckpointError(
                    f"{cfg_path} and the checkpoint {ck} disagree on {f.name} ({a!r} against "
                    f"{b!r}): one of them was edited or comes from another run. Restore it, or "
                    "start a new run with --out.")
        epoch, mid = meta["epoch"], bool(meta.get("mid_epoch"))
    else:
        logger.warning("%s has no checkpoint yet (stopped before its first one): starting it "
                       "over from its config.json", run_dir)
    for k, v in flags.items():
        if k not in RESUME_FLAGS and getattr(base, k) != (v if not isinstance(v, list) else tuple(v)):
            raise ConfigError(
                f"--resume: --{k.replace('_', '-')} {v} conflicts with the run's "
                f"{k}={getattr(base, k)!r}. Drop the flag or start a new run with --out.")
    cfg = dataclasses.replace(base, **{k: v for k, v in flags.items() if k in RESUME_FLAGS})
    if cfg.epochs < epoch or (cfg.epochs == epoch and mid):
        raise ConfigError(
            f"--resume {path}: the run is already at epoch {epoch}"
            f"{' (and into the next)' if mid else ''}, so --epochs {cfg.epochs} would go back. "
            f"Pass --epochs above {epoch} to extend it, or resume an earlier checkpoint "
            f"(--resume {os.path.join(run_dir, 'checkpoints', 'epoch-NNNN')}).")
    if cfg.epochs == epoch:
        logger.warning("%s is already complete at epoch %d: nothing to train (pass --epochs "
                       "above %d to extend it)", run_dir, epoch, epoch)
    return cfg, run_dir, ck


def plan_new_run(run_dir):
    """Check that a new run may go to ``run_dir`` (before anything is computed).

    A directory that holds a run refuses it, unless that run never saved a checkpoint (it
    then starts over).

    Parameters
    ----------
    run_dir : str
        The ``--out`` directory.

    Raises
    ------
    ConfigError
        If ``run_dir`` is a file, cannot be created, or holds a run with checkpoints.
    """
    check_out_dir(run_dir)
    if os.path.exists(os.path.join(run_dir, "config.json")):
        clean_leftovers(run_dir)
        if newest_checkpoint(run_dir) is not None:
            raise ConfigError(f"{run_dir} already holds a run. Pass --resume {run_dir} to "
                              "continue it or --out NEW_DIR for a new run.")
        logger.warning("%s holds a run that stopped before its first checkpoint: starting it "
                       "over", run_dir)


class NewRunGuard:
    """Remove a run directory this invocation created if it fails before saving anything.

    An error before training starts (a refused topology, data that does not fit) then
    leaves no empty run behind. Interrupts save a checkpoint, so their directory stays.

    Parameters
    ----------
    run_dir : str
        The run directory.
    new : bool
        Whether this invocation starts a run (not a resume).
    """

    def __init__(self, run_dir, new):
        self.run_dir = run_dir
        self.created = new and not os.path.exists(run_dir)

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        d = self.run_dir
        if (self.created and typ is not None and os.path.isdir(d)
                and not os.path.exists(os.path.join(d, "latest"))
                and not (os.path.exists(os.path.join(d, "metrics.jsonl"))
                         and os.path.getsize(os.path.join(d, "metrics.jsonl")))):
            shutil.rmtree(d, ignore_errors=True)
        return False
