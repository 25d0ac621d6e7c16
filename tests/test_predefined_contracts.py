"""Contracts of the pre-defined topologies (Dey et al. 2019) a user relies on.

Parameter errors (the message names the parameter, the function and the fix), the keyword
arguments that every generator passes on (values' law, dtypes), the address patterns of the
clash-free kinds and the bank-order dither read back from the schedule, ``predefined_layers``
against the single-layer generators called in turn, and the schedule's checks and exports
(in several chunks) against brute-force tables. Oracles are plain-Python loops over the
CSR arrays; the tests kill mutants of ``tools/mutation.py`` on topology/predefined, nets,
hardware and schedule that the older tests let through.
"""

import json
import math
import re

import numpy as np
import pytest
import scipy.sparse as sp

import sparsemlp.topology.schedule as schedule_mod
from sparsemlp.topology import (
    ClashFreeSchedule,
    balance_z,
    clash_free,
    feasible_cycles,
    predefined_layers,
    random,
    regular,
)


def full(msg):
    return "^" + re.escape(msg) + "$"


def rng0():
    return np.random.default_rng(0)


def rows_of(W):
    return np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))


RANGE_INT = "must be an int in the range"

PARAM_ERRORS = [
    # random
    (lambda: random(0, 5, nnz=1, rng=rng0()), ValueError,
     f"The 'n_in' parameter of random {RANGE_INT} [1, inf). Got 0 instead."),
    (lambda: random(2.5, 5, nnz=1, rng=rng0()), TypeError,
     f"The 'n_in' parameter of random {RANGE_INT} [1, inf). Got 2.5 instead."),
    (lambda: random(5, 0, nnz=1, rng=rng0()), ValueError,
     f"The 'n_out' parameter of random {RANGE_INT} [1, inf). Got 0 instead."),
    (lambda: random(5, 2.5, nnz=1, rng=rng0()), TypeError,
     f"The 'n_out' parameter of random {RANGE_INT} [1, inf). Got 2.5 instead."),
    (lambda: random(5, 5, nnz=1, init="x", rng=rng0()), ValueError,
     "The 'init' parameter of random must be one of 'normal', 'he_uniform', 'xavier_uniform'. "
     "Got 'x' instead."),
    (lambda: random(5, 5, nnz=1, normal_std=0, rng=rng0()), ValueError,
     "The 'normal_std' parameter of random must be a float in the range (0, inf). Got 0 "
     "instead."),
    (lambda: random(5, 5, nnz=1, rng=1), TypeError,
     "The 'rng' parameter of random must be a numpy.random.Generator (e.g. "
     "np.random.default_rng(0)) or, in reference mode, a numpy.random.RandomState. Got int "
     "instead."),
    (lambda: random(5, 5, nnz=1, dtype=np.int8, rng=rng0()), ValueError,
     "The 'dtype' parameter of random must be float32 or float64. Got int8 instead."),
    (lambda: random(5, 5, rng=rng0()), ValueError,
     "random needs exactly one of 'nnz', 'density' or 'fan_out'. Got none. Pass e.g. "
     "fan_out=50."),
    (lambda: random(5, 5, nnz=1, density=0.5, fan_out=2, rng=rng0()), ValueError,
     "random needs exactly one of 'nnz', 'density' or 'fan_out'. Got nnz, density, fan_out. "
     "Pass e.g. fan_out=50."),
    (lambda: random(5, 5, nnz=26, rng=rng0()), ValueError,
     f"The 'nnz' parameter of random {RANGE_INT} [0, 25]. Got 26 instead."),
    (lambda: random(5, 5, nnz=-1, rng=rng0()), ValueError,
     f"The 'nnz' parameter of random {RANGE_INT} [0, 25]. Got -1 instead."),
    (lambda: random(5, 5, nnz=2.5, rng=rng0()), TypeError,
     f"The 'nnz' parameter of random {RANGE_INT} [0, 25]. Got 2.5 instead."),
    (lambda: random(5, 5, density=1.5, rng=rng0()), ValueError,
     "The 'density' parameter of random must be a float in the range [0, 1]. Got 1.5 instead."),
    (lambda: random(5, 5, density=-0.5, rng=rng0()), ValueError,
     "The 'density' parameter of random must be a float in the range [0, 1]. Got -0.5 "
     "instead."),
    (lambda: random(5, 5, fan_out=6, rng=rng0()), ValueError,
     f"The 'fan_out' parameter of random {RANGE_INT} [0, 5]. Got 6 instead."),
    (lambda: random(5, 5, fan_out=-1, rng=rng0()), ValueError,
     f"The 'fan_out' parameter of random {RANGE_INT} [0, 5]. Got -1 instead."),
    (lambda: random(5, 5, fan_out=2.5, rng=rng0()), TypeError,
     f"The 'fan_out' parameter of random {RANGE_INT} [0, 5]. Got 2.5 instead."),
    (lambda: random(5, 5, fan_out=2, index_dtype=np.int16, rng=rng0()), ValueError,
     "The 'index_dtype' parameter of random must be int32 or int64. Got int16 instead."),
    # regular
    (lambda: regular(0, 5, 1, rng=rng0()), ValueError,
     f"The 'n_in' parameter of regular {RANGE_INT} [1, inf). Got 0 instead."),
    (lambda: regular(10, 5, 0, rng=rng0()), ValueError,
     f"The 'fan_out' parameter of regular {RANGE_INT} [1, 5]. Got 0 instead."),
    (lambda: regular(10, 5, 6, rng=rng0()), ValueError,
     f"The 'fan_out' parameter of regular {RANGE_INT} [1, 5]. Got 6 instead."),
    (lambda: regular(10, 5, 2.0, rng=rng0()), TypeError,
     f"The 'fan_out' parameter of regular {RANGE_INT} [1, 5]. Got 2.0 instead."),
    (lambda: regular(784, 100, 51, rng=rng0()), ValueError,
     "The 'fan_out' parameter of regular must make fan_in = n_in * fan_out / n_out an integer "
     "(every output gets exactly fan_in connections). Got fan_out=51 for the 784x100 layer "
     "(fan_in 399.84). Use a multiple of 25 (e.g. 25, 50, 75, 100), or change the layer sizes "
     "(TrainConfig.pad_inputs pads the first layer's inputs)."),
    (lambda: regular(6, 20, 7, rng=rng0()), ValueError,
     "The 'fan_out' parameter of regular must make fan_in = n_in * fan_out / n_out an integer "
     "(every output gets exactly fan_in connections). Got fan_out=7 for the 6x20 layer "
     "(fan_in 2.1). Use a multiple of 10 (e.g. 10, 20), or change the layer sizes "
     "(TrainConfig.pad_inputs pads the first layer's inputs)."),
    (lambda: regular(10, 5, 2, index_dtype=np.int16, rng=rng0()), ValueError,
     "The 'index_dtype' parameter of regular must be int32 or int64. Got int16 instead."),
    (lambda: regular(10, 5, 2, normal_std=-1, rng=rng0()), ValueError,
     "The 'normal_std' parameter of regular must be a float in the range (0, inf). Got -1 "
     "instead."),
    (lambda: regular(10, 5, 2, dtype=np.float16, rng=rng0()), ValueError,
     "The 'dtype' parameter of regular must be float32 or float64. Got float16 instead."),
    # clash_free
    (lambda: clash_free(8, 4, 2, 0, rng=rng0()), ValueError,
     f"The 'z' parameter of clash_free {RANGE_INT} [1, 8]. Got 0 instead."),
    (lambda: clash_free(8, 4, 2, 9, rng=rng0()), ValueError,
     f"The 'z' parameter of clash_free {RANGE_INT} [1, 8]. Got 9 instead."),
    (lambda: clash_free(8, 4, 2, 2.0, rng=rng0()), TypeError,
     f"The 'z' parameter of clash_free {RANGE_INT} [1, 8]. Got 2.0 instead."),
    (lambda: clash_free(800, 100, 50, 7, rng=rng0()), ValueError,
     "The 'z' parameter of clash_free must divide n_in: the 800 inputs are spread over z "
     "memory banks of n_in / z addresses each. Got z=7 for n_in=800. Use a divisor of 800 "
     "(e.g. 1, 2, 4, 5, 8, 10), or pad the inputs to a multiple of z (TrainConfig.pad_inputs)."),
    (lambda: clash_free(800, 100, 50, 90, rng=rng0()), ValueError,
     "The 'z' parameter of clash_free must divide n_in: the 800 inputs are spread over z "
     "memory banks of n_in / z addresses each. Got z=90 for n_in=800. Use a divisor of 800 "
     "(e.g. 25, 32, 40, 50, 80, 100), or pad the inputs to a multiple of z "
     "(TrainConfig.pad_inputs)."),
    (lambda: clash_free(8, 4, 2, 2, kind=4, rng=rng0()), ValueError,
     "The 'kind' parameter of clash_free must be 1, 2 or 3. Got 4 instead."),
    (lambda: clash_free(8, 4, 2, 2, kind=0, rng=rng0()), ValueError,
     "The 'kind' parameter of clash_free must be 1, 2 or 3. Got 0 instead."),
    (lambda: clash_free(8, 4, 2, 2, kind=True, rng=rng0()), ValueError,
     "The 'kind' parameter of clash_free must be 1, 2 or 3. Got True instead."),
    (lambda: clash_free(8, 4, 2, 2, dither=1, rng=rng0()), TypeError,
     "The 'dither' parameter of clash_free must be a bool. Got 1 instead."),
    (lambda: clash_free(20, 5, 3, 5, rng=rng0()), ValueError,
     "The 'fan_out' parameter of clash_free must divide n_out (equivalently fan_in divides "
     "n_in): otherwise an output's fan_in connections straddle two sweeps and can read the same "
     "input twice, which the original silently collapsed into a missing connection (Dey et "
     "al., IEEE JETCAS 9(2):332-345 (2019)). Got fan_out=3 for the 20x5 layer. Use one of 1, "
     "5, or regular(), which has no memory-bank constraint."),
    (lambda: clash_free(60, 12, 8, 6, rng=rng0()), ValueError,
     "The 'fan_out' parameter of clash_free must divide n_out (equivalently fan_in divides "
     "n_in): otherwise an output's fan_in connections straddle two sweeps and can read the same "
     "input twice, which the original silently collapsed into a missing connection (Dey et "
     "al., IEEE JETCAS 9(2):332-345 (2019)). Got fan_out=8 for the 60x12 layer. Use one of 1, "
     "2, 3, 4, 6, 12, or regular(), which has no memory-bank constraint."),
    (lambda: clash_free(8, 4, 0, 2, rng=rng0()), ValueError,
     f"The 'fan_out' parameter of clash_free {RANGE_INT} [1, 4]. Got 0 instead."),
    (lambda: clash_free(8, 4, 2, 2, index_dtype=np.int16, rng=rng0()), ValueError,
     "The 'index_dtype' parameter of clash_free must be int32 or int64. Got int16 instead."),
    (lambda: clash_free(8, 4, 2, 2, normal_std=0.0, rng=rng0()), ValueError,
     "The 'normal_std' parameter of clash_free must be a float in the range (0, inf). Got 0.0 "
     "instead."),
    # balance_z, feasible_cycles
    (lambda: balance_z([800, 100, 10], [50, 10], 300), ValueError,
     "The 'n_cycles' parameter of balance_z must give every junction an integer z dividing "
     "its inputs (z = inputs * fan_out / n_cycles). Got n_cycles=300: junction 0 (800 inputs, "
     "fan_out 50) would need z = 133.333. Feasible cycle counts for this net: 50, 100, 200, "
     "250, 500, 1000."),
    (lambda: balance_z([800, 100, 10], [50, 10], 400), ValueError,
     "The 'n_cycles' parameter of balance_z must give every junction an integer z dividing "
     "its inputs (z = inputs * fan_out / n_cycles). Got n_cycles=400: junction 1 (100 inputs, "
     "fan_out 10) would need z = 2.5. Feasible cycle counts for this net: 50, 100, 200, "
     "250, 500, 1000."),
    (lambda: balance_z([30, 4], [4], 15), ValueError,  # z = 8 does not divide 30
     "The 'n_cycles' parameter of balance_z must give every junction an integer z dividing "
     "its inputs (z = inputs * fan_out / n_cycles). Got n_cycles=15: junction 0 (30 inputs, "
     "fan_out 4) would need z = 8. Feasible cycle counts for this net: 4, 8, 12, 20, 24, 40, "
     "60, 120."),
    (lambda: balance_z([7, 2], [2], 3), ValueError,
     "The 'n_cycles' parameter of balance_z must give every junction an integer z dividing "
     "its inputs (z = inputs * fan_out / n_cycles). Got n_cycles=3: junction 0 (7 inputs, "
     "fan_out 2) would need z = 4.66667. Feasible cycle counts for this net: 2, 14."),
    (lambda: balance_z([1, 2, 5], [4, 3], 2), ValueError,
     "The 'n_cycles' parameter of balance_z must give every junction an integer z dividing "
     "its inputs (z = inputs * fan_out / n_cycles). Got n_cycles=2: junction 0 (1 inputs, "
     "fan_out 4) would need z = 2. No cycle count suits every junction; change the fan-outs "
     "or pad the inputs."),
    (lambda: balance_z([800, 100, 10], [50, 10], 0), ValueError,
     f"The 'n_cycles' parameter of balance_z {RANGE_INT} [1, inf). Got 0 instead."),
    (lambda: balance_z([800, 100, 10], [50, 10], 2.0), TypeError,
     f"The 'n_cycles' parameter of balance_z {RANGE_INT} [1, inf). Got 2.0 instead."),
    (lambda: balance_z([800, 100, 10], [50], 200), ValueError,
     "balance_z needs one fan_out per junction: 2 for sizes [800, 100, 10]. Got 1."),
    (lambda: balance_z([800, 0, 10], [50, 10], 200), ValueError,
     f"The 'sizes[1]' parameter of balance_z {RANGE_INT} [1, inf). Got 0 instead."),
    (lambda: balance_z([800, 1.5, 10], [50, 10], 200), TypeError,
     f"The 'sizes[1]' parameter of balance_z {RANGE_INT} [1, inf). Got 1.5 instead."),
    (lambda: balance_z([800, 100, 10], [50, 0], 200), ValueError,
     f"The 'fan_out[1]' parameter of balance_z {RANGE_INT} [1, inf). Got 0 instead."),
    (lambda: balance_z([800, 100, 10], [50, 1.5], 200), TypeError,
     f"The 'fan_out[1]' parameter of balance_z {RANGE_INT} [1, inf). Got 1.5 instead."),
    (lambda: feasible_cycles([800], []), ValueError,
     "feasible_cycles needs one fan_out per junction: 0 for sizes [800]. Got 0."),
    (lambda: feasible_cycles([800, 100, 10], [50, 10, 10]), ValueError,
     "feasible_cycles needs one fan_out per junction: 2 for sizes [800, 100, 10]. Got 3."),
    # predefined_layers
    (lambda: predefined_layers([8, 4], topology="x", fan_out=[2], rng=rng0()), ValueError,
     "The 'topology' parameter of predefined_layers must be one of 'random', 'regular', "
     "'clash-free'. Got 'x' instead."),
    (lambda: predefined_layers([8, 0], topology="regular", fan_out=[2], rng=rng0()), ValueError,
     f"The 'sizes[1]' parameter of predefined_layers {RANGE_INT} [1, inf). Got 0 instead."),
    (lambda: predefined_layers([8, 2.5], topology="regular", fan_out=[2], rng=rng0()),
     TypeError,
     f"The 'sizes[1]' parameter of predefined_layers {RANGE_INT} [1, inf). Got 2.5 instead."),
    (lambda: predefined_layers([8], topology="regular", fan_out=[], rng=rng0()), ValueError,
     "sizes needs at least an input and an output size. Got [8]."),
    (lambda: predefined_layers([8, 4], topology="regular", rng=rng0()), ValueError,
     "predefined_layers with topology='regular' needs fan_out (one out-degree per layer, e.g. "
     "[50, 10])."),
    (lambda: predefined_layers([8, 4], topology="regular", epsilon=2.0, rng=rng0()), ValueError,
     "predefined_layers with topology='regular' needs fan_out (one out-degree per layer, e.g. "
     "[50, 10])."),
    (lambda: predefined_layers([8, 4], topology="random", rng=rng0()), ValueError,
     "predefined_layers with topology='random' needs fan_out (one out-degree per layer, e.g. "
     "[50, 10]) or epsilon."),
    (lambda: predefined_layers([8, 4], topology="regular", fan_out=[2, 2], rng=rng0()),
     ValueError,
     "The 'fan_out' parameter of predefined_layers needs one value per layer (1 for sizes "
     "[8, 4]). Got [2, 2]."),
    (lambda: predefined_layers([8, 4], topology="clash-free", fan_out=[2], z=[2], n_cycles=8,
                               rng=rng0()), ValueError,
     "predefined_layers with topology='clash-free' needs exactly one of z (banks per layer) "
     "and n_cycles (cycles per layer, z balanced)."),
    (lambda: predefined_layers([8, 4], topology="clash-free", fan_out=[2], rng=rng0()),
     ValueError,
     "predefined_layers with topology='clash-free' needs exactly one of z (banks per layer) "
     "and n_cycles (cycles per layer, z balanced)."),
    (lambda: predefined_layers([8, 4], topology="clash-free", fan_out=[2], z=[2, 2],
                               rng=rng0()), ValueError,
     "The 'z' parameter of predefined_layers needs one value per layer (1 for sizes [8, 4]). "
     "Got [2, 2]."),
    (lambda: predefined_layers([8, 4, 6], topology="clash-free", fan_out=[2, 3], z=[2, 5],
                               rng=rng0()), ValueError,
     "layer 1 (4 -> 6): The 'z' parameter of clash_free must be an int in the range [1, 4]. "
     "Got 5 instead."),
    # ClashFreeSchedule
    (lambda: ClashFreeSchedule(np.arange(10), 4), ValueError,
     "The schedule's 10 connections do not fill whole cycles of z=4. Pass the z the layer was "
     "built with."),
    (lambda: ClashFreeSchedule(np.arange(10), 0), ValueError,
     "The schedule's 10 connections do not fill whole cycles of z=0. Pass the z the layer was "
     "built with."),
    (lambda: ClashFreeSchedule(np.arange(10.0), 5), ValueError,
     "order must be a 1-D integer array. Got float64 with shape (10,)."),
    (lambda: ClashFreeSchedule(np.zeros((2, 5), np.int64), 5), ValueError,
     "order must be a 1-D integer array. Got int64 with shape (2, 5)."),
]


