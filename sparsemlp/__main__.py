"""``python -m sparsemlp CMD``: the same as the ``sparsemlp`` console command."""

import sys

from .cli import main

sys.exit(main())
