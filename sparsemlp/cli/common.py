"""Helpers shared by the command-line tools: error reporting and run-directory lookup."""

import json
import logging
import os
import signal
import sys

from ..data import DataError
from ..training.checkpoint import CheckpointError, read_latest
from ..training.config import ConfigError

logger = logging.getLogger("sparsemlp")

USER_ERRORS = (ConfigError, DataError, CheckpointError)


def run_tool(fn, args):
    """Call ``fn(args)`` and map exceptions to exit codes with one-line messages.

    Parameters
    ----------
    fn : callable
        The tool's body; returns an exit code.
    args : argparse.Namespace
        Parsed arguments (``verbose`` is honoured when present).

    Returns
    -------
    int
        0 success, 1 unexpected failure, 2 user error, 128 + the signal number when
        interrupted (130 for Ctrl-C / SIGINT, 143 for SIGTERM).
    """
    verbose = getattr(args, "verbose", 0)
    try:
        return fn(args)
    except USER_ERRORS as exc:
        if verbose:
            logger.exception("error")
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as sparsemlp._run.Interrupted
        signum = getattr(exc, "signum", signal.SIGINT)
        print("interrupted" if signum == signal.SIGINT else
              f"terminated ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - one line, traceback with -v
        if verbose:
            logger.exception("error")
        print(f"error: {type(exc).__name__}: {exc} (rerun with -v for the traceback)",
              file=sys.stderr)
        return 1


def parse(parser, argv):
    """Parse ``argv``; return ``(args, None)`` or ``(None, exit_code)`` instead of exiting.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The tool's parser.
    argv : list of str or None
        Arguments.

    Returns
    -------
    args : argparse.Namespace or None
        Parsed arguments.
    code : int or None
        Exit code when parsing stopped (``--help``: 0, bad usage: 2).
    """
    try:
        return parser.parse_args(argv), None
    except SystemExit as exc:
        return None, int(exc.code or 0)


def find_checkpoint(path, which="final"):
    """Resolve a run directory (or a checkpoint directory) to one checkpoint directory.

    Parameters
    ----------
    path : str
        A run directory or a checkpoint directory (holding ``meta.json``).
    which : str, default="final"
        For a run directory: ``"final"`` (falls back to ``latest``), ``"latest"``, or the
        name of a directory under ``checkpoints/`` such as ``epoch-0010``.

    Returns
    -------
    str
        The checkpoint directory.

    Raises
    ------
    CheckpointError
        If nothing suitable exists.
    """
    if not os.path.isdir(path):
        raise CheckpointError(f"{path} does not exist or is not a directory. Pass a run "
                              "directory written by 'python -m sparsemlp.train --out DIR'.")
    if os.path.exists(os.path.join(path, "meta.json")):
        return path
    if which == "final" and os.path.exists(os.path.join(path, "final", "meta.json")):
        return os.path.join(path, "final")
    if which in ("final", "latest"):
        latest = read_latest(path)
        if latest is not None and os.path.exists(os.path.join(latest, "meta.json")):
            return latest
    else:
        cand = os.path.join(path, "checkpoints", which)
        if os.path.exists(os.path.join(cand, "meta.json")):
            return cand
    have = sorted(os.listdir(os.path.join(path, "checkpoints"))) \
        if os.path.isdir(os.path.join(path, "checkpoints")) else []
    raise CheckpointError(f"{path} has no checkpoint {which!r} (available: "
                          f"{', '.join(have) or 'none'}). Is it a sparsemlp run directory?")


def read_run_config(run_dir):
    """The ``config.json`` of a run directory as a dict, or None when absent.

    Parameters
    ----------
    run_dir : str
        Run directory.

    Returns
    -------
    dict or None
        Parsed file.

    Raises
    ------
    ConfigError
        If the file exists but is not valid JSON.
    """
    p = os.path.join(run_dir, "config.json")
    if not os.path.exists(p):
        return None
    try:
        with open(p) as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not valid JSON ({exc}).") from None
