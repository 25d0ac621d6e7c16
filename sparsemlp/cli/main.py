"""The ``sparsemlp`` console command: ``sparsemlp train|evaluate|info|plot [ARGS]``."""

import importlib
import sys

from .._version import __version__

SUBCOMMANDS = {
    "train": ("sparsemlp.cli.train", "train a SET sparse network (python -m sparsemlp.train)"),
    "evaluate": ("sparsemlp.cli.evaluate", "score a run's model on a data set"),
    "info": ("sparsemlp.cli.info", "layers, connections, bytes per connection, degrees"),
    "plot": ("sparsemlp.cli.plot", "learning curves, time per epoch, degree distributions (PNG)"),
    "export": ("sparsemlp.export.__main__", "a trained run as standalone C99 (host, aarch64, armv7)"),
}

USAGE = "usage: sparsemlp {train,evaluate,info,plot,export} [ARGS]  (sparsemlp CMD --help for details)"


def main(argv=None):
    """Dispatch to a subcommand's ``main``; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``); the first names the subcommand.

    Returns
    -------
    int
        The subcommand's exit code; 2 for a missing or unknown subcommand.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        for name, (_, text) in SUBCOMMANDS.items():
            print(f"  {name:<9} {text}")
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"sparsemlp {__version__}")
        return 0
    if argv[0] not in SUBCOMMANDS:
        print(f"error: unknown subcommand {argv[0]!r}; choose one of "
              f"{', '.join(SUBCOMMANDS)}. {USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
