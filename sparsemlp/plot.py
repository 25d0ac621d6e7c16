"""``python -m sparsemlp.plot``: the command-line tool; its code is :mod:`sparsemlp.cli.plot`."""

import sys

from .cli.plot import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
