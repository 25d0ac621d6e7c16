"""Sparse topologies: Erdős–Rényi, uniform random, regular and clash-free patterns; init laws."""

from .laws import (  # noqa: F401  (private helpers are shared with evolution)
    _CHUNK,
    _SEARCH_RATIO,
    ER_LAWS,
    INIT_LAWS,
    _bernoulli_positions,
    _check_float_dtype,
    _check_rng,
    _csr_from_keys,
    _fill_values,
    _index_dtype,
    _isin_sorted,
    _keys_to_csr,
    _sample_distinct,
    _scalar_value_fn,
    _sorted_unique,
    describe,
    erdos_renyi,
    init_values,
)

__all__ = ["INIT_LAWS", "ER_LAWS", "init_values", "erdos_renyi", "describe"]
