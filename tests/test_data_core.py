"""data/core.py: synthetic data, splits, normalize and load()'s routing, against the documented
rules (split sizes of the original, Gaussian clusters, exact messages) on tiny files."""

import gzip
import os

import numpy as np
import pytest
from test_data import tiny_idx_set, write_madelon

from sparsemlp.data import DataError, core, load, make_synthetic, normalize, split


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for v in ("SPARSEMLP_MNIST", "SPARSEMLP_MADELON", "SPARSEMLP_FASHION_MNIST"):
        monkeypatch.delenv(v, raising=False)


def _rng():
    return np.random.default_rng(3)


# -- make_synthetic -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,k", [({}, 20), ({"n_informative": 3}, 3), ({"n_features": 7}, 7),
                                  ({"n_informative": 1, "n_features": 1, "n_samples": 2,
                                    "n_classes": 2}, 1)])
def test_synthetic_is_gaussian_clusters_in_the_informative_features(kw, k):
    """The documented generator: centres ~ N(0, 2^2) in the first k features, unit noise."""
    n, d, c = kw.get("n_samples", 2000), kw.get("n_features", 100), kw.get("n_classes", 5)
    X, y = make_synthetic(**kw, rng=_rng())
    assert X.shape == (n, d) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.arange(n) % c)
    r = _rng()
    centers = 2.0 * r.standard_normal((c, k))
    noise = r.standard_normal((n, d))
    want = noise.copy()
    want[:, :k] = noise[:, :k] + centers[y]
    np.testing.assert_allclose(X, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw,name,value,bounds", [
    ({"n_samples": 1}, "n_samples", 1, "[2, inf)"),
    ({"n_features": 0}, "n_features", 0, "[1, inf)"),
    ({"n_classes": 1}, "n_classes", 1, "[2, 2000]"),
    ({"n_samples": 6, "n_classes": 7}, "n_classes", 7, "[2, 6]"),
    ({"n_informative": 0}, "n_informative", 0, "[1, inf)"),
    ({"n_informative": 2.5}, "n_informative", 2.5, "[1, inf)"),
    ({"n_features": 3.0}, "n_features", 3.0, "[1, inf)"),
])
def test_synthetic_refusals_name_the_parameter(kw, name, value, bounds):
    with pytest.raises(DataError) as e:
        make_synthetic(**kw, rng=_rng())
    assert str(e.value) == (f"The {name!r} parameter of synthetic must be an int in the range "
                            f"{bounds}. Got {value!r} instead.")


def test_synthetic_that_does_not_fit_in_memory():
    class Rng:
        def standard_normal(self, size):
            if size == (2**20, 2**10):
                raise MemoryError
            return np.zeros(size)

    with pytest.raises(DataError) as e:
        make_synthetic(n_samples=2**20, n_features=2**10, rng=Rng())
    assert str(e.value) == ("synthetic data of 1048576 x 1024 float64 values (8 GiB) does not "
                            "fit in memory. Lower --synthetic-samples or --synthetic-features.")


# -- split ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,test_size", [(10, 0.25), (10, 0.3), (7, 0.5), (4, 0.75), (9, 0.1)])
@pytest.mark.parametrize("how", ["reference", "unstratified"])
def test_shuffle_split_is_the_originals(n, test_size, how):
    """idx = arange(n); rng.shuffle(idx); the first int(n*(1-test_size)) train (float error
    aside: 10 * 0.7 is 7.000000000000001, 10 * (1 - 0.3) 6.999999999999999)."""
    X = np.arange(n * 2.0).reshape(n, 2)
    y = np.arange(n) % 2
    if how == "reference":
        rng, ref = np.random.RandomState(4), np.random.RandomState(4)
        kw = {}
    else:
        rng, ref = np.random.default_rng(4), np.random.default_rng(4)
        kw = {"stratify": False}
    idx = np.arange(n)
    ref.shuffle(idx)
    n_train = {(10, 0.25): 7, (10, 0.3): 7, (7, 0.5): 3, (4, 0.75): 1, (9, 0.1): 8}[n, test_size]
    Xtr, ytr, Xte, yte = split(X, y, test_size, rng=rng, **kw)
    np.testing.assert_array_equal(Xtr, X[idx[:n_train]])
    np.testing.assert_array_equal(ytr, y[idx[:n_train]])
    np.testing.assert_array_equal(Xte, X[idx[n_train:]])
    np.testing.assert_array_equal(yte, y[idx[n_train:]])


