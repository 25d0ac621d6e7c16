"""sparsemlp: truly sparse neural networks trained with Sparse Evolutionary Training."""

from ._version import __version__

__all__ = ["__version__"]
