"""Data sets: the built-in digits, loaders and readers, download, splitting, scaling and label maps."""

from .core import (
    Dataset,
    load,
    load_digits,
    load_idx_dir,
    load_madelon,
    make_synthetic,
    normalize,
    read_csv,
    read_idx,
    split,
)
from .preprocessing import DataError, Preprocessing, Scaling

__all__ = ["Dataset", "load", "load_digits", "make_synthetic", "split", "normalize", "Scaling",
           "Preprocessing", "read_idx", "load_idx_dir", "load_madelon", "read_csv", "DataError"]
