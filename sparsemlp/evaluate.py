"""``python -m sparsemlp.evaluate``: the command-line tool; its code is :mod:`sparsemlp.cli.evaluate`."""

import sys

from .cli.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
