"""``python -m sparsemlp.train``: the command-line tool; its code is :mod:`sparsemlp.cli.train`."""

import sys

from .cli.train import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