@pytest.mark.parametrize("ts", [0, 0.0, 1, 1.0, 1.5, -0.1, "0.3", None])
def test_split_refuses_a_test_size_outside_0_1(ts):
    with pytest.raises(DataError) as e:
        split(np.ones((10, 2)), np.arange(10) % 2, ts, rng=_rng())
    assert str(e.value) == f"test_size must be a fraction in (0, 1); got {ts!r}."


@pytest.mark.parametrize("n,ts,rng,part,fix", [
    (4, 1e-10, np.random.RandomState(0), "test", "larger"),  # 3.9999999996 trains 4
    (4, 0.9, np.random.RandomState(0), "train", "smaller"),
    (4, 0.1, np.random.default_rng(0), "test", "larger"),
    (4, 0.9, np.random.default_rng(0), "train", "smaller"),
])
def test_split_names_the_empty_part(n, ts, rng, part, fix):
    with pytest.raises(DataError) as e:
        split(np.ones((n, 2)), np.zeros(n, int), ts, rng=rng)
    assert str(e.value) == (f"test_size={ts} leaves an empty {part} set of {n} samples. Use a "
                            f"{fix} --test-size, or more samples.")


# -- normalize ------------------------------------------------------------------------------------
def test_normalize_defaults_and_dtypes():
    Xtr = np.array([[1, 5], [3, 5], [5, 5]], np.float32)
    Xte = np.array([[2, 6]], np.float32)
    std = np.sqrt(8 / 3)
    a, b = normalize(Xtr, Xte, "zscore")  # constant feature: denominator 1 (not std + 1e-4)
    assert a.dtype == b.dtype == np.float64
    np.testing.assert_allclose(a, [[-2 / std, 0], [0, 0], [2 / std, 0]], rtol=1e-12)
    np.testing.assert_allclose(b, [[-1 / std, 1]], rtol=1e-12)
    _, b = normalize(Xtr, Xte, "zscore", reference=True)
    np.testing.assert_allclose(b, [[-1 / (std + 1e-4), 1 / 1e-4]], rtol=1e-12)
    a, b = normalize(Xtr.astype(np.float64), Xte.astype(np.float64), "minmax", dtype=np.float32)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(b, np.array([[0.25, 1]], np.float32))


# -- load's routing -------------------------------------------------------------------------------
def test_load_defaults_to_the_built_in_digits():
    ds = load(rng=np.random.default_rng(0))
    assert ds.name == "digits (built in, 1797x64)"
    assert ds.X_train.shape[0] + ds.X_test.shape[0] == 1797 and ds.n_features == 64
    X, y = core.load_digits()
    assert X.dtype == np.float64 and y.dtype == np.int64
    # pixel 0 is always 0 in this set: the default scale of a constant feature is 1
    assert np.all(X[:, 0] == 0) and ds.scaling.scale[0] == 1.0
    assert load(rng=np.random.default_rng(0), reference=True).scaling.scale[0] == 1e-4


def test_load_synthetic_options():
    ds = load("synthetic", rng=_rng(), synthetic=dict(n_samples=30, n_features=4, n_classes=3,
                                                      n_informative=2))
    assert ds.name == "synthetic (30, 4)" and ds.n_classes == 3
    with pytest.raises(DataError) as e:
        load("synthetic", rng=_rng(), synthetic={"n_sample": 3, "seed": 1})
    assert str(e.value) == ("synthetic: unknown option(s) ['n_sample', 'seed']. Use n_samples, "
                            "n_features, n_classes, n_informative.")


@pytest.mark.parametrize("kw,want", [({}, (None, True, None, True)),
                                     ({"data_dir": "D", "download": False, "download_url": "U",
                                       "progress": False}, ("D", False, "U", False))],
                         ids=["defaults", "given"])
def test_load_fashion_mnist_asks_for_its_folder(tmp_path, monkeypatch, kw, want):
    folder = tmp_path / "fm"
    arrays = tiny_idx_set(folder)
    calls = []

    def fake(data_dir=None, *, download=True, url=None, progress=True):
        calls.append((data_dir, download, url, progress))
        return str(folder)

    monkeypatch.setattr(core, "fashion_mnist_dir", fake)
    if "data_dir" in kw:
        kw["data_dir"] = str(tmp_path)
        want = (str(tmp_path), *want[1:])
    ds = load("fashion-mnist", rng=_rng(), normalize_how="none", **kw)
    assert calls == [want]
    assert ds.name == f"fashion-mnist ({folder})"
    np.testing.assert_array_equal(ds.X_test, arrays[2].reshape(12, 12).astype(np.float64))


