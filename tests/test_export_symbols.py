"""Every layer kind, CSR layout and mode of the C export links against libm alone (gcc, clang).

Compilers turn a loop storing zeros into a ``memset`` call (and a copy loop into ``memcpy``)
when a layer is wide enough, which breaks the export's promise of needing nothing but libm.
Layers are 200 wide here: clang did it from 48 float64 or 96 float32 outputs on (> 256 bytes).
"""

import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from test_export_build import LIBM, need

from sparsemlp import SparseLinear, SparseMLP, approx
from sparsemlp.export import InputScaling, to_c
from sparsemlp.export._build import compile_c
from sparsemlp.export._emit import _LAYER_EMITTERS

WIDTH = 200
# structured kinds with their options, one hidden layer each (square: Toeplitz-like needs it)
KINDS = {"low_rank": {}, "sparse_product": {"n_iter": 3}, "sss": {"n_states": 6},
         "hodlr": {"levels": 2}, "hedlr": {"levels": 1}, "hmatrix": {"min_block": 16},
         "toeplitz_like": {"refine_iter": 3}}


def _zoo(biases):
    """Every kind in one network: CSR, the 7 structured kinds, an empty CSR layer, CSR; all
    biases zero (a bias copy may become memset) or random (it may become memcpy)."""
    rng = np.random.default_rng(0)
    sizes = [WIDTH] * (len(KINDS) + 3) + [10]
    zoo = SparseMLP.erdos_renyi(sizes, epsilon=10, rng=rng, activation="relu",
                                output_activation="softmax")
    for i, (kind, options) in enumerate(KINDS.items(), start=1):
        approx.approximate_layer(zoo, i, kind, share=0.3, **options)
    zoo.layers[len(KINDS) + 1] = SparseLinear(sp.csr_array((WIDTH, WIDTH), dtype=np.float32),
                                              np.zeros(WIDTH, np.float32))
    for la in zoo.layers:
        la.b[:] = 0.0 if biases == "zero" else rng.standard_normal(la.n_out)
    assert zoo.layers[len(KINDS) + 1].nnz == 0
    return zoo


@pytest.fixture(scope="module")
def models():
    """(zoo with zero biases, zoo with random biases, a CSR network for the unrolled mode)."""
    # the unrolled mode has no loops in its layers: a small one (its build is slow)
    plain = SparseMLP.erdos_renyi([WIDTH, 24, 10], epsilon=3, rng=np.random.default_rng(1),
                                  activation="tanh", output_activation="softmax")
    return _zoo("zero"), _zoo("random"), plain


def test_every_emitter_is_covered(models):
    zoo = models[0]
    assert {cls for cls, _ in _LAYER_EMITTERS} <= {type(la) for la in zoo.layers}
    assert {mode for _, mode in _LAYER_EMITTERS} == {"csr", "csr-scatter", "unrolled"}


@pytest.mark.parametrize("opt", ["-O2", "-O3"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_libm_is_the_only_dependency(tmp_path, models, cc, opt, dtype):
    need(cc, "nm")
    zero, random, plain = models
    scaling = InputScaling(shift=np.zeros(WIDTH), scale=np.full(WIDTH, 2.0), clip=(-3.0, 3.0))
    # every structured kind with zero and random biases, each CSR layout with one of them
    builds = {"zoo-gather-random-b": (random, dict(layout="gather", input_scaling=scaling)),
              "zoo-scatter-zero-b": (zero, dict(layout="scatter", input_scaling=scaling)),
              "unrolled": (plain, dict(mode="unrolled"))}
    found = {}
    for name, (model, kw) in builds.items():
        ex = to_c(model, tmp_path / name, dtype=dtype, **kw)
        obj = compile_c([ex.source], str(tmp_path / f"{name}.o"), cc=cc, opt=opt, kind="obj")
        syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        undefined = {ln.split()[-1] for ln in syms.splitlines() if ln.split()[-2:-1] == ["U"]}
        if undefined - LIBM:
            found[name] = sorted(undefined - LIBM)
    assert not found, f"{cc} {opt} {dtype}: undefined symbols outside libm: {found}"
