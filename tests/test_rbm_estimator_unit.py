"""estimators/rbm.py piece by piece: documented defaults, every parameter check verbatim, the
out-of-range rules and messages, the TrainConfig fit builds and what verbose prints (fast;
test_rbm_estimator.py has the scikit-learn checks and the dense oracles)."""

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp.estimators import rbm as rbm_estimator
from sparsemlp.estimators.rbm import SparseBernoulliRBM


def _binary(n=30, d=6, seed=0):
    return (np.random.default_rng(seed).random((n, d)) > 0.5).astype(np.float64)


def _small(**kw):
    return SparseBernoulliRBM(**{**dict(n_components=4, epsilon=2.0, n_iter=1,
                                        random_state=0), **kw})


def test_documented_defaults():
    assert SparseBernoulliRBM().get_params() == dict(
        n_components=256, epsilon=10.0, zeta=0.3, topology="set", learning_rate=0.1,
        batch_size=10, n_iter=10, weight_decay=2e-7, momentum=0.0, k=1, persistent=False,
        out_of_range="warn", random_state=None, backend="auto", verbose=False)


@pytest.mark.parametrize("param,value,text", [
    ("n_components", 0, "an int in the range [1, inf). Got 0"),
    ("n_components", 2.0, "an int in the range [1, inf). Got 2.0"),
    ("epsilon", 0.0, "a float in the range (0, inf). Got 0.0"),
    ("epsilon", "1", "a float in the range (0, inf). Got '1'"),
    ("zeta", 1.0, "a float in the range [0, 1). Got 1.0"),
    ("zeta", -0.1, "a float in the range [0, 1). Got -0.1"),
    ("learning_rate", 0.0, "a float in the range (0, inf). Got 0.0"),
    ("batch_size", 0, "an int in the range [1, inf). Got 0"),
    ("batch_size", 2.5, "an int in the range [1, inf). Got 2.5"),
    ("n_iter", -1, "an int in the range [0, inf). Got -1"),
    ("n_iter", 1.0, "an int in the range [0, inf). Got 1.0"),
    ("weight_decay", -1e-3, "a float in the range [0, inf). Got -0.001"),
    ("momentum", 1.0, "a float in the range [0, 1). Got 1.0"),
    ("momentum", -0.5, "a float in the range [0, 1). Got -0.5"),
    ("k", 0, "an int in the range [1, inf). Got 0"),
    ("k", 1.0, "an int in the range [1, inf). Got 1.0"),
    ("persistent", "yes", "a bool. Got 'yes'"),
    ("persistent", 1, "a bool. Got 1"),
    ("topology", "regular", "one of 'set', 'static'. Got 'regular'"),
    ("out_of_range", "drop", "one of 'warn', 'ignore', 'clip', 'raise'. Got 'drop'"),
    ("backend", "cuda", "one of 'auto', 'cython', 'numba', 'numpy'. Got 'cuda'"),
])
def test_every_parameter_check_verbatim(param, value, text):
    with pytest.raises((TypeError, ValueError)) as e:
        _small(**{param: value}).fit(_binary())
    assert str(e.value) == (f"The {param!r} parameter of SparseBernoulliRBM must be {text} "
                            "instead.")


def test_the_edges_of_every_range_are_accepted():
    X = _binary()
    _small(n_components=1, epsilon=1e-9, zeta=0.0, learning_rate=1e-9, batch_size=1, n_iter=0,
           weight_decay=0.0, momentum=0.0, k=1, persistent=True, topology="static",
           out_of_range="ignore", backend="numpy").fit(X)
    _small(epsilon=2, zeta=0.99, momentum=0.99, learning_rate=3, weight_decay=1,
           out_of_range="raise").fit(X)  # ints for floats


class _Capture(rbm_estimator.RBMTrainer):
    configs = []

    def __init__(self, model, config, **kw):
        _Capture.configs.append(config)
        super().__init__(model, config, **kw)


@pytest.mark.parametrize("kw,n", [
    (dict(), 30),
    (dict(n_components=5, epsilon=3.0, zeta=0.2, topology="static", learning_rate=0.05,
          batch_size=8, n_iter=2, weight_decay=1e-4, momentum=0.5, k=3, persistent=True,
          backend="numpy"), 30),
    (dict(batch_size=50), 30),
])
def test_fit_trains_the_documented_config(monkeypatch, kw, n):
    monkeypatch.setattr(rbm_estimator, "RBMTrainer", _Capture)
    _Capture.configs.clear()
    X = _binary(n).astype(np.float32)
    est = _small(**kw).fit(X)
    (cfg,) = _Capture.configs
    p = est.get_params()
    assert cfg.model == "rbm" and cfg.hidden == (p["n_components"],)
    assert (cfg.epsilon, cfg.zeta, cfg.topology, cfg.epochs) == (
        p["epsilon"], (p["zeta"],), p["topology"], p["n_iter"])
    assert cfg.batch_size == min(p["batch_size"], n) and cfg.drop_last is True
    assert (cfg.lr, cfg.lr_schedule, cfg.momentum) == (p["learning_rate"], "constant",
                                                      p["momentum"])
    assert (cfg.weight_decay, cfg.decay) == (p["weight_decay"], "original")
    assert (cfg.cd_k, cfg.persistent) == (p["k"], p["persistent"])
    assert cfg.dtype == "float32" and cfg.backend == p["backend"]
    assert (cfg.normalize, cfg.pll, cfg.ais_every, cfg.checkpoint_every) == ("none", "none", 0,
                                                                             0)
    assert len(est.history_) == p["n_iter"]
    assert est.rbm_.W.shape == (6, p["n_components"]) and est.rbm_.dtype == np.float32