def test_named_sets_not_found(tmp_path, monkeypatch):
    with pytest.raises(DataError) as e:
        load("mnist", rng=_rng())
    assert str(e.value) == (
        "mnist: no folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (no folder given). Pass --data-dir DIR "
        "or set SPARSEMLP_MNIST.")
    monkeypatch.setenv("SPARSEMLP_MADELON", str(tmp_path / "env"))
    with pytest.raises(DataError) as e:
        load("madelon", rng=_rng(), data_dir=str(tmp_path))
    assert str(e.value) == (
        "madelon: no folder with madelon_train.data, madelon_train.labels, madelon_valid.data, "
        f"madelon_valid.labels (searched {tmp_path}, {tmp_path / 'madelon'}, {tmp_path / 'env'})."
        " Pass --data-dir DIR or set SPARSEMLP_MADELON.")


def _gzip_all(folder):
    for f in os.listdir(folder):
        p = os.path.join(folder, f)
        with open(p, "rb") as src, gzip.open(p + ".gz", "wb") as dst:
            dst.write(src.read())
        os.remove(p)


def test_madelon_files_are_read_plain_only(tmp_path):
    """Gzipped Madelon files do not count (the reader reads text files); gzipped IDX do."""
    _gzip_all(write_madelon(tmp_path / "madelon"))
    with pytest.raises(DataError, match=r"^madelon: no folder with madelon_train\.data"):
        load("madelon", rng=_rng(), data_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"holds neither the four Madelon files"):
        load(str(tmp_path / "madelon"), rng=_rng())
    tiny_idx_set(tmp_path / "mnist", gz=True)
    assert load("mnist", rng=_rng(), data_dir=str(tmp_path)).X_train.shape == (30, 12)


def test_folders_by_path(tmp_path):
    write_madelon(tmp_path / "m")
    tiny_idx_set(tmp_path / "i")
    assert load(str(tmp_path / "m"), rng=_rng()).name == f"madelon ({tmp_path / 'm'})"
    assert load(str(tmp_path / "i"), rng=_rng()).name == f"IDX ({tmp_path / 'i'})"
    with pytest.raises(DataError) as e:
        load(str(tmp_path), rng=_rng())
    assert str(e.value) == (
        f"folder {tmp_path} holds neither the four Madelon files (madelon_train.data, "
        "madelon_train.labels, madelon_valid.data, madelon_valid.labels) nor the four IDX "
        "files. Point to the folder that has them.")


@pytest.mark.parametrize("ext", [".npz", ".mat", ".csv"])
def test_data_file_names(tmp_path, ext):
    (tmp_path / f"d{ext}").mkdir()
    with pytest.raises(DataError) as e:
        load(str(tmp_path / f"d{ext}"), rng=_rng())
    assert str(e.value) == (f"{tmp_path / f'd{ext}'} is a folder, not a data file. Pass the "
                            "file itself (or a folder of IDX or Madelon files).")
    with pytest.raises(DataError) as e:
        load(str(tmp_path / f"e{ext}"), rng=_rng())
    assert str(e.value) == (f"data file {tmp_path / f'e{ext}'} not found. Check the path or "
                            "--data-dir.")


def test_unknown_name_message():
    with pytest.raises(DataError) as e:
        load("nope", rng=_rng())
    assert str(e.value) == ("Unknown data set 'nope'. Use one of digits, synthetic, "
                            "fashion-mnist, mnist, madelon, cifar10, a path to a .npz, .mat or "
                            ".csv file, "
                            "or a folder of IDX or Madelon files.")


def test_load_argument_messages(tmp_path):
    for dt in ("float16", "no such dtype", np.int64):
        with pytest.raises(DataError) as e:
            load(rng=_rng(), dtype=dt)
        assert str(e.value) == "dtype must be float32 or float64. Pass --dtype float32 or float64."
    with pytest.raises(DataError) as e:
        load("digits", rng=_rng(), label_column=0)
    assert str(e.value) == ("label_column=0 applies to .csv files only; digits keeps its labels "
                            "apart from the features. Drop --label-column.")
    (tmp_path / "f").write_text("")
    for p, what in ((tmp_path / "f", "is a file"), (tmp_path / "g", "does not exist")):
        with pytest.raises(DataError) as e:
            load(rng=_rng(), data_dir=str(p))
        assert str(e.value) == (f"--data-dir {p} {what}. Pass the folder that holds the data "
                                "files.")


