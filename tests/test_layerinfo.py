"""training.layerinfo: the structure digest that checkpoints and MPI ranks compare."""

import hashlib

import numpy as np

from sparsemlp import approx
from sparsemlp.training.layerinfo import structure_digest


def _W(m=20, n=16, seed=0):
    return np.random.default_rng(seed).standard_normal((m, n))


def test_equal_structure_at_another_budget_has_the_same_digest():
    """Budget, error and message describe how a structure was found, not the structure:
    two rank-2 factorisations found under different budgets (96 and 105 parameters) and of
    different matrices have one digest; rank 2 against rank 3 differs."""
    a = approx.low_rank(_W(), share=0.30)
    b = approx.low_rank(_W(seed=1), share=0.33)
    c = approx.low_rank(_W(), share=0.40)
    assert a.L.shape[1] == b.L.shape[1] == 2 and c.L.shape[1] == 3
    assert a.budget != b.budget and a.rel_error != b.rel_error
    assert structure_digest(a) == structure_digest(b)
    assert structure_digest(a) != structure_digest(c)


def _by_hand(ap):
    """The digest's documented definition, written out with hashlib: the kind, then per
    parameter array in name order its name and shape, and integer arrays' values as int64."""
    h = hashlib.sha1(ap.kind.encode())
    for key, a in sorted(ap.to_arrays().items()):
        if key in {"kind", "budget", "rel_error", "failed", "message"}:
            continue
        a = np.asarray(a)
        h.update((key + str(a.shape)).encode())
        if np.issubdtype(a.dtype, np.integer):
            h.update(a.astype("<i8").ravel().tobytes())
    return h.hexdigest()


def test_digest_follows_its_definition():
    """Checkpoints store this digest: its definition is a file-format contract (a change
    makes every saved structured checkpoint look foreign)."""
    for ap in (approx.low_rank(_W(), share=0.3), approx.sparse_product(_W(), share=0.3),
               approx.hodlr(_W(), share=0.3)):
        assert structure_digest(ap) == _by_hand(ap), ap.kind
