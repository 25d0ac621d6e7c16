"""Contracts of topology.laws a user relies on: parameter errors, warnings, stream order, describe.

Each test checks documented behaviour against an independent oracle (the documented message
of a rejected parameter, the documented draw order replayed on a second generator, a plain
Python last-write-wins loop, counts from the CSR arrays); they kill the mutants of
``tools/mutation.py topology/laws`` that the older tests let through.
"""

import math
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sparsemlp.topology.csr as csr
from sparsemlp.topology import describe, erdos_renyi, init_values


def full(msg):
    """A regex matching exactly ``msg`` (pytest.raises(match=...) searches)."""
    return "^" + re.escape(msg) + "$"


# -- parameter checks: the message names the parameter, the function, the type and the range


def _iv(**kw):
    args = dict(init="normal", n_in=3, n_out=4, size=5, rng=np.random.default_rng(0))
    args.update(kw)
    return init_values(args.pop("init"), args.pop("n_in"), args.pop("n_out"), args.pop("size"),
                       args.pop("rng"), **args)


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(n_in=0), ValueError,
     "The 'n_in' parameter of init_values must be an int in the range [1, inf). Got 0 instead."),
    (dict(n_in=2.5), TypeError,
     "The 'n_in' parameter of init_values must be an int in the range [1, inf). Got 2.5 instead."),
    (dict(n_out=0), ValueError,
     "The 'n_out' parameter of init_values must be an int in the range [1, inf). Got 0 instead."),
    (dict(n_out=2.5), TypeError,
     "The 'n_out' parameter of init_values must be an int in the range [1, inf). Got 2.5 "
     "instead."),
    (dict(normal_std=0.0), ValueError,
     "The 'normal_std' parameter of init_values must be a float in the range (0, inf). Got 0.0 "
     "instead."),
    (dict(normal_std=-0.1), ValueError,
     "The 'normal_std' parameter of init_values must be a float in the range (0, inf). Got -0.1 "
     "instead."),
    (dict(dtype=np.int32), ValueError,
     "The 'dtype' parameter of init_values must be float32 or float64. Got int32 instead."),
])
def test_init_values_rejects_bad_parameters_by_name(kw, exc, msg):
    with pytest.raises(exc, match=full(msg)):
        _iv(**kw)


@pytest.mark.parametrize("kw,exc,msg", [
    (dict(saturate="yes"), TypeError,
     "The 'saturate' parameter of erdos_renyi must be a bool. Got 'yes' instead."),
    (dict(normal_std=0.0), ValueError,
     "The 'normal_std' parameter of erdos_renyi must be a float in the range (0, inf). Got 0.0 "
     "instead."),
    (dict(normal_std=-1.0), ValueError,
     "The 'normal_std' parameter of erdos_renyi must be a float in the range (0, inf). Got -1.0 "
     "instead."),
    (dict(nnz=3), ValueError,
     "erdos_renyi needs exactly one of 'epsilon', 'density' or 'nnz'. Got epsilon, nnz. Pass "
     "e.g. epsilon=20 (SET's default)."),
    (dict(epsilon=None, nnz=3, law="draws"), ValueError,
     "law='draws' counts draws from 'epsilon'; it cannot be combined with 'nnz'. Pass "
     "epsilon=..., or use the default law='bernoulli'."),
])
def test_erdos_renyi_rejects_bad_parameters_by_name(kw, exc, msg):
    args = dict(epsilon=2.0, rng=np.random.default_rng(0))
    args.update(kw)
    with pytest.raises(exc, match=full(msg)):
        erdos_renyi(30, 20, **args)


@pytest.mark.parametrize("kw", [dict(epsilon=2.0), dict(epsilon=2.0, law="draws"),
                                dict(density=0.2), dict(nnz=10)])
@pytest.mark.parametrize("mk", [np.random.default_rng, np.random.RandomState])
def test_index_dtype_errors_name_erdos_renyi(kw, mk):
    """Every construction path names the public function in the index-dtype error."""
    msg = "The 'index_dtype' parameter of erdos_renyi must be int32 or int64. Got int16 instead."
    with pytest.raises(ValueError, match=full(msg)):
        erdos_renyi(30, 20, rng=mk(0), index_dtype=np.int16, **kw)