# -- load's checks name the file and the part --------------------------------------------------
def _npz(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return str(p)


def test_messages_name_the_file_and_part(tmp_path):
    bad = np.ones((4, 2))
    bad[1, 0] = np.nan
    p = _npz(tmp_path, X=bad, y=np.arange(4) % 2)
    with pytest.raises(DataError, match=r"^d\.npz features "):
        load(p, rng=_rng())
    p = _npz(tmp_path, xtr=bad, ytr=np.arange(4) % 2, xte=np.ones((2, 2)), yte=[0, 1])
    with pytest.raises(DataError, match=r"^d\.npz train features "):
        load(p, rng=_rng())
    p = _npz(tmp_path, xtr=np.ones((4, 2)), ytr=np.arange(4) % 2, xte=bad, yte=np.arange(4) % 2)
    with pytest.raises(DataError, match=r"^d\.npz test features "):
        load(p, rng=_rng())
    p = _npz(tmp_path, X=np.ones((4, 2)), y=np.arange(3))
    with pytest.raises(DataError, match=r"^d\.npz: 4 rows of features but labels of shape"):
        load(p, rng=_rng())
    p = _npz(tmp_path, xtr=np.ones((4, 2)), ytr=np.arange(4) % 2, xte=np.ones((2, 3)),
             yte=[0, 1])
    with pytest.raises(DataError) as e:
        load(p, rng=_rng())
    assert str(e.value) == ("d.npz: train has 2 features but test 3. Use train and test files "
                            "of the same data set.")
    p = _npz(tmp_path, xtr=np.ones((4, 2)), ytr=np.arange(4) % 2, xte=np.ones((2, 2)),
             yte=[0, 5])
    with pytest.raises(DataError, match=r"^d\.npz: the test labels \{5\} never occur"):
        load(p, rng=_rng())


def test_label_map_line_names_the_file(tmp_path, caplog):
    p = _npz(tmp_path, X=np.arange(12.0).reshape(6, 2), y=[3, 5, 3, 5, 3, 5])
    with caplog.at_level("INFO", logger="sparsemlp.data"):
        ds = load(p, rng=_rng(), test_size=0.5)
    assert ds.classes.tolist() == [3, 5]
    assert [r.getMessage() for r in caplog.records if "classes 0..1" in r.getMessage()] == [
        "d.npz: labels {3, 5} -> classes 0..1 (outputs and per-class results use the original "
        "labels)"]


def test_unsupervised_load_takes_one_class(tmp_path):
    p = _npz(tmp_path, X=np.arange(12.0).reshape(6, 2), y=np.zeros(6, int))
    ds = load(p, rng=_rng(), supervised=False)
    assert ds.classes.tolist() == [0] and ds.X_train.shape[0] + ds.X_test.shape[0] == 6
    with pytest.raises(DataError, match=r"^d\.npz has a single class \(\{0\}\)"):
        load(p, rng=_rng())


def test_a_class_lost_to_the_test_set(tmp_path):
    y = np.array(["a"] * 6 + ["b"])
    p = _npz(tmp_path, X=np.arange(14.0).reshape(7, 2), y=y)
    assert load(p, rng=_rng(), test_size=0.5).n_classes == 2  # round(0.5) = 0: "b" trains
    with pytest.raises(DataError) as e:
        load(p, rng=_rng(), test_size=0.6)  # round(0.6) = 1: the only "b" goes to test
    assert str(e.value) == ("d.npz: the split put every sample of class(es) {'b'} into the test "
                            "set, so the model could never learn them. Lower --test-size or give "
                            "those classes more samples.")


def test_model_preprocessing_of_other_width(tmp_path):
    ds = load("synthetic", rng=_rng(), synthetic=dict(n_samples=20, n_features=3, n_classes=2))
    p = _npz(tmp_path, X=np.ones((6, 4)), y=np.arange(6) % 2)
    with pytest.raises(DataError) as e:
        load(p, rng=_rng(), preprocessing=ds.preprocessing)
    assert str(e.value) == ("d.npz has 4 features but the model takes 3. Evaluate on data with "
                            "the model's features.")