def test_history_and_verbose_lines(capsys):
    est = _small(n_iter=3).fit(_binary())
    assert capsys.readouterr().out == ""
    est = _small(n_iter=3, verbose=True).fit(_binary())
    lines = capsys.readouterr().out.splitlines()
    assert [r["epoch"] for r in est.history_] == [1, 2, 3]
    assert lines == [f"epoch {r['epoch']}: recon {r['train_recon']:.5f} nnz {r['nnz']}"
                     for r in est.history_]
    for r in est.history_:
        assert set(r) == {"epoch", "train_recon", "train_recon_original", "test_recon", "nnz",
                          "seconds_train", "seconds_eval", "seconds_evolution"}
        assert r["test_recon"] is None and isinstance(r["nnz"], int) and r["train_recon"] > 0
    assert est.history_[-1]["nnz"] == est.rbm_.W.nnz


# -- out of range -----------------------------------------------------------------------------
def _what(lo, hi):
    return (f"X has values in [{lo:.4g}, {hi:.4g}], outside the [0, 1] that Bernoulli visible "
            "units model")


def test_out_of_range_messages_verbatim():
    X = _binary()
    X[0, 0], X[1, 1] = -0.25, 1.5
    with pytest.raises(ValueError) as e:
        _small(out_of_range="raise").fit(X)
    assert str(e.value) == (f"{_what(-0.25, 1.5)}. Rescale the data (e.g. sklearn."
                            "preprocessing.MinMaxScaler) or set out_of_range='clip'.")
    with pytest.warns(UserWarning) as rec:
        _small().fit(X)
    (w,) = [r for r in rec if "outside" in str(r.message)]
    # points at the caller of fit, not at the estimator's code (under mutmut's trampoline
    # the caller's frame is the trampoline's, so the check is on what it must not be)
    assert w.category is UserWarning
    assert not w.filename.endswith(os.path.join("estimators", "rbm.py"))
    assert str(w.message) == (f"SparseBernoulliRBM: {_what(-0.25, 1.5)}; they are used as "
                              "given, as BernoulliRBM does. Rescale the data (e.g. MinMaxScaler), "
                              "or set out_of_range='clip' (or 'ignore' to silence this).")


def test_zero_and_one_are_in_range():
    X = _binary()
    assert X.min() == 0 and X.max() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _small(out_of_range="raise").fit(X).transform(X)
        _small(out_of_range="raise").fit(sp.csr_array(X))


def test_sparse_data_is_judged_by_its_stored_values():
    """Stored values in [0.5, 2] with implicit zeros: the range named is that of the values."""
    X = _binary() * 0.5
    X[2, 3] = 2.0
    S = sp.csr_array(X)
    with pytest.raises(ValueError) as e:
        _small(out_of_range="raise").fit(S)
    assert str(e.value).startswith(_what(0.5, 2.0))
    clipped = _small(out_of_range="clip").fit(S)
    oracle = _small(out_of_range="raise").fit(sp.csr_array(np.clip(X, 0, 1)))
    np.testing.assert_array_equal(clipped.components_.toarray(), oracle.components_.toarray())
    assert S.data.max() == 2.0  # the caller's data is not clipped in place


def test_ignore_and_empty_data_are_not_judged():
    est = _small(out_of_range="ignore").fit(_binary())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = _binary() * 3
        assert est._check_range(X, "X") is X
        S = sp.csr_array((4, 6))
        assert _small(out_of_range="raise")._check_range(S, "X") is S


def test_tags_declare_sparse_input_and_both_float_dtypes_preserved():
    """What scikit-learn's checks rely on (those checks are not in the mutation selection)."""
    tags = SparseBernoulliRBM().__sklearn_tags__()
    assert tags.input_tags.sparse is True
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    for dt in tags.transformer_tags.preserves_dtype:  # names NumPy reads, kept by transform
        X = _binary().astype(dt)
        assert _small().fit(X).transform(X).dtype == np.dtype(dt)
