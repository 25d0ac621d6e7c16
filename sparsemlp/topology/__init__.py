"""Sparse topologies: Erdős–Rényi, uniform random, regular and clash-free patterns; init laws."""

from .hardware import CLASH_KINDS, balance_z, clash_free, feasible_cycles
from .laws import ER_LAWS, INIT_LAWS, describe, erdos_renyi, init_values
from .nets import PREDEFINED_KINDS, predefined_layers
from .predefined import random, regular
from .schedule import SCHEDULE_COLUMNS, ClashFreeSchedule

__all__ = ["INIT_LAWS", "ER_LAWS", "init_values", "erdos_renyi", "describe", "random", "regular",
           "clash_free", "balance_z", "feasible_cycles", "CLASH_KINDS", "ClashFreeSchedule",
           "SCHEDULE_COLUMNS", "PREDEFINED_KINDS", "predefined_layers"]