def test_too_many_slots_for_int64_keys():
    """2**62 slots are refused before any draw (a 1 x 2**62 layer), 2**62 - 1 still work."""
    msg = ("The 1x4611686018427387904 layer has too many slots for int64 linear indices. Use "
           "smaller layers.")
    for kw in (dict(nnz=0), dict(density=0.0)):
        with pytest.raises(ValueError, match=full(msg)):
            erdos_renyi(1, 2**62, rng=np.random.default_rng(0), **kw)
    W = erdos_renyi(1, 2**62 - 1, nnz=1, rng=np.random.default_rng(0))
    assert W.shape == (1, 2**62 - 1) and W.nnz == 1 and 0 <= W.indices[0] < 2**62 - 1


# -- density boundaries and warnings (their text and that they point at the caller's line)


def assert_points_at_caller(w):
    """The warning names the line that called erdos_renyi (stacklevel), not the library; under
    mutation testing mutmut's trampoline is that caller."""
    assert w.filename == __file__ or w.filename.endswith("mutmut/mutation/trampoline.py"), \
        w.filename


def test_epsilon_density_one_is_allowed_with_a_warning():
    """p = epsilon (n + m) / (n m) = 1 exactly is the largest allowed density: dense, warned."""
    with pytest.warns(UserWarning) as rec:
        W = erdos_renyi(2, 2, epsilon=1.0, rng=np.random.default_rng(0))
    assert W.nnz == 4
    assert [str(w.message) for w in rec] == [
        "epsilon=1 gives density 1 for the 2x2 layer; it is effectively dense. Lower epsilon, "
        "or accept a dense layer."]
    assert_points_at_caller(rec[0])


def test_epsilon_density_above_one_is_an_error_or_saturates():
    msg = ("epsilon=1.5 gives density 1.5 for the 2x2 layer (law='bernoulli' needs at most 1). "
           "Lower epsilon to at most 1, pass density=1.0, or law='draws' (draws with "
           "replacement, the original SET law); saturate=True clips to fully dense.")
    with pytest.raises(ValueError, match=full(msg)):
        erdos_renyi(2, 2, epsilon=1.5, rng=np.random.default_rng(0))
    with pytest.warns(UserWarning) as rec:
        W = erdos_renyi(2, 2, epsilon=1.5, saturate=True, rng=np.random.default_rng(0))
    assert W.nnz == 4
    assert [str(w.message) for w in rec] == [
        "epsilon=1.5 gives density 1.5 for the 2x2 layer; it is fully dense"]
    assert_points_at_caller(rec[0])


