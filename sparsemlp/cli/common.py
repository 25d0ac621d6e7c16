"""Helpers shared by the command-line tools: error reporting and run-directory lookup."""

import json
import logging
import os
import signal
import sys

from ..data import DataError
from ..training.checkpoint import CheckpointError
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
