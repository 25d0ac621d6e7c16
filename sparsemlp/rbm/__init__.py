"""SparseRBM: a restricted Boltzmann machine on CSR weights, trained by CD-k or PCD with SET."""

from .model import VISIBLE_UNITS, SparseRBM

__all__ = ["SparseRBM", "VISIBLE_UNITS"]
