"""Sparse topologies: Erdős–Rényi, uniform random, regular and clash-free patterns; init laws."""

from .hardware import CLASH_KINDS, balance_z, clash_free, feasible_cycles
from .laws import (  # noqa: F401  (private helpers shared with evolution)
    ER_LAWS,
    INIT_LAWS,
    _fill_values,
    _scalar_value_fn,
    describe,
    erdos_renyi,
    init_values,
)
from .nets import PREDEFINED_KINDS, predefined_layers
from .predefined import random, regular
from .sampling import (  # noqa: F401  (private helpers shared with evolution and rewiring)
    _CHUNK,
    _SEARCH_RATIO,
    _bernoulli_positions,
    _check_float_dtype,
    _check_rng,
    _csr_from_keys,
    _index_dtype,
    _isin_sorted,
    _keys_to_csr,
    _sample_distinct,
    _sorted_unique,
)
from .schedule import SCHEDULE_COLUMNS, ClashFreeSchedule

__all__ = ["INIT_LAWS", "ER_LAWS", "init_values", "erdos_renyi", "describe", "random", "regular",
           "clash_free", "balance_z", "feasible_cycles", "CLASH_KINDS", "ClashFreeSchedule",
           "SCHEDULE_COLUMNS", "PREDEFINED_KINDS", "predefined_layers"]