def test_bernoulli_dense_warning_starts_at_exactly_0_9():
    assert 4.5 * 20 / 100 == 0.9  # p of a 10x10 layer at epsilon 4.5
    with pytest.warns(UserWarning) as rec:
        erdos_renyi(10, 10, epsilon=4.5, rng=np.random.default_rng(0))
    assert [str(w.message) for w in rec] == [
        "epsilon=4.5 gives density 0.9 for the 10x10 layer; it is effectively dense. Lower "
        "epsilon, or accept a dense layer."]
    assert_points_at_caller(rec[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        erdos_renyi(10, 10, epsilon=4.4, rng=np.random.default_rng(0))  # p = 0.88


@pytest.mark.parametrize("mk", [np.random.default_rng, np.random.RandomState])
def test_draws_dense_warning_iff_drawn_density_at_least_0_9(mk):
    """Law A warns from the drawn density: for every seed, warned iff nnz / slots >= 0.9."""
    boundary = 0
    for s in range(60):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            W = erdos_renyi(2, 5, epsilon=2.0, law="draws", rng=mk(s))  # 14 draws, 10 slots
        dens = W.nnz / 10
        boundary += W.nnz == 9
        if dens >= 0.9:
            assert [str(w.message) for w in rec] == [
                f"epsilon=2 gives density {dens:.2g} for the 2x5 layer; it is effectively "
                "dense. Lower epsilon, or accept a dense layer."]
            assert_points_at_caller(rec[0])
        else:
            assert rec == []
    assert boundary  # some seed hits the boundary 9 / 10 exactly


# -- values: dtype and normal_std reach every construction path


@pytest.mark.parametrize("kw", [dict(epsilon=20), dict(epsilon=20, law="draws"),
                                dict(density=0.3), dict(nnz=20000)])
@pytest.mark.parametrize("mk", [np.random.default_rng, np.random.RandomState])
def test_dtype_and_normal_std_on_every_path(kw, mk):
    W = erdos_renyi(300, 200, rng=mk(1), **kw)
    assert W.data.dtype == np.float32  # the default
    W = erdos_renyi(300, 200, rng=mk(1), dtype=np.float64, normal_std=0.05, **kw)
    assert W.data.dtype == np.float64 and W.nnz > 5000
    # std of N(0, 0.05^2) from > 5000 values: within 5 % (0.1 would be far out)
    assert np.std(W.data) == pytest.approx(0.05, rel=0.05)


def test_draws_generator_dense_regime_stream_order(monkeypatch):
    """Law A with a Generator, slot-array regime (slots <= 2 draws): the T positions drawn first
    (``integers(0, n m)``, in chunks of csr.CHUNK), then one value per occupied slot,
    row-major; replayed on a second generator drawing all positions at once."""
    n = m = 20
    t = 201  # epsilon 5.025: 400 slots <= 2 * 201 draws; about 60 % of the slots stay empty
    for chunk in (csr.CHUNK, 64):  # one chunk; four chunks (64, 64, 64, 9)
        monkeypatch.setattr(csr, "CHUNK", chunk)
        W = erdos_renyi(n, m, epsilon=5.025, law="draws", rng=np.random.default_rng(3),
                        dtype=np.float64, normal_std=0.05)
        r2 = np.random.default_rng(3)
        keys = np.unique(r2.integers(0, n * m, size=t, dtype=np.int64))
        vals = r2.standard_normal(keys.size) / 20.0
        assert 0.3 * n * m < keys.size < 0.5 * n * m  # 1 - e^-0.5 = 39 % occupied
        coo = W.tocoo()
        np.testing.assert_array_equal(coo.row * m + coo.col, keys)
        np.testing.assert_array_equal(W.data, vals)


def test_draws_legacy_xavier_matches_the_scalar_loop():
    """Law A with a RandomState and the xavier law: per draw uniform(-lim, lim), randint row,
    randint column, the last write of a slot wins (a plain-Python loop)."""
    n, m, eps = 6, 4, 3  # 30 draws into 24 slots: collisions
    lim = math.sqrt(6 / (n + m))
    rs = np.random.RandomState(7)
    cells = {}
    for _ in range(eps * (n + m)):
        v = rs.uniform(-lim, lim)
        i = rs.randint(0, n)
        cells[(i, rs.randint(0, m))] = v
    W = erdos_renyi(n, m, epsilon=eps, law="draws", init="xavier_uniform",
                    rng=np.random.RandomState(7), dtype=np.float64)
    keys = sorted(cells)
    coo = W.tocoo()
    assert list(zip(coo.row.tolist(), coo.col.tolist())) == keys
    np.testing.assert_array_equal(W.data, [cells[k] for k in keys])


def test_bernoulli_beyond_2_53_slots():
    """Above 2**53 slots the gap walk is not exact: a Binomial count, then a uniform subset."""
    slots = 2**53 + 1
    p = 1e-13
    counts = []
    for s in range(4):
        W = erdos_renyi(1, slots, density=p, rng=np.random.default_rng(s))
        assert W.indices.dtype == np.int64 and np.all(np.diff(W.indices) > 0)
        assert W.indices[0] >= 0 and W.indices[-1] < slots
        counts.append(W.nnz)
    mean, sd = slots * p, math.sqrt(slots * p)
    assert all(abs(c - mean) < 5 * sd for c in counts)
    assert erdos_renyi(1, slots, density=0.0, rng=np.random.default_rng(0)).nnz == 0


# -- describe


def test_describe_empty_column_and_types():
    """An output without inputs counts in in_degree's n_zero (the last column here)."""
    dense = np.array([[1, 0, 2, 0], [0, 3, 0, 0], [4, 5, 0, 0]], dtype=np.float32)
    W = sp.csr_array(dense)
    d = describe(W)
    assert d["in_degree"] == {"min": 0, "mean": 5 / 4, "max": 2, "n_zero": 1}
    assert d["out_degree"] == {"min": 1, "mean": 5 / 3, "max": 2, "n_zero": 0}
    assert d["dtype"] == "float32" and d["index_dtype"] == "int32"
    d = describe(sp.csr_array(dense[:1].astype(np.float64)))  # a single input
    assert d["out_degree"] == {"min": 2, "mean": 2.0, "max": 2, "n_zero": 0}
    assert d["dtype"] == "float64"


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 3)])
def test_describe_layers_without_connections(shape):
    W = sp.csr_array(shape, dtype=np.float32)
    d = describe(W)
    n_in, n_out = shape
    zero = {"min": 0, "mean": 0.0, "max": 0}
    assert d["density"] == 0.0 and d["nnz"] == 0 and math.isnan(d["bytes_per_connection"])
    assert d["in_degree"] == dict(zero, n_zero=n_out)
    assert d["out_degree"] == dict(zero, n_zero=n_in)