@pytest.mark.parametrize("call,exc,msg", PARAM_ERRORS)
def test_parameter_errors_name_the_parameter_and_the_fix(call, exc, msg):
    with pytest.raises(exc, match=full(msg)):
        call()


def test_balance_z_lists_at_most_twelve_feasible_counts():
    ok = feasible_cycles([720720, 1], [1])
    assert len(ok) > 12
    with pytest.raises(ValueError) as exc:
        balance_z([720720, 1], [1], 7 * 720720 + 1)
    msg = str(exc.value)
    assert "Feasible cycle counts for this net: " + ", ".join(map(str, ok[:12])) + " ..." in msg
    assert f"{ok[11]}, {ok[12]}" not in msg
    # exactly 12 feasible counts (the divisors of 60) are all listed, 13 (of 4096) are cut
    with pytest.raises(ValueError, match=r"Feasible cycle counts for this net: 1, 2, 3, 4, 5, "
                                         r"6, 10, 12, 15, 20, 30, 60\.$"):
        balance_z([60, 1], [1], 7)
    with pytest.raises(ValueError, match=r"Feasible cycle counts for this net: 1, 2, 4, 8, 16, "
                                         r"32, 64, 128, 256, 512, 1024, 2048 \.\.\.\.$"):
        balance_z([4096, 1], [1], 3)


