"""Small contracts of the evolution modules that mutation testing found unchecked."""

import numpy as np
import pytest

from sparsemlp.evolution.thresholds import kept_positions


def test_kept_positions_names_itself_by_default():
    with pytest.raises(ValueError, match=r"^The 'zeta' parameter of kept_positions must be a "
                                         r"float in the range \[0, 1\). Got 1.5 instead.$"):
        kept_positions(np.ones(3), 1.5)


@pytest.mark.parametrize("legacy", [False, True])
def test_new_connections_default_to_the_sampler_in_the_layers_dtype(legacy):
    """Without ``original`` the vectorised sampler draws (not the scalar loop); the keys are
    free positions of the pattern (checked on the dense layer) and the values, of either
    path, in the layer's dtype (float32)."""
    from sparsemlp.evolution.regrowth import new_connections
    from sparsemlp.nn.layers import SparseLinear
    from sparsemlp.topology import erdos_renyi

    W = erdos_renyi(40, 30, epsilon=4, rng=np.random.default_rng(1), dtype=np.float32)
    layer = SparseLinear(W, kernels="numpy")

    def draw(**kw):
        rng = np.random.RandomState(3) if legacy else np.random.default_rng(3)
        return new_connections(layer, W.indptr, W.indices, 25, rng, init="normal",
                               normal_std=0.1, legacy=legacy, **kw)

    keys, vals = draw()
    k_vec, v_vec = draw(original=False)
    k_loop, v_loop = draw(original=True)
    np.testing.assert_array_equal(keys, k_vec)
    np.testing.assert_array_equal(vals, v_vec)
    assert not np.array_equal(keys, k_loop)
    assert vals.dtype == v_loop.dtype == np.float32 and keys.dtype == k_loop.dtype == np.int64
    assert np.all(np.diff(keys) > 0)
    occupied = W.toarray() != 0
    assert not occupied[keys // 30, keys % 30].any()


def test_apply_remaps_parameter_0_by_default():
    """Without ``param_index`` the optimizer state of parameter 0 (W.data) follows the change
    and the bias's state stays as it was (SGD's velocity: zeros for the new connections)."""
    from sparsemlp.evolution import apply
    from sparsemlp.nn import SGD, SparseLinear
    from sparsemlp.topology import erdos_renyi

    rng = np.random.default_rng(0)
    layer = SparseLinear(erdos_renyi(30, 20, epsilon=4, rng=rng), kernels="numpy")
    opt = SGD([layer.W.data, layer.b], lr=0.1, momentum=0.9, kernels="numpy")
    vel_w = rng.standard_normal(layer.nnz).astype(layer.W.dtype)
    vel_b = rng.standard_normal(20).astype(layer.b.dtype)
    opt.state["velocity"][0][...] = vel_w
    opt.state["velocity"][1][...] = vel_b
    res = apply(layer, "set", zeta=0.3, rng=rng, optimizer=opt)
    assert opt.params[0] is layer.W.data
    v = opt.state["velocity"][0]
    assert v.shape == (layer.nnz,)
    np.testing.assert_array_equal(np.delete(v, res.new_positions), vel_w[res.keep_index])
    np.testing.assert_array_equal(v[res.new_positions], 0)
    np.testing.assert_array_equal(opt.state["velocity"][1], vel_b)


def test_apply_lets_the_rule_refuse_a_wrong_layer():
    from sparsemlp.evolution import apply

    with pytest.raises(TypeError, match="evolve needs a SparseLinear layer. Got object."):
        apply(object(), "set", zeta=0.3, rng=np.random.default_rng(0))


def test_importance_prune_refuses_a_wrong_layer_like_the_other_rules():
    """A wrong object gets the rules' clear TypeError, not a bare AttributeError on .W."""
    from sparsemlp.evolution import importance_prune

    with pytest.raises(TypeError, match="importance_prune needs a SparseLinear layer. Got dict."):
        importance_prune({"W": None}, 20)
    from types import SimpleNamespace

    with pytest.raises(TypeError, match="needs a SparseLinear layer. Got SimpleNamespace."):
        importance_prune(SimpleNamespace(W=None), 20)  # a W alone does not make a layer
