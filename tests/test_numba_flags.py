"""Numba backend rules: every jit uses cache=True and the shared _flags.FASTMATH; variants agree."""

import ast
import pathlib

import numpy as np
import pytest
from conftest import random_csr, tol

import sparsemlp._kernels as _kernels_pkg

NUMBA_SRC = pathlib.Path(_kernels_pkg.__file__).with_name("_numba.py")
JIT_NAMES = {"njit", "jit", "generated_jit", "vectorize", "guvectorize", "cfunc", "stencil"}


def _callee_name(node):
    """'njit' for njit, numba.njit, nb.njit, ... ; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_flags_fastmath(node):
    """True for ``_flags.FASTMATH`` or ``set(_flags.FASTMATH)`` (numba wants a set)."""
    def is_attr(n):
        return (isinstance(n, ast.Attribute) and n.attr == "FASTMATH"
                and isinstance(n.value, ast.Name) and n.value.id == "_flags")
    if is_attr(node):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "set" and len(node.args) == 1 and not node.keywords
            and is_attr(node.args[0]))


def _jit_calls(tree):
    """Every use of a jit decorator: ``@njit(...)``, bare ``@njit``, and ``njit(...)(f)``."""
    found = []
    decorator_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                decorator_nodes.add(id(dec))
                name = _callee_name(dec.func if isinstance(dec, ast.Call) else dec)
                if name in JIT_NAMES:
                    found.append((node.name, dec))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and id(node) not in decorator_nodes
                and _callee_name(node.func) in JIT_NAMES):
            found.append((f"<call at line {node.lineno}>", node))
    return found


def check_jit_source(src):
    """List of rule violations in the source text of a Numba kernel module."""
    tree = ast.parse(src)
    problems = []
    for where, node in _jit_calls(tree):
        name = _callee_name(node.func if isinstance(node, ast.Call) else node)
        if name != "njit":
            problems.append(f"{where}: uses {name!r}; use @njit(cache=True, nogil=True, ...)")
            continue
        if not isinstance(node, ast.Call):
            problems.append(f"{where}: bare @njit without cache=True and fastmath")
            continue
        if node.args:
            problems.append(f"{where}: positional njit arguments (explicit signatures)")
        kw = {k.arg: k.value for k in node.keywords}
        if None in kw:
            problems.append(f"{where}: **kwargs in njit hides the options")
        cache = kw.get("cache")
        if not (isinstance(cache, ast.Constant) and cache.value is True):
            problems.append(f"{where}: lacks cache=True")
        nogil = kw.get("nogil")
        if not (isinstance(nogil, ast.Constant) and nogil.value is True):
            problems.append(f"{where}: lacks nogil=True")
        if "fastmath" not in kw:
            problems.append(f"{where}: lacks fastmath=_flags.FASTMATH")
        elif not _is_flags_fastmath(kw["fastmath"]):
            problems.append(f"{where}: fastmath={ast.unparse(kw['fastmath'])}, "
                            "not _flags.FASTMATH")
    return problems


def test_numba_source_uses_shared_flags():
    src = NUMBA_SRC.read_text()
    assert _jit_calls(ast.parse(src)), "no njit decorators found in _numba.py"
    assert check_jit_source(src) == []


@pytest.mark.parametrize("bad", [
    "@njit(cache=True, nogil=True, fastmath=True)\ndef f(): pass",
    "@njit(cache=True, nogil=True, fastmath={'reassoc'})\ndef f(): pass",
    "@njit(cache=True, nogil=True)\ndef f(): pass",
    "@njit(nogil=True, fastmath=_flags.FASTMATH)\ndef f(): pass",
    "@njit(cache=False, nogil=True, fastmath=_flags.FASTMATH)\ndef f(): pass",
    "@numba.njit(cache=True, nogil=True, fastmath=False)\ndef f(): pass",
    "@njit\ndef f(): pass",
    "@jit(nopython=True, cache=True, fastmath=_flags.FASTMATH)\ndef f(): pass",
    "g = njit(cache=True, nogil=True, fastmath=FM)(f)",
    "@njit(cache=True, nogil=True, fastmath=set(FLAGS))\ndef f(): pass",
])
def test_checker_catches(bad):
    assert check_jit_source(bad)


def test_checker_accepts():
    good = ("@njit(cache=True, nogil=True, fastmath=_flags.FASTMATH)\ndef f(): pass\n"
            "@njit(cache=True, nogil=True, fastmath=set(_flags.FASTMATH), parallel=True)\n"
            "def g(): pass\n")
    assert check_jit_source(good) == []


# ---- behaviour specific to the Numba backend ------------------------------------------------

@pytest.fixture(scope="module")
def nb():
    pytest.importorskip("numba")
    from sparsemlp._kernels import _numba
    return _numba


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64], ids=["i32", "i64"])
def test_serial_and_parallel_variants_same_bits(nb, dtype, index_dtype):
    """The PAR_MIN_FLOPS switch must not change results: both variants give the same bits."""
    rng = np.random.default_rng(3)
    n_in, n_out, b = 90, 70, 19
    indptr, indices, data = random_csr(n_in, n_out, 0.1, rng, dtype, index_dtype, (4,), (5,))
    xt = rng.standard_normal((n_in, b)).astype(dtype)
    dyt = rng.standard_normal((n_out, b)).astype(dtype)
    nnz = indices.shape[0]
    indptr_t = np.empty(n_out + 1, index_dtype)
    indices_t = np.empty(nnz, index_dtype)
    perm = np.empty(nnz, index_dtype)
    nb.csr_transpose(indptr, indices, n_out, indptr_t, indices_t, perm)

    def run(variant):
        fw = np.full((n_out, b), np.nan, dtype)
        bw = np.full((n_in, b), np.nan, dtype)
        dw = np.full(nnz, np.nan, dtype)
        dxt = np.full((n_in, b), np.nan, dtype)
        dw2 = np.full(nnz, np.nan, dtype)
        getattr(nb, f"_spmm_{variant}")(indptr_t, indices_t, perm, data, xt, fw)
        getattr(nb, f"_spmm_t_{variant}")(indptr, indices, data, dyt, bw)
        getattr(nb, f"_sddmm_{variant}")(indptr, indices, xt, dyt, dw)
        getattr(nb, f"_fused_{variant}")(indptr, indices, data, xt, dyt, dxt, dw2)
        return fw, bw, dw, dxt, dw2

    ser, par = run("serial"), run("parallel")
    for a, c in zip(ser, par, strict=True):
        np.testing.assert_array_equal(a, c)
    # fusion leaves dX's bits alone; dW differs from sddmm by rounding only
    np.testing.assert_array_equal(ser[3], ser[1])
    np.testing.assert_allclose(ser[4], ser[2], rtol=0, atol=tol(dtype, float(b)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_unrolled_gather_sums_left_to_right(nb, dtype):
    """The 4-way unrolled gathers give the bits of a plain ascending-k loop under the same flags."""
    import numba

    from sparsemlp._kernels import _flags

    @numba.njit(fastmath=set(_flags.FASTMATH))
    def plain(indptr, indices, data, dyt, out):
        for i in range(out.shape[0]):
            for b in range(out.shape[1]):
                out[i, b] = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                for b in range(out.shape[1]):
                    out[i, b] += data[k] * dyt[indices[k], b]

    rng = np.random.default_rng(5)
    n_in, n_out, b = 40, 50, 37
    indptr, indices, data = random_csr(n_in, n_out, 0.3, rng, dtype, np.int32, (3,))
    dyt = rng.standard_normal((n_out, b)).astype(dtype)
    out = np.full((n_in, b), np.nan, dtype)
    exp = np.full((n_in, b), np.nan, dtype)
    nb._spmm_t_serial(indptr, indices, data, dyt, out)
    plain(indptr, indices, data, dyt, exp)
    np.testing.assert_array_equal(out, exp)
    dxt = np.full((n_in, b), np.nan, dtype)
    dw = np.full(indices.shape[0], np.nan, dtype)
    nb._fused_serial(indptr, indices, data, np.ones((n_in, b), dtype), dyt, dxt, dw)
    np.testing.assert_array_equal(dxt, exp)


def test_parallel_threshold_dispatch(nb, monkeypatch):
    """The wrapper picks the serial variant below PAR_MIN_FLOPS and the parallel one above."""
    from sparsemlp._kernels import _flags

    calls = []
    monkeypatch.setattr(nb, "_sddmm_serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(nb, "_sddmm_parallel", lambda *a: calls.append("parallel"))
    indptr = np.array([0, 2], np.int32)
    indices = np.array([0, 1], np.int32)
    out = np.empty(2)
    monkeypatch.setattr(_flags, "PAR_MIN_FLOPS", 2 * 2 * 4 + 1)
    nb.sddmm(indptr, indices, np.ones((1, 4)), np.ones((2, 4)), out)
    monkeypatch.setattr(_flags, "PAR_MIN_FLOPS", 2 * 2 * 4)
    nb.sddmm(indptr, indices, np.ones((1, 4)), np.ones((2, 4)), out)
    assert calls == ["serial", "parallel"]


def test_thread_limit_reaches_numba(nb):
    import numba

    from sparsemlp._parallel import thread_limit

    before = numba.get_num_threads()
    with thread_limit(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_updates_same_bits_as_reference(nb, dtype):
    """sgd_update/adam_update keep the reference's evaluation order: identical bits."""
    from sparsemlp._kernels import _reference as ref

    rng = np.random.default_rng(11)
    n = 777
    w0, v0, g = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    s0 = rng.random(n).astype(dtype)
    for coupled in (0, 1):
        for nesterov in (0, 1):
            got = (w0.copy(), v0.copy())
            exp = (w0.copy(), v0.copy())
            args = (g, 0.013, 0.9, 3e-4, 3.0, coupled, nesterov)
            nb.sgd_update(*got, *args)
            ref.sgd_update(*exp, *args)
            for a, c in zip(got, exp, strict=True):
                np.testing.assert_array_equal(a, c)
    for decoupled in (0, 1):
        got = (w0.copy(), v0.copy() * 0.1, s0.copy())
        exp = (w0.copy(), v0.copy() * 0.1, s0.copy())
        args = (g, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 7.0, 1 - 0.9**3, 1 - 0.999**3, decoupled)
        nb.adam_update(*got, *args)
        ref.adam_update(*exp, *args)
        for a, c in zip(got, exp, strict=True):
            np.testing.assert_array_equal(a, c)
