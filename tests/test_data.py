"""Data loaders on tiny files (IDX, madelon, csv, npz), real Madelon, scaling, splits, errors."""

import gzip
import os

import numpy as np
import pytest
from conftest import shared_data

from sparsemlp.data import DataError, load, normalize, preprocessing, split
from sparsemlp.data import core as data

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def idx_bytes(a):
    """The IDX encoding of array ``a`` (uint8, >i4 or >f4)."""
    a = np.asarray(a)
    head = bytes([0, 0, IDX_CODES[a.dtype], a.ndim]) + np.array(a.shape, ">u4").tobytes()
    return head + a.tobytes()


def write_idx(path, a, gz=True):
    raw = idx_bytes(a)
    if gz:
        path = f"{path}.gz"
        raw = gzip.compress(raw)
    with open(path, "wb") as fh:
        fh.write(raw)
    return path


def tiny_idx_set(folder, *, gz=True, seed=0, n_train=30, n_test=12):
    """Four IDX files: uint8 3x4 images, labels 0..2; returns the arrays."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = (rng.integers(0, 256, (n_train, 3, 4), dtype=np.uint8), np.arange(n_train) % 3,
              rng.integers(0, 256, (n_test, 3, 4), dtype=np.uint8), np.arange(n_test) % 3)
    for stem, a in zip(IDX_FILES, arrays):
        write_idx(os.path.join(folder, stem), np.asarray(a, np.uint8), gz=gz)
    return arrays


def write_madelon(folder, n_train=12, n_valid=6, d=5, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for part, n in (("train", n_train), ("valid", n_valid)):
        X = rng.integers(0, 1000, (n, d))
        np.savetxt(os.path.join(folder, f"madelon_{part}.data"), X, fmt="%d", delimiter=" ")
        lab = np.where(np.arange(n) % 2, 1, -1)
        np.savetxt(os.path.join(folder, f"madelon_{part}.labels"), lab, fmt="%d")
    return folder


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for v in ("SPARSEMLP_MNIST", "SPARSEMLP_MADELON", "SPARSEMLP_FASHION_MNIST"):
        monkeypatch.delenv(v, raising=False)


# ---------------------------------------------------------------- IDX / mnist


@pytest.mark.parametrize("dt", [np.uint8, ">i4", ">f4"])
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, dt, gz):
    a = (np.arange(24).reshape(2, 3, 4) * 3).astype(dt)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "a", a, gz=gz)), a)


def test_read_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01abcd")
    with pytest.raises(DataError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(np.zeros((4, 5), np.uint8))[:-3])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_data_dir(tmp_path, rng, gz):
    Xtr, ytr, Xte, yte = tiny_idx_set(tmp_path / "mnist", gz=gz)
    ds = load("mnist", data_dir=str(tmp_path), rng=rng, normalize_how="none")  # the subfolder
    assert (ds.X_train.shape, ds.X_test.shape, ds.n_classes) == ((30, 12), (12, 12), 3)
    np.testing.assert_array_equal(ds.X_train, Xtr.reshape(30, 12).astype(np.float64))
    np.testing.assert_array_equal(ds.y_test, yte)
    assert ds.name.startswith("mnist (")


def test_load_mnist_env_and_folder_path(tmp_path, rng, monkeypatch):
    tiny_idx_set(tmp_path / "m")
    monkeypatch.setenv("SPARSEMLP_MNIST", str(tmp_path / "m"))
    a = load("mnist", rng=rng)
    b = load(str(tmp_path / "m"), rng=rng)  # a folder of IDX files as the name
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_load_mnist_missing(tmp_path, rng):
    tiny_idx_set(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="mnist: no folder with .*--data-dir DIR or set SPARSEMLP_MNIST"):
        load("mnist", data_dir=str(tmp_path), rng=rng)
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        data.load_idx_dir(tmp_path)


def test_idx_count_mismatch(tmp_path, rng):
    tiny_idx_set(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(29, np.uint8))
    with pytest.raises(DataError, match="same set"):
        load("mnist", data_dir=str(tmp_path), rng=rng)


@pytest.mark.parametrize("how", ["zscore", "minmax", "none"])
def test_float32_equals_float64_rounded(tmp_path, rng, how):
    tiny_idx_set(tmp_path)
    d64 = load("mnist", data_dir=str(tmp_path), rng=rng, normalize_how=how)
    d32 = load("mnist", data_dir=str(tmp_path), rng=rng, normalize_how=how, dtype=np.float32)
    assert d32.X_train.dtype == d32.X_test.dtype == np.float32
    assert d32.X_train.flags.c_contiguous and d32.X_test.flags.c_contiguous
    np.testing.assert_array_equal(d32.X_train, d64.X_train.astype(np.float32))
    np.testing.assert_array_equal(d32.X_test, d64.X_test.astype(np.float32))


# ---------------------------------------------------------------- scaling and splits


@pytest.mark.parametrize("reference", [True, False])
@pytest.mark.parametrize("how", ["zscore", "minmax"])
def test_normalize_blocks_are_bitwise_the_plain_formula(monkeypatch, reference, how):
    r = np.random.default_rng(3)
    Xtr = r.integers(0, 5, (50, 7)).astype(np.uint8)
    Xtr[:, 2] = 4  # a constant feature
    Xte = r.integers(0, 5, (9, 7)).astype(np.uint8)
    f, g = Xtr.astype(np.float64), Xte.astype(np.float64)
    if how == "zscore":  # the formula of the original code
        mu, s = f.mean(axis=0), f.std(axis=0)
        s = s + 1e-4 if reference else np.where(s > 0, s, 1.0)
    else:
        mu, hi = f.min(axis=0), f.max(axis=0)
        s = np.where(hi > mu, hi - mu, 1.0)
    monkeypatch.setattr(preprocessing, "_BLOCK", 15)  # two rows per block
    a, b = normalize(Xtr, Xte, how, reference=reference)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, (f - mu) / s)
    np.testing.assert_array_equal(b, (g - mu) / s)


def test_normalize_bad_name():
    with pytest.raises(DataError, match="'zscore', 'minmax' or 'none'"):
        normalize(np.ones((2, 2)), np.ones((2, 2)), "l2")


def test_split_is_stratified_and_a_partition(rng):
    y = np.repeat([0, 1, 2], [30, 60, 90])
    X = np.arange(y.size, dtype=np.float64)[:, None]
    Xtr, ytr, Xte, yte = split(X, y, 1 / 3, rng=rng)
    assert np.bincount(yte).tolist() == [10, 20, 30]
    assert np.bincount(ytr).tolist() == [20, 40, 60]
    assert sorted(np.concatenate([Xtr[:, 0], Xte[:, 0]]).tolist()) == list(range(y.size))
    again = split(X, y, 1 / 3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again[2], Xte)


@pytest.mark.parametrize("ts", [0, 1, 1.5, -0.1, "0.3"])
def test_split_bad_test_size(rng, ts):
    with pytest.raises(DataError, match="test_size"):
        split(np.ones((10, 2)), np.arange(10) % 2, ts, rng=rng)


def test_digits_float32(rng):
    d32 = load("digits", rng=np.random.default_rng(0), dtype="float32")
    d64 = load("digits", rng=np.random.default_rng(0))
    np.testing.assert_array_equal(d32.X_train, d64.X_train.astype(np.float32))
    with pytest.raises(DataError, match="float32 or float64"):
        load("digits", rng=rng, dtype=np.int32)


# ---------------------------------------------------------------- madelon


def test_madelon_tiny(tmp_path, rng, monkeypatch):
    write_madelon(tmp_path / "madelon")
    ds = load("madelon", data_dir=str(tmp_path), rng=rng, normalize_how="none")
    assert (ds.X_train.shape, ds.X_test.shape) == ((12, 5), (6, 5))
    assert ds.classes.tolist() == [0, 1] and ds.y_train.tolist() == [0, 1] * 6
    monkeypatch.setenv("SPARSEMLP_MADELON", str(tmp_path / "madelon"))
    np.testing.assert_array_equal(load("madelon", rng=rng).X_test,
                                  load(str(tmp_path / "madelon"), rng=rng).X_test)


def test_madelon_real_files(rng):
    folder = shared_data("madelon")
    Xtr, ytr, Xte, yte = data.load_madelon(folder)
    assert (Xtr.shape, Xte.shape) == ((2000, 500), (600, 500))
    assert np.bincount(ytr).tolist() == [1000, 1000] and np.bincount(yte).tolist() == [300, 300]
    ds = load("madelon", data_dir=str(folder), rng=rng, dtype=np.float32)
    assert ds.X_train.shape == (2000, 500) and ds.X_train.dtype == np.float32
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0, atol=1e-4)


def test_madelon_errors(tmp_path, rng):
    with pytest.raises(DataError, match="madelon: no folder .*SPARSEMLP_MADELON"):
        load("madelon", data_dir=str(tmp_path), rng=rng)
    d = write_madelon(tmp_path / "m")
    np.savetxt(d / "madelon_valid.labels", np.arange(6) % 2, fmt="%d")  # 0/1, not -1/+1
    with pytest.raises(DataError, match="each -1 or \\+1"):
        data.load_madelon(d)
    write_madelon(d)
    np.savetxt(d / "madelon_train.labels", np.ones(11), fmt="%d")
    with pytest.raises(DataError, match="12 rows but .* has 11 labels"):
        data.load_madelon(d)
    write_madelon(d)
    (d / "madelon_train.data").write_text("")
    with pytest.raises(DataError, match="is empty"):
        data.load_madelon(d)
    (d / "madelon_train.data").write_text("1 2 3\n4 5\n")
    with pytest.raises(DataError, match="not a whitespace-separated numeric table"):
        data.load_madelon(d)


# ---------------------------------------------------------------- csv


def test_csv_header_and_label_column(tmp_path, rng):
    p = tmp_path / "d.csv"
    rows = "\n".join(f"{i},{i % 2},{2 * i}" for i in range(12))
    p.write_text("a,label,b\n" + rows + "\n")
    X, y = data.read_csv(p, label_column=1)
    assert X.shape == (12, 2) and y.tolist() == [0, 1] * 6
    p.write_text(rows + "\n\n")  # no header, trailing blank line; label in the last column
    X, y = data.read_csv(p)
    np.testing.assert_array_equal(X, np.c_[np.arange(12), np.arange(12) % 2])
    ds = load(str(p), rng=rng, label_column=1, test_size=0.5)
    assert ds.n_classes == 2 and np.bincount(ds.y_test).tolist() == [3, 3]


@pytest.mark.parametrize("text,msg", [
    ("", "is empty"),
    ("\n  \n", "is empty"),
    ("x,y,label\n", "header but no data rows"),
    ("1,2,0\n3,4,1\n5,abc,1\n", "line 3, column 2: 'abc' is not a number"),
    ("1,2,0\n3,4\n", "line 2 has 2 cells but the first row has 3 \\(ragged rows\\)"),
    ("1,2,0\n3,4,0.5\n", "labels must be integers or strings, found 0.5"),
    ("1,2,1\n3,4,1\n5,6,1\n", "single class"),
    ("1\n2\n", "label_column=-1 does not leave a label and at least one feature"),
    ("1,nan,0\n2,3,1\n", "NaN"),
])
def test_csv_errors(tmp_path, rng, text, msg):
    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=msg) as e:
        load(str(p), rng=rng)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- npz, names, labels


def test_unknown_name_lists_choices(rng):
    with pytest.raises(DataError, match="Unknown data set 'nope'. Use one of digits, synthetic, "
                                        "fashion-mnist, mnist, madelon, a path to a .npz, .mat or .csv"):
        load("nope", rng=rng)
    with pytest.raises(DataError, match="not found"):
        load("missing.csv", rng=rng)


def test_unsupported_file_and_empty_folder(tmp_path, rng):
    (tmp_path / "d.txt").write_text("1 2\n")
    with pytest.raises(DataError, match="supported files are .npz, .mat and .csv"):
        load(str(tmp_path / "d.txt"), rng=rng)
    with pytest.raises(DataError, match="holds neither"):
        load(str(tmp_path), rng=rng)


@pytest.mark.parametrize("arrays,msg", [
    (dict(X=np.ones((5, 2)), y=np.arange(4)), "5 rows of features but labels of shape \\(4,\\)"),
    (dict(X=np.ones((4, 2)), y=np.array([0.0, 1.0, 2.5, 1.0])), "labels must be integers or "
                                                                "strings, found 2.5"),
    (dict(X=np.ones((4, 2)), y=np.array([[0, 1], [1, 0], [0, 1], [1, 0]])), "labels of shape \\(4, 2\\)"),
    (dict(X=np.array(["a", "b"]), y=np.arange(2)), "features must be numbers"),
    (dict(X=np.ones(4), y=np.arange(4)), "expected a non-empty \\(samples, features\\)"),
    (dict(xtr=np.ones((4, 2)), ytr=np.arange(4) % 2, xte=np.ones((3, 3)), yte=np.arange(3) % 2),
     "train has 2 features but test 3"),
    (dict(xtr=np.ones((4, 2)), ytr=np.arange(4) % 2, xte=np.ones((3, 2)), yte=np.arange(2)),
     "test: 3 rows of features but labels of shape \\(2,\\)"),
    (dict(a=np.ones(3)), "must hold arrays xtr,ytr,xte,yte"),
])
def test_npz_errors(tmp_path, rng, arrays, msg):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=msg):
        load(str(tmp_path / "d.npz"), rng=rng)


def test_npz_given_split_and_float_labels(tmp_path, rng):
    r = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", xtr=r.random((6, 2, 2)).astype(np.float32), ytr=np.arange(6.0) % 3,
             xte=r.random((3, 4)), yte=np.array([2.0, 0.0, 1.0]))
    ds = load("d.npz", data_dir=str(tmp_path), rng=rng, dtype=np.float32)
    assert (ds.X_train.shape, ds.X_test.shape, ds.y_test.tolist()) == ((6, 4), (3, 4), [2, 0, 1])


# ---------------------------------------------------------------- synthetic


@pytest.mark.parametrize("opts,msg", [
    (dict(n_classes=1), "'n_classes' parameter of synthetic must be an int in the range \\[2, "),
    (dict(n_samples=1), "'n_samples'"),
    (dict(n_samples=4, n_classes=5), "'n_classes'"),
    (dict(n_features=0), "'n_features'"),
    (dict(n_samples="100"), "'n_samples' .* Got '100'"),
    (dict(n_informative=0), "'n_informative'"),
    (dict(n_sample=10), "unknown option\\(s\\) \\['n_sample'\\]"),
])
def test_synthetic_validation(rng, opts, msg):
    with pytest.raises(DataError, match=msg):
        load("synthetic", rng=rng, synthetic=opts)


def test_synthetic_ok(rng):
    ds = load("synthetic", rng=rng, synthetic=dict(n_samples=60, n_features=8, n_classes=3))
    assert (ds.X_train.shape[0] + ds.X_test.shape[0], ds.n_features, ds.n_classes) == (60, 8, 3)


def test_mat_and_unreadable_files(tmp_path, rng):
    from scipy.io import savemat

    savemat(tmp_path / "d.mat", {"X": np.arange(24.0).reshape(8, 3), "Y": (np.arange(8) % 2 + 1)[:, None]})
    ds = load(str(tmp_path / "d.mat"), rng=rng, test_size=0.25)
    assert (ds.n_features, ds.classes.tolist(), ds.X_test.shape[0]) == (3, [1, 2], 2)
    savemat(tmp_path / "e.mat", {"A": np.ones((2, 2))})
    with pytest.raises(DataError, match="must hold variables 'X' and 'Y' \\(found \\['A'\\]\\)"):
        load(str(tmp_path / "e.mat"), rng=rng)
    (tmp_path / "f.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz file \\(not a zip archive\\)"):
        load(str(tmp_path / "f.npz"), rng=rng)


# ---------------------------------------------------------------- sizes and flags that cannot apply


def _train(argv, capsys, tmp_path):
    from sparsemlp.cli import train as train_cli

    code = train_cli.main([*argv, "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "r")])
    return code, capsys.readouterr().err


def test_label_column_refused_for_other_than_csv(tmp_path, capsys, rng):
    code, err = _train(["--dataset", "digits", "--label-column", "3"], capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "label_column=3 applies to .csv files only; digits" in err
    with pytest.raises(DataError, match="applies to .csv files only"):
        load("synthetic", rng=rng, label_column=0)
    load("digits", rng=rng, label_column=-1)  # the default is fine everywhere


def test_batch_larger_than_the_training_data(tmp_path, capsys):
    code, err = _train(["--train-samples", "20", "--batch-size", "64"], capsys, tmp_path)
    assert code == 0
    assert "note: --batch-size 64 exceeds the 20 training samples" in err
    code, err = _train(["--mode", "reference", "--train-samples", "20", "--batch-size", "64"],
                       capsys, tmp_path / "ref")
    assert code == 2 and "no step would run. Use --batch-size 20 or less." in err
    assert err.count("\n") == 1


def test_test_set_smaller_than_the_classes(tmp_path, capsys):
    code, err = _train(["--test-samples", "1"], capsys, tmp_path)
    assert code == 0 and "note: the test set has 1 sample(s) for 10 classes" in err
    code, err = _train(["--test-samples", "50"], capsys, tmp_path / "b")
    assert code == 0 and "note:" not in err


# ---------------------------------------------------------------- bad user files: exit 2, one line


def _write_bad(tmp_path, kind):
    """Write one kind of bad input; return the --dataset/--config arguments that use it."""
    f = tmp_path / "in"
    f.mkdir(exist_ok=True)
    ones = np.ones((6, 2))
    npz = {
        "object-X": dict(X=np.array([[1, 2]] * 6, dtype=object), y=np.arange(6) % 2),
        "object-y": dict(X=ones, y=np.array([0, 1, "a", None, 0, 1], dtype=object)),
        "object-xtr": dict(xtr=np.array([[1, 2]] * 4, dtype=object), ytr=np.arange(4) % 2,
                           xte=np.ones((2, 2)), yte=np.arange(2)),
        "complex-X": dict(X=ones * 1j, y=np.arange(6) % 2),
        "inf-X": dict(X=np.r_[[[1, np.inf]], ones[1:]], y=np.arange(6) % 2),
        "float-label": dict(X=ones, y=np.array([1.5, 0, 1, 0, 1, 0])),
        "nan-label": dict(X=ones, y=np.array([np.nan, 0, 1, 0, 1, 0])),
        "no-rows": dict(X=np.ones((0, 2)), y=np.zeros(0)),
        "xva-features": dict(xtr=np.ones((4, 2)), ytr=np.arange(4) % 2, xva=np.ones((2, 3)),
                             yva=np.arange(2), xte=np.ones((2, 2)), yte=np.arange(2)),
    }
    if kind in npz:
        np.savez(f / "d.npz", **npz[kind])
        return ["--dataset", str(f / "d.npz")]
    if kind == "folder-named-npz":
        (f / "d.npz").mkdir()
        return ["--dataset", str(f / "d.npz")]
    if kind in ("empty-csv", "binary-csv", "inf-csv"):
        (f / "d.csv").write_bytes({"empty-csv": b"", "binary-csv": bytes(range(256)),
                                   "inf-csv": b"1,inf,0\n3,4,1\n5,6,0\n"}[kind])
        return ["--dataset", str(f / "d.csv")]
    if kind == "mat-without-XY":
        from scipy.io import savemat

        savemat(f / "d.mat", {"A": np.ones(3)})
        return ["--dataset", str(f / "d.mat")]
    if kind == "data-dir-is-a-file":
        (f / "x").write_text("x")
        return ["--dataset", "mnist", "--data-dir", str(f / "x")]
    if kind == "data-dir-missing":
        return ["--dataset", "x.csv", "--data-dir", str(f / "nope")]
    if kind == "config-is-a-folder":
        return ["--config", str(f)]
    if kind == "config-binary":
        (f / "c.toml").write_bytes(bytes(range(256)))
        return ["--config", str(f / "c.toml")]
    if kind == "synthetic-too-big":
        return ["--dataset", "synthetic", "--synthetic-samples", "100000",
                "--synthetic-features", "100000000"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,msg", [
    ("object-X", "array 'X' holds Python objects (dtype object)"),
    ("object-y", "array 'y' holds Python objects"),
    ("object-xtr", "array 'xtr' holds Python objects"),
    ("complex-X", "features must be numbers, got dtype complex128"),
    ("inf-X", "1 infinite values"),
    ("float-label", "labels must be integers or strings, found 1.5"),
    ("nan-label", "labels must be integers or strings, found nan"),
    ("no-rows", "expected a non-empty (samples, features) array"),
    ("xva-features", "xtr and xva must be (samples, features) arrays with the same features"),
    ("folder-named-npz", "is a folder, not a data file"),
    ("empty-csv", "is empty"),
    ("binary-csv", "is not a number"),
    ("inf-csv", "1 infinite values"),
    ("mat-without-XY", "must hold variables 'X' and 'Y'"),
    ("data-dir-is-a-file", "--data-dir .* is a file"),
    ("data-dir-missing", "--data-dir .* does not exist"),
    ("config-is-a-folder", "is a folder. Pass a TOML file"),
    ("config-binary", "is not valid TOML"),
    ("synthetic-too-big", "does not fit in memory. Lower --synthetic-samples"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, kind, msg):
    import re

    code, err = _train(_write_bad(tmp_path, kind), capsys, tmp_path)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(msg if "*" in msg else re.escape(msg), err), err


# ---------------------------------------------------------------- no test sample in training


@pytest.mark.parametrize("reference", [False, True], ids=["stratified", "reference-shuffle"])
@pytest.mark.parametrize("n,test_size", [(97, 1 / 3), (100, 0.25), (31, 0.5), (12, 0.25)])
def test_no_test_sample_leaks_into_training(tmp_path, reference, n, test_size):
    """Every row carries its id in column 0: train and test ids must partition 0..n-1."""
    r = np.random.default_rng(n)
    y = np.arange(n) % 3
    X = np.c_[np.arange(n), r.random((n, 2))]
    np.savez(tmp_path / "ids.npz", X=X, y=y)
    rng = np.random.RandomState(5) if reference else np.random.default_rng(5)
    ds = load(str(tmp_path / "ids.npz"), rng=rng, normalize_how="none", test_size=test_size,
              reference=reference)
    tr, te = ds.X_train[:, 0].astype(int), ds.X_test[:, 0].astype(int)
    assert np.intersect1d(tr, te).size == 0
    assert np.array_equal(np.sort(np.r_[tr, te]), np.arange(n))
    assert tr.size == np.unique(tr).size and te.size == np.unique(te).size
    # labels travel with their rows (oracle: y of the id)
    assert np.array_equal(ds.classes[ds.y_train], y[tr])
    assert np.array_equal(ds.classes[ds.y_test], y[te])


def test_no_leak_through_the_cli_split_and_subsample(tmp_path):
    """The command line's split (load_dataset with the run's streams) and its subsamples."""
    from sparsemlp._rng import Streams
    from sparsemlp.cli.train import load_dataset
    from sparsemlp.training.config import TrainConfig

    n = 90
    np.savez(tmp_path / "ids.npz", X=np.c_[np.arange(n), np.zeros(n)], y=np.arange(n) % 3)
    for mode, extra in (("default", {}), ("reference", {}), ("default", dict(train_samples=40,
                                                                              test_samples=20))):
        cfg = TrainConfig(dataset=str(tmp_path / "ids.npz"), mode=mode, normalize="none",
                          hidden=4, batch_size=2, **extra).resolve()
        ds = load_dataset(cfg, Streams(cfg.seed, legacy=cfg.legacy_rng), training=False)
        tr, te = ds.X_train[:, 0].astype(int), ds.X_test[:, 0].astype(int)
        assert np.intersect1d(tr, te).size == 0, mode
        assert (tr.size, te.size) == ((40, 20) if extra else (60, 30))
