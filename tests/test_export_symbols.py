"""Every layer kind, CSR layout and mode of the C export links against libm alone (gcc, clang).

Compilers turn a loop storing zeros into a ``memset`` call (and a copy loop into ``memcpy``)
when a layer is wide enough, which breaks the export's promise of needing nothing but libm.
Layers are 200 wide here: clang did it from 48 float64 or 96 float32 outputs on (> 256 bytes).
"""

import subprocess

import numpy as np
import pytest
from test_export_build import LIBM, need

from sparsemlp import SparseMLP, approx
from sparsemlp.export import InputScaling, to_c
from sparsemlp.export._build import compile_c
from sparsemlp.export._emit import _LAYER_EMITTERS

WIDTH = 200
# structured kinds with their options, one hidden layer each (square: Toeplitz-like needs it)
KINDS = {"low_rank": {}, "sparse_product": {"n_iter": 3}, "sss": {"n_states": 6},
         "hodlr": {"levels": 2}, "hedlr": {"levels": 1}, "hmatrix": {"min_block": 16},
         "toeplitz_like": {"refine_iter": 3}}


@pytest.fixture(scope="module")
def models():
    """(every kind in one network: 7 structured layers between CSR layers; a CSR network)."""
    rng = np.random.default_rng(0)
    sizes = [WIDTH] * (len(KINDS) + 2) + [10]
    zoo = SparseMLP.erdos_renyi(sizes, epsilon=10, rng=rng, activation="relu",
                                output_activation="softmax")
    for i, (kind, options) in enumerate(KINDS.items(), start=1):
        approx.approximate_layer(zoo, i, kind, share=0.3, **options)
    # the unrolled mode has no loops in its layers; a small one (its build is slow)
    plain = SparseMLP.erdos_renyi([WIDTH, 24, 10], epsilon=3, rng=rng, activation="tanh",
                                  output_activation="softmax")
    return zoo, plain


def test_every_emitter_is_covered(models):
    zoo, _ = models
    assert {cls for cls, _ in _LAYER_EMITTERS} <= {type(la) for la in zoo.layers}
    assert {mode for _, mode in _LAYER_EMITTERS} == {"csr", "csr-scatter", "unrolled"}


@pytest.mark.parametrize("opt", ["-O2", "-O3"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_libm_is_the_only_dependency(tmp_path, models, cc, opt, dtype):
    need(cc, "nm")
    zoo, plain = models
    scaling = InputScaling(shift=np.zeros(WIDTH), scale=np.full(WIDTH, 2.0), clip=(-3.0, 3.0))
    builds = {f"zoo-{layout}": (zoo, dict(layout=layout, input_scaling=scaling))
              for layout in ("gather", "scatter")}
    builds["unrolled"] = (plain, dict(mode="unrolled"))
    found = {}
    for name, (model, kw) in builds.items():
        ex = to_c(model, tmp_path / name, dtype=dtype, **kw)
        obj = compile_c([ex.source], str(tmp_path / f"{name}.o"), cc=cc, opt=opt, kind="obj")
        syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        undefined = {ln.split()[-1] for ln in syms.splitlines() if ln.split()[-2:-1] == ["U"]}
        if undefined - LIBM:
            found[name] = sorted(undefined - LIBM)
    assert not found, f"{cc} {opt} {dtype}: undefined symbols outside libm: {found}"