# -- values and dtypes reach every generator


@pytest.mark.parametrize("make", [
    lambda **kw: random(60, 40, fan_out=20, **kw),
    lambda **kw: random(60, 40, nnz=1200, **kw),
    lambda **kw: random(60, 40, density=0.5, **kw),
    lambda **kw: regular(60, 40, 20, **kw),
    lambda **kw: clash_free(60, 40, 20, 12, **kw)[0],
    lambda **kw: predefined_layers([60, 40], topology="random", fan_out=[20], **kw)[0][0],
    lambda **kw: predefined_layers([60, 40], topology="regular", fan_out=[20], **kw)[0][0],
    lambda **kw: predefined_layers([60, 40], topology="clash-free", fan_out=[20], z=[12],
                                   **kw)[0][0],
])
@pytest.mark.parametrize("mk", [np.random.default_rng, np.random.RandomState])
def test_generators_pass_on_the_value_law_and_dtypes(make, mk):
    W = make(rng=mk(0))
    assert W.nnz == 1200 and W.data.dtype == np.float32 and W.indices.dtype == np.int32
    assert np.std(W.data) == pytest.approx(0.1, rel=0.1)  # 1200 N(0, 0.1^2) values
    W = make(rng=mk(0), dtype=np.float64, index_dtype=np.int64, normal_std=0.02)
    assert W.data.dtype == np.float64 and W.indices.dtype == W.indptr.dtype == np.int64
    assert np.std(W.data) == pytest.approx(0.02, rel=0.1)
    for init, lim in (("he_uniform", math.sqrt(6 / 60)), ("xavier_uniform", math.sqrt(6 / 100))):
        v = make(rng=mk(0), init=init, dtype=np.float64).data
        assert np.abs(v).max() <= lim and np.abs(v).max() > 0.95 * lim  # U(-lim, lim)


