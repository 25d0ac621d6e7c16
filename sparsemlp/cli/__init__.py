"""The command-line tools: ``sparsemlp train|evaluate|info|plot`` and ``python -m sparsemlp.<tool>``."""
