"""Image augmentation: a per-sample np.pad oracle, determinism, thread count, the trainer hook."""

import re

import numpy as np
import pytest
from conftest import StopAt, assert_same

from sparsemlp import TrainConfig, Trainer
from sparsemlp._rng import Streams
from sparsemlp.cli.train import _parser
from sparsemlp.data import load as load_data
from sparsemlp.data.augment import augment, image_shape
from sparsemlp.training import datasets
from sparsemlp.training.config import ConfigError

SMALL = dict(hidden=(40,), epsilon=4.0, epochs=3, batch_size=32, checkpoint_every=1)


def oracle(xt, shape, dy, dx, fl, s):
    """Per sample: mirror, pad by repeating the border, crop the shifted window."""
    C, H, W = shape
    n = C * H * W
    out = xt.copy()
    for b in range(xt.shape[1]):
        img = xt[:n, b].reshape(C, H, W)
        if fl[b]:
            img = img[:, :, ::-1]
        p = np.pad(img, ((0, 0), (s, s), (s, s)), mode="edge")
        out[:n, b] = p[:, s - dy[b]:s - dy[b] + H, s - dx[b]:s - dx[b] + W].ravel()
    return out


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("shape,extra", [((1, 8, 8), 0), ((3, 5, 7), 4), ((1, 28, 28), 16)])
@pytest.mark.parametrize("shift,flip", [(0, True), (2, False), (3, True)])
def test_matches_per_sample_oracle(legacy, shape, extra, shift, flip):
    B = 50
    n = int(np.prod(shape))
    xt = np.random.default_rng(1).standard_normal((n + extra, B)).astype(np.float32)
    make = (lambda: np.random.RandomState(5)) if legacy else (lambda: np.random.default_rng(5))
    got = augment(xt, shape, make(), shift=shift, flip=flip)
    r = make()  # the documented draws: vertical shifts, horizontal shifts, flips
    draw = r.randint if legacy else r.integers
    zero = np.zeros(B, np.int64)
    dy, dx = (draw(-shift, shift + 1, B), draw(-shift, shift + 1, B)) if shift else (zero, zero)
    fl = ((r.random_sample(B) if legacy else r.random(B)) < 0.5) if flip else zero.astype(bool)
    np.testing.assert_array_equal(got, oracle(xt, shape, dy, dx, fl, shift))
    if extra:
        np.testing.assert_array_equal(got[n:], xt[n:])
    assert shift == 0 or (dy != 0).any()


def test_off_is_an_identical_copy_and_draws_nothing():
    xt = np.arange(64 * 3, dtype=np.float64).reshape(64, 3)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out = augment(xt, (1, 8, 8), rng)
    assert out is not xt and np.array_equal(out, xt) and rng.bit_generator.state == state


def test_shift_moves_a_pixel():
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 2, 0] = 1.0

    class Fixed:  # a generator that returns fixed draws: dy=1, dx=-2, no flip
        calls = [np.array([1]), np.array([-2])]

        def integers(self, lo, hi, n):
            return self.calls.pop(0)
    out = augment(x.reshape(25, 1), (1, 5, 5), Fixed(), shift=2).reshape(5, 5)
    assert out[3, 0] == 1.0 and out.sum() == 1.0  # down one row, left two columns


def test_errors():
    with pytest.raises(ValueError, match=r"shape \(>= 64, B\)"):
        augment(np.zeros((10, 2)), (1, 8, 8), np.random.default_rng(0), shift=1)
    with pytest.raises(ValueError, match="shift"):
        augment(np.zeros((64, 2)), (1, 8, 8), np.random.default_rng(0), shift=-1)
    with pytest.raises(ConfigError, match="augmentation needs image data"):
        TrainConfig(dataset="synthetic", augment_flip=True).resolve()
    with pytest.raises(ConfigError, match="augment_shift"):
        TrainConfig(augment_shift=-2).resolve()
    with pytest.raises(ConfigError, match="for the MLP"):
        TrainConfig(model="rbm", hidden=(20,), augment_shift=1).resolve()