def test_random_counts_of_every_kind():
    assert random(10, 10, density=0.255, rng=rng0()).nnz == 26  # ceil(25.5)
    assert random(10, 10, density=0.251, rng=rng0()).nnz == 26  # ceil(25.1), not round
    assert random(10, 10, density=0.001, rng=rng0()).nnz == 1
    assert random(10, 10, density=0.25, rng=rng0()).nnz == 25
    assert random(10, 10, density=1.0, rng=rng0()).nnz == 100
    assert random(10, 10, density=0.0, rng=rng0()).nnz == 0
    assert random(10, 10, fan_out=0, rng=rng0()).nnz == 0
    assert random(7, 9, fan_out=9, rng=rng0()).nnz == 63
    W = random(7, 9, nnz=63, rng=rng0())
    assert W.nnz == 63 and (W.toarray() != 0).all()


# -- clash_free: the address patterns and the bank order, read back from the schedule


def sweeps(W, s, n_in, fan_out):
    """(fan_out, depth, z) arrays of the input read by lane u in cycle c of each sweep."""
    z = s.z
    return rows_of(W)[s.order].reshape(fan_out, n_in // z, z)


@pytest.mark.parametrize("mk", [np.random.default_rng, np.random.RandomState])
@pytest.mark.parametrize("dither", [False, True])
@pytest.mark.parametrize("kind", [1, 2, 3])
def test_clash_free_address_patterns_and_bank_order(kind, dither, mk):
    n_in, n_out, fo, z = 60, 20, 4, 6
    depth = n_in // z
    starts, perms, orders = set(), set(), set()
    for seed in range(4):
        W, s = clash_free(n_in, n_out, fo, z, kind=kind, dither=dither, rng=mk(seed))
        assert (s.kind, s.dither) == (kind, dither)
        inp = sweeps(W, s, n_in, fo)
        bank, addr = inp % z, inp // z
        for sw in range(fo):
            v = bank[sw, 0]  # the bank lane u reads, the same in every cycle of a sweep
            assert (bank[sw] == v).all() and sorted(v.tolist()) == list(range(z))
            if not dither:
                assert v.tolist() == list(range(z))  # lane u reads bank u
            orders.add(tuple(v.tolist()))
            for u in range(z):
                a = addr[sw, :, u]
                assert sorted(a.tolist()) == list(range(depth))  # every address once a sweep
                if kind != 1:  # a counter from a random start, modulo depth
                    assert a.tolist() == [(a[0] + c) % depth for c in range(depth)]
                    starts.add(int(a[0]))
                else:
                    perms.add(tuple(a.tolist()))
        if kind == 3:  # the first sweep's addresses and bank order in every sweep
            assert (inp == inp[0]).all()
        elif dither:  # a bank order per sweep
            assert len({tuple(bank[sw, 0].tolist()) for sw in range(fo)}) > 1
    if kind == 2:
        assert starts == set(range(depth))  # every start address drawn (96 draws of 10)
    if kind == 1:
        assert len(perms) > 20  # independent permutations, not counters
        assert any(p != tuple((p[0] + c) % depth for c in range(depth)) for p in perms)
    else:
        assert len(starts) > depth // 2  # starts drawn over [0, depth)
    assert len(orders) > 1 if dither else orders == {tuple(range(z))}


def test_clash_free_kind2_redraws_per_sweep_and_kind1_is_uniform():
    n_in, n_out, fo, z = 40, 8, 4, 4
    W, s = clash_free(n_in, n_out, fo, z, kind=2, rng=np.random.default_rng(5))
    inp = sweeps(W, s, n_in, fo)
    assert len({inp[sw].tobytes() for sw in range(fo)}) > 1
    # kind 1: over many draws every address is read by every (lane, cycle) equally often
    counts = np.zeros((n_in // z, z, n_in // z))
    rng = np.random.default_rng(6)
    for _ in range(300):
        W, s = clash_free(n_in, n_out, fo, z, kind=1, rng=rng)
        addr = sweeps(W, s, n_in, fo) // z
        for sw in range(fo):
            np.add.at(counts, (np.arange(n_in // z)[:, None], np.arange(z)[None, :], addr[sw]), 1)
    expect = 300 * fo / (n_in // z)
    assert np.abs(counts - expect).max() < 6 * math.sqrt(expect)


def test_clash_free_default_kind_is_1():
    assert clash_free(8, 4, 2, 2, rng=rng0())[1].kind == 1
    assert predefined_layers([8, 4], topology="clash-free", fan_out=[2], z=[2],
                             rng=rng0())[1][0].kind == 1


def test_clash_free_with_one_sweep_and_full_fan_out():
    """fan_out = 1 (one sweep) and fan_out = n_out (dense) are clash-free and regular."""
    for n_in, n_out, fo, z in ((12, 3, 1, 4), (6, 3, 3, 2), (8, 8, 8, 8), (8, 1, 1, 1)):
        W, s = clash_free(n_in, n_out, fo, z, rng=np.random.default_rng(1))
        A = W.toarray() != 0
        assert A.sum() == W.nnz == n_in * fo
        assert (A.sum(1) == fo).all() and (A.sum(0) == n_in * fo // n_out).all()
        assert s.is_clash_free(W) and s.n_cycles == n_in * fo // z


# -- predefined_layers against the generators, called one after the other on one stream


@pytest.mark.parametrize("mk", [np.random.default_rng, np.random.RandomState])
def test_predefined_layers_equal_the_generators_in_turn(mk):
    sizes = [24, 12, 6]
    kw = dict(init="he_uniform", dtype=np.float64, index_dtype=np.int64, normal_std=0.3)
    cases = [
        (dict(topology="random", fan_out=[3, 2]),
         lambda r: [(random(24, 12, fan_out=3, rng=r, **kw), None),
                    (random(12, 6, fan_out=2, rng=r, **kw), None)]),
        (dict(topology="regular", fan_out=[3, 2]),
         lambda r: [(regular(24, 12, 3, rng=r, **kw), None),
                    (regular(12, 6, 2, rng=r, **kw), None)]),
        (dict(topology="clash-free", fan_out=[3, 2], z=[6, 4], kind=2, dither=True),
         lambda r: [clash_free(24, 12, 3, 6, kind=2, dither=True, rng=r, **kw),
                    clash_free(12, 6, 2, 4, kind=2, dither=True, rng=r, **kw)]),
        (dict(topology="clash-free", fan_out=[3, 2], n_cycles=12, kind=3),
         lambda r: [clash_free(24, 12, 3, 6, kind=3, rng=r, **kw),
                    clash_free(12, 6, 2, 2, kind=3, rng=r, **kw)]),
    ]
    for args, expect in cases:
        Ws, ss = predefined_layers(sizes, rng=mk(4), **args, **kw)
        ref = expect(mk(4))
        assert len(Ws) == len(ss) == 2
        for W, s, (W2, s2) in zip(Ws, ss, ref, strict=True):
            assert W.shape == W2.shape and W.data.dtype == np.float64
            assert W.indices.dtype == np.int64
            np.testing.assert_array_equal(W.indptr, W2.indptr)
            np.testing.assert_array_equal(W.indices, W2.indices)
            np.testing.assert_array_equal(W.data, W2.data)
            if s2 is None:
                assert s is None
            else:
                np.testing.assert_array_equal(s.order, s2.order)
                assert (s.z, s.kind, s.dither) == (s2.z, s2.kind, s2.dither)


@pytest.mark.parametrize("sizes,eps", [([30, 20, 4], 3.0), ([4, 4], 20.0), ([50, 3], 0.01)])
def test_predefined_layers_random_from_epsilon(sizes, eps):
    """ceil(d n m) connections with d = min(1, epsilon (n + m) / (n m)), per layer."""
    Ws, ss = predefined_layers(sizes, topology="random", epsilon=eps, rng=rng0())
    assert ss == [None] * (len(sizes) - 1)
    for W, n, m in zip(Ws, sizes[:-1], sizes[1:]):
        d = min(1.0, eps * (n + m) / (n * m))
        assert W.shape == (n, m) and W.nnz == min(n * m, math.ceil(d * n * m))


def test_predefined_layers_accepts_any_sequences():
    Ws, ss = predefined_layers((8, 4), topology="clash-free", fan_out=(2,), z=np.array([4]),
                               rng=rng0())
    assert Ws[0].nnz == 16 and ss[0].z == 4 and ss[0].kind == 1 and not ss[0].dither
    Ws, ss = predefined_layers(np.array([8, 4]), topology="regular", fan_out=iter([2]),
                               rng=rng0())
    assert Ws[0].nnz == 16 and ss == [None]


# -- the schedule: attributes, table slices, checks in chunks, exports, state


def built():
    return clash_free(24, 10, 5, 6, kind=2, dither=True, rng=np.random.default_rng(3))


def test_schedule_attributes_copy_and_repr():
    W, s = built()
    assert s.n_cycles == 20 and s.order.shape == (120,)
    assert repr(s) == "ClashFreeSchedule(z=6, n_cycles=20, kind=2, dither=True)"
    c = s.copy()
    assert (c.z, c.kind, c.dither) == (6, 2, True) and c.order is not s.order
    np.testing.assert_array_equal(c.order, s.order)
    c.order[[0, 1]] = c.order[[1, 0]]
    assert s.order[0] != c.order[0]  # independent
    t = ClashFreeSchedule(np.arange(6, dtype=np.uint32), 3.0, kind=2.0, dither=np.bool_(True))
    assert type(t.z) is int and type(t.kind) is int and type(t.dither) is bool
    assert (t.z, t.kind, t.dither, t.n_cycles) == (3, 2, True, 2)


def test_schedule_table_slices_match_a_brute_force_table():
    W, s = built()
    rows = rows_of(W)
    full_t = s.table(W)
    for lo, hi in ((0, None), (7, 50), (114, 120), (30, 30)):
        t = s.table(W, lo, hi)
        e = np.arange(lo, 120 if hi is None else hi)
        assert set(t) == {"cycle", "lane", "bank", "address", "input", "output"}
        np.testing.assert_array_equal(t["cycle"], e // 6)
        np.testing.assert_array_equal(t["lane"], e % 6)
        np.testing.assert_array_equal(t["input"], rows[s.order[e]])
        np.testing.assert_array_equal(t["bank"], rows[s.order[e]] % 6)
        np.testing.assert_array_equal(t["address"], rows[s.order[e]] // 6)
        np.testing.assert_array_equal(t["output"], W.indices[s.order[e]])
        assert all(t[k].dtype == np.int64 for k in t)
        for k in t:
            np.testing.assert_array_equal(t[k], full_t[k][lo:hi])
    msg = "This schedule has 120 connections but W has 119. Pass the W the schedule was built " \
          "(or rewired) with."
    W2 = W.copy()
    W2.data[0] = 0
    W2.eliminate_zeros()
    for method in (s.table, s.clashes, s.is_clash_free, s.summary):
        with pytest.raises(ValueError, match=full(msg)):
            method(W2)


def brute_clashes(W, s):
    rows = rows_of(W)
    return [c for c in range(s.n_cycles)
            if len({int(rows[s.order[c * s.z + u]]) % s.z for u in range(s.z)}) < s.z]


@pytest.mark.parametrize("rows_per_chunk", [1 << 16, 1, 12, 13])
def test_schedule_clashes_in_chunks(monkeypatch, rows_per_chunk):
    """Clashes found in any chunking, with their global cycle numbers (brute-force oracle)."""
    monkeypatch.setattr(schedule_mod, "_ROWS", rows_per_chunk)
    W, s = built()
    assert s.clashes(W).tolist() == [] and s.is_clash_free(W)
    bad = s.copy()
    o = bad.order
    for a, b in ((0, 7), (60, 67), (113, 118)):  # cycles 0/1, 10/11, 18/19
        o[[a, b]] = o[[b, a]]
    expect = brute_clashes(W, bad)
    assert expect and expect == sorted(set(expect)) and expect[-1] >= 18
    got = bad.clashes(W)
    assert got.dtype == np.int64 and got.tolist() == expect
    sm = bad.summary(W)
    assert sm == {"z": 6, "depth": 4, "n_cycles": 20, "kind": 2, "dither": True,
                  "clash_free": False, "n_clashing_cycles": len(expect)}


def test_schedule_rejects_orders_that_are_not_permutations():
    W, s = built()
    msg = "The schedule does not list every connection of W exactly once."
    dup = s.order.copy()
    dup[dup == 119] = 0  # 0 twice, 119 never
    with pytest.raises(ValueError, match=full(msg)):
        ClashFreeSchedule(dup, 6).clashes(W)
    big = s.order.copy()
    big[big == 119] = 120  # an index past the end
    with pytest.raises(ValueError, match=full(msg)):
        ClashFreeSchedule(big, 6).clashes(W)


def test_schedule_depth_and_empty_layer():
    """depth = ceil(n_in / z); a layer without connections has no clash."""
    W = sp.csr_array(np.eye(10, 4, dtype=np.float32))  # 4 connections, rows 0..3
    s = ClashFreeSchedule(np.array([0, 1, 2, 3]), 4)
    assert s.summary(W) == {"z": 4, "depth": 3, "n_cycles": 1, "kind": 0, "dither": False,
                            "clash_free": True, "n_clashing_cycles": 0}
    E = sp.csr_array((6, 3), dtype=np.float32)
    e = ClashFreeSchedule(np.zeros(0, np.int64), 3)
    assert e.clashes(E).dtype == np.int64 and e.clashes(E).tolist() == []
    assert e.is_clash_free(E) and e.n_cycles == 0
    assert e.summary(E)["depth"] == 2


@pytest.mark.parametrize("rows_per_chunk", [1 << 16, 7])
def test_schedule_exports_in_chunks(tmp_path, monkeypatch, rows_per_chunk):
    monkeypatch.setattr(schedule_mod, "_ROWS", rows_per_chunk)
    W, s = built()
    rows = rows_of(W)
    p = s.to_csv(tmp_path / "s.csv", W)
    assert p == str(tmp_path / "s.csv") and not (tmp_path / "s.csv.tmp").exists()
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "cycle,lane,bank,address,input,output" and len(lines) == 121
    for e, line in enumerate(lines[1:]):
        r = int(rows[s.order[e]])
        expect = [e // 6, e % 6, r % 6, r // 6, r, int(W.indices[s.order[e]])]
        assert line == ",".join(map(str, expect))
    p = s.to_json(str(tmp_path / "s.json"), W)
    assert p == str(tmp_path / "s.json") and not (tmp_path / "s.json.tmp").exists()
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {k: doc[k] for k in ("format", "version", "n_in", "n_out", "nnz")} == {
        "format": "sparsemlp.clash_free_schedule", "version": 1, "n_in": 24, "n_out": 10,
        "nnz": 120}
    assert {k: doc[k] for k in s.summary(W)} == s.summary(W)
    assert list(doc["columns"]) == ["cycle", "lane", "bank", "address", "input", "output"]
    assert doc["columns"]["input"] == rows[s.order].tolist()


def test_schedule_state_round_trip():
    W, s = built()
    d = s.state_dict("layers.0.schedule.")
    assert set(d) == {"layers.0.schedule." + k for k in ("order", "z", "kind", "dither")}
    assert d["layers.0.schedule.order"] is s.order  # by reference
    assert d["layers.0.schedule.z"].shape == () and int(d["layers.0.schedule.z"]) == 6
    assert int(d["layers.0.schedule.kind"]) == 2 and bool(d["layers.0.schedule.dither"])
    s2 = ClashFreeSchedule.from_state_dict(d, "layers.0.schedule.")
    assert (s2.z, s2.kind, s2.dither) == (6, 2, True) and s2.is_clash_free(W)
    assert s2.order is not s.order
    s.order[[0, 1]] = s.order[[1, 0]]
    assert s2.order[0] == s.order[1]  # copied on load
    plain = ClashFreeSchedule.from_state_dict(ClashFreeSchedule(np.arange(4), 2).state_dict())
    assert (plain.z, plain.kind, plain.dither) == (2, 0, False)
    assert ClashFreeSchedule.from_state_dict({"order": np.arange(4)}, "x.") is None
