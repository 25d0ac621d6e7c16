"""``python -m sparsemlp.info``: the command-line tool; its code is :mod:`sparsemlp.cli.info`."""

import sys

from .cli.info import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
