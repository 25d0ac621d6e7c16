"""``python -m sparsemlp CMD``: the same as the ``sparsemlp`` console command."""

import sys

from .cli.main import main

sys.exit(main())