def test_shift_must_be_a_non_negative_int():
    """The project's one message format (name, owner, kind, range); 1.5 or 2.0 is no shift."""
    head = r"^The 'shift' parameter of augment must be an int in the range \[0, inf\)\. Got "
    x = np.zeros((64, 2))
    for bad in (1.5, 2.0, True):
        with pytest.raises(TypeError, match=head + re.escape(repr(bad))):
            augment(x, (1, 8, 8), np.random.default_rng(0), shift=bad)
    with pytest.raises(ValueError, match=head + "-1 instead"):
        augment(x, (1, 8, 8), np.random.default_rng(0), shift=-1)


def test_image_shape_error_names_the_sets_and_working_flags():
    assert image_shape("cifar10") == (3, 32, 32) and image_shape("digits") == (1, 8, 8)
    with pytest.raises(ValueError) as e:
        image_shape("synthetic")
    msg = str(e.value)
    assert "dataset 'synthetic' has no known image shape. Use one of digits, mnist, " \
           "fashion-mnist, cifar10, or turn augmentation off (" in msg and "\n" not in msg
    flags = re.fullmatch(r".*\((--[a-z-]+ 0) (--[a-z-]+)\)\.", msg)
    assert flags, msg
    # the fix it names: the train CLI's flags, parsed by its own parser, switch augmentation off
    args = _parser().parse_args([*flags[1].split(), flags[2]])
    assert (args.augment_shift, args.augment_flip) == (0, False)


class _Uniforms:
    """A generator whose ``random`` returns chosen numbers (the flips' draws)."""

    def __init__(self, u):
        self.u = np.asarray(u, dtype=np.float64)

    def random(self, n):
        assert n == self.u.size
        return self.u

    def integers(self, *args):
        raise AssertionError("shift=0 draws no shifts")


def test_flip_exactly_when_the_uniform_is_below_one_half():
    # flip iff u < 1/2: exactly half of the 2**53 values random() returns in [0, 1)
    u = [0.0, 0.5 - 2.0 ** -53, 0.5, 1.0 - 2.0 ** -53]
    xt = np.array([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])  # 1x1x2 images [1, 2]
    out = augment(xt, (1, 1, 2), _Uniforms(u), flip=True)
    np.testing.assert_array_equal(out, [[2.0, 2.0, 1.0, 1.0], [1.0, 1.0, 2.0, 2.0]])

@pytest.fixture(scope="module")
def digits():
    return load_data("digits", rng=np.random.default_rng(0), dtype=np.float32)


def _fit(cfg, ds, **kw):
    cfg = cfg.resolve()
    tr = Trainer.from_config(cfg, ds.n_features, ds.n_classes, streams=Streams(cfg.seed),
                             verbose=False, **kw)
    tr.fit(ds.X_train, ds.y_train)
    return tr


def _weights(tr):
    return {f"{i}.{k}": getattr(la.W, k).copy() for i, la in enumerate(tr.model.layers)
            for k in ("indices", "data")}


def test_trainer_same_at_any_thread_count_and_on_resume(digits, tmp_path, backend):
    cfg = TrainConfig(**SMALL, augment_shift=2, augment_flip=True, backend=backend)
    one = _fit(TrainConfig(**{**cfg.__dict__, "threads": 1}), digits)
    two = _fit(TrainConfig(**{**cfg.__dict__, "threads": 2}), digits)
    assert_same(_weights(one), _weights(two))
    run = tmp_path / "run"
    _fit(cfg, digits, run_dir=run, callbacks=[StopAt(1)])
    resumed = Trainer.from_checkpoint(run / "checkpoints" / "epoch-0001", run_dir=run,
                                      verbose=False)
    resumed.fit(digits.X_train, digits.y_train)
    assert_same(_weights(_fit(cfg, digits)), _weights(resumed))


def test_trainer_off_changes_nothing_and_on_changes_training(digits, monkeypatch):
    base = _weights(_fit(TrainConfig(**SMALL), digits))
    on = _weights(_fit(TrainConfig(**SMALL, augment_shift=1), digits))
    assert not np.array_equal(base["0.data"], on["0.data"])

    def boom(*a, **k):
        raise AssertionError("augment called while off")
    monkeypatch.setattr(datasets, "augment", boom)
    assert_same(base, _weights(_fit(TrainConfig(**SMALL, augment_shift=0), digits)))
