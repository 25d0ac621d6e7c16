"""Feature scaling, label checks and the label map, against hand-worked values and NumPy formulas."""

import logging

import numpy as np
import pytest

from sparsemlp.data import DataError, preprocessing
from sparsemlp.data.preprocessing import (
    Preprocessing,
    Scaling,
    check_features,
    check_labels,
    describe_classes,
    encode_labels,
)

# -- Scaling --------------------------------------------------------------------------------

X3 = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])


def test_zscore_and_minmax_by_hand():
    """Column 0 is 1, 3, 5: mean 3, std sqrt(8/3), min 1, max 5; column 1 is constant."""
    z = Scaling.fit(X3, "zscore")
    np.testing.assert_allclose(z.shift, [3.0, 5.0, 5.0])
    np.testing.assert_allclose(z.scale, [np.sqrt(8 / 3), 1.0, np.sqrt(26 / 3)])
    np.testing.assert_allclose(z.apply(X3)[:, 0], np.array([-2.0, 0.0, 2.0]) / np.sqrt(8 / 3))
    assert (z.apply(X3)[:, 1] == 0).all()
    r = Scaling.fit(X3, "zscore", reference=True)  # the original's std + 1e-4, even if 0
    np.testing.assert_allclose(r.scale, [np.sqrt(8 / 3) + 1e-4, 1e-4, np.sqrt(26 / 3) + 1e-4])
    m = Scaling.fit(X3, "minmax")
    np.testing.assert_array_equal(m.shift, [1.0, 5.0, 2.0])
    np.testing.assert_array_equal(m.scale, [4.0, 1.0, 7.0])
    np.testing.assert_array_equal(m.apply(X3), [[0, 0, 0], [0.5, 0, 2 / 7], [1, 0, 1]])
    for sc in (z, r, m):
        assert sc.shift.dtype == sc.scale.dtype == np.float64 and sc.n_features == 3


def test_statistics_of_integers_are_float64():
    """uint8 sums would wrap around: 200 + 100 is 44 in uint8, the mean of both 150."""
    X = np.array([[200], [100]], dtype=np.uint8)
    z = Scaling.fit(X, "zscore")
    assert (z.shift.tolist(), z.scale.tolist()) == ([150.0], [50.0])
    m = Scaling.fit(X, "minmax")
    assert (m.shift.tolist(), m.scale.tolist()) == ([100.0], [100.0])
    assert m.apply(X).tolist() == [[1.0], [0.0]]


def test_statistics_of_float32_are_taken_in_float64():
    """1e4 + U(0, 1) in float32: a float32 standard deviation is off in the third digit."""
    X = (1e4 + np.random.default_rng(0).random((1000, 2))).astype(np.float32)
    z = Scaling.fit(X, "zscore")
    np.testing.assert_allclose(z.shift, X.astype(np.float64).mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(z.scale, X.astype(np.float64).std(axis=0), rtol=1e-12)


@pytest.mark.parametrize("how", ["zscore", "minmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block", [1, 5, 7, 1 << 20])
def test_apply_in_blocks_is_the_float64_formula_then_cast(monkeypatch, how, dtype, block):
    r = np.random.default_rng(1)
    X = (r.random((11, 3)) * 1e3).astype(np.float32)
    sc = Scaling.fit(X, how)
    want = ((X.astype(np.float64) - sc.shift) / sc.scale).astype(dtype)
    monkeypatch.setattr(preprocessing, "_BLOCK", block)  # block // 3 rows per block
    got = sc.apply(X, dtype)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


def test_none_scaling_returns_the_data_itself_when_it_fits():
    sc = Scaling.fit(X3, "none")
    assert (sc.how, sc.shift, sc.scale, sc.n_features) == ("none", None, None, None)
    assert sc.apply(X3) is X3
    f = sc.apply(np.asfortranarray(X3), np.float32)
    assert f.dtype == np.float32 and f.flags.c_contiguous and (f == X3).all()


def test_scaling_errors():
    with pytest.raises(DataError) as info:
        Scaling.fit(X3, "l2")
    assert str(info.value) == "normalize must be 'zscore', 'minmax' or 'none'. Got 'l2'."
    with pytest.raises(DataError) as info:
        Scaling.fit(X3, "minmax").apply(np.ones((2, 4)))
    assert str(info.value) == ("the data has 4 features but the scaling statistics are for 3. "
                               "Use data with the same features.")


# -- Preprocessing in a checkpoint ----------------------------------------------------------


@pytest.mark.parametrize("classes", [np.array([3, 7]), np.array(["cat", "dog"])])
@pytest.mark.parametrize("how", ["zscore", "none"])
def test_preprocessing_survives_an_npz_file(tmp_path, classes, how):
    pre = Preprocessing(classes, Scaling.fit(X3, how))
    arrays = pre.state_dict(prefix="p/")
    want = {"p/classes", "p/normalize"} | ({"p/shift", "p/scale"} if how != "none" else set())
    assert set(arrays) == want
    np.savez(tmp_path / "s.npz", **arrays, other=np.zeros(2))
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        back = Preprocessing.from_state_dict(dict(z), prefix="p/")
    assert back.classes.tolist() == classes.tolist() and back.scaling.how == how
    np.testing.assert_array_equal(back.scaling.apply(X3), pre.scaling.apply(X3))
    if how != "none":  # statistics stored in another dtype come back as float64
        assert back.scaling.shift.dtype == back.scaling.scale.dtype == np.float64
        arrays32 = {k: (v.astype(np.float32) if k.endswith(("shift", "scale")) else v)
                    for k, v in arrays.items()}
        sc32 = Preprocessing.from_state_dict(arrays32, prefix="p/").scaling
        assert sc32.shift.dtype == sc32.scale.dtype == np.float64
    assert Preprocessing.from_state_dict(dict(arrays), prefix="q/") is None
    assert Preprocessing.from_state_dict({"other": 1}) is None
    assert set(pre.state_dict()) == {k.replace("p/", "data.") for k in want}


# -- check_features -------------------------------------------------------------------------


def test_features_are_numeric_2d_per_sample():
    X = np.arange(24).reshape(2, 3, 4)  # images: one row per sample
    assert check_features(X, "d").tolist() == [list(range(12)), list(range(12, 24))]
    b = check_features(np.array([[True, False]]), "d")
    assert b.dtype == np.uint8 and b.tolist() == [[1, 0]]
    x = np.ones((2, 2), np.float32)
    assert check_features(x, "d") is not None and check_features(x, "d").dtype == np.float32


@pytest.mark.parametrize("X,msg", [
    (np.ones(4), "d: features have shape (4,); expected a non-empty (samples, features) array."),
    (np.ones((0, 3)), "d: features have shape (0, 3); expected a non-empty (samples, features) "
                      "array."),
    (np.ones((3, 0)), "d: features have shape (3, 0); expected a non-empty (samples, features) "
                      "array."),
    (np.array([["a"]]), "d: features must be numbers, got dtype <U1. Convert them to a numeric "
                        "array (e.g. X.astype(float)) before saving."),
    (np.array([[1j]]), "d: features must be numbers, got dtype complex128. Convert them to a "
                       "numeric array (e.g. X.astype(float)) before saving."),
    (np.array([[np.nan, np.inf], [1, np.nan]]),
     "d features contains 2 NaN and 1 infinite values. Remove or impute them (e.g. "
     "sklearn.impute.SimpleImputer) before training."),
])
def test_bad_features(X, msg):
    with pytest.raises(DataError) as info:
        check_features(X, "d")
    assert str(info.value) == msg


# -- check_labels ---------------------------------------------------------------------------


@pytest.mark.parametrize("y,want", [
    (np.array([[1], [2], [3]]), [1, 2, 3]),  # a column vector
    (np.array([[1, 2, 3]]), [1, 2, 3]),  # a row vector
    (np.array([[[1, 2, 3]]]), [1, 2, 3]),  # any shape of three labels
    (np.array([1, 2, 3], np.uint8), [1, 2, 3]),
    (np.array([1.0, -2.0, 2.0 ** 53]), [1, -2, 2 ** 53]),
    (np.array([b"a", b"bc", b"a"]), ["a", "bc", "a"]),
    (np.array(["a", "bc", "a"]), ["a", "bc", "a"]),
    (np.array([True, False, True]), [True, False, True]),
    ([4, 5, 6], [4, 5, 6]),
])
def test_labels_are_integers_or_strings(y, want):
    got = check_labels(y, 3, "d")
    assert got.ndim == 1 and got.tolist() == want
    kind = {"i": "i", "u": "i", "f": "i", "S": "U", "U": "U", "b": "b"}[np.asarray(y).dtype.kind]
    assert got.dtype.kind == kind and (kind != "i" or got.dtype == np.int64)


@pytest.mark.parametrize("y,bad", [
    (np.array([1.0, 2.5, 3.5]), "2.5"),
    (np.array([1.0, np.nan, 2.0]), "nan"),
    (np.array([np.inf, 1.0, 2.0]), "inf"),
    (np.array([1.0, 2.0 ** 53 + 2, 3.0]), "9007199254740994.0"),  # no longer exact in float64
    (np.array([1, "a", None], dtype=object), "1"),
])
def test_labels_that_are_not_whole_numbers_or_strings(y, bad):
    with pytest.raises(DataError) as info:
        check_labels(y, 3, "d")
    assert str(info.value) == (f"d: labels must be integers or strings, found {bad} (dtype "
                               f"{y.dtype}). Give every sample its class as a whole number.")


def test_empty_labels_of_another_dtype_name_the_dtype():
    with pytest.raises(DataError, match="found dtype\\('O'\\) \\(dtype object\\)"):
        check_labels(np.array([], dtype=object), 0, "d")


@pytest.mark.parametrize("y,shape", [(np.arange(4), "(4,)"), (np.ones((3, 2)), "(3, 2)")])
def test_labels_of_the_wrong_shape(y, shape):
    with pytest.raises(DataError) as info:
        check_labels(y, 3, "d")
    assert str(info.value) == (f"d: 3 rows of features but labels of shape {shape}. Give one "
                               "class label per row.")


# -- the label map --------------------------------------------------------------------------


@pytest.mark.parametrize("classes,text", [
    ([0, 5, 9], "{0, 5, 9}"),
    (["a", "b"], "{'a', 'b'}"),
    (np.arange(8), "{0, 1, 2, 3, 4, 5, 6, 7}"),
    (np.arange(9), "{0, 1, 2, 3, 4, 5, ..., 8}"),
    (np.arange(20), "{0, 1, 2, 3, 4, 5, ..., 19}"),
])
def test_describe_classes(classes, text):
    assert describe_classes(classes) == text


def test_describe_classes_limit():
    assert describe_classes(range(5), limit=4) == "{0, 1, ..., 4}"
    assert describe_classes(range(4), limit=4) == "{0, 1, 2, 3}"


@pytest.mark.parametrize("labels", [np.array([7, -1, 3]), np.array(["b", "c", "a"])])
def test_encoding_is_the_index_in_the_sorted_labels(labels):
    r = np.random.default_rng(0)
    ytr, yte = labels[r.integers(0, 3, 20)], labels[r.integers(0, 3, 7)]
    ytr[:3] = labels  # every class in training
    classes, etr, ete = encode_labels("d", ytr, yte)
    assert classes.tolist() == sorted(labels.tolist())
    index = {c: i for i, c in enumerate(sorted(labels.tolist()))}  # oracle
    assert etr.tolist() == [index[v] for v in ytr.tolist()]
    assert ete.tolist() == [index[v] for v in yte.tolist()]
    assert etr.dtype == ete.dtype == np.int64
    c2, e2, none = encode_labels("d", ytr)
    assert c2.tolist() == classes.tolist() and e2.tolist() == etr.tolist() and none is None


def test_a_models_label_map_is_used_as_it_is():
    classes, etr, ete = encode_labels("d", np.array([9, 9]), np.array([2]),
                                      classes=np.array([2, 5, 9]))
    assert (classes.tolist(), etr.tolist(), ete.tolist()) == ([2, 5, 9], [2, 2], [0])
    with pytest.raises(DataError) as info:
        encode_labels("d", np.array([9, 4]), np.array([3, 4]), classes=np.array([2, 5, 9]))
    assert str(info.value) == ("d has label(s) {3, 4} that the model never saw (its classes are "
                               "{2, 5, 9}). Remove those samples or evaluate a model trained on "
                               "them.")
    # strings against a numeric label map (or the reverse): every label is unknown
    with pytest.raises(DataError, match="^d has label\\(s\\) \\{'2', 'x'\\} that the model"):
        encode_labels("d", np.array(["x", "2", "x"]), classes=np.array([2, 5]))
    with pytest.raises(DataError, match="^d has label\\(s\\) \\{2\\} that the model never saw "
                                        "\\(its classes are \\{'2', 'x'\\}\\)"):
        encode_labels("d", np.array([2]), classes=np.array(["2", "x"]))


def test_supervised_label_rules():
    with pytest.raises(DataError) as info:
        encode_labels("d", np.array([4, 4]))
    assert str(info.value) == ("d has a single class ({4}) in its training labels; "
                               "classification needs at least 2. Check the label column or file.")
    with pytest.raises(DataError) as info:
        encode_labels("d", np.array([1, 2]), np.array([3, 1, 0]))
    assert str(info.value) == ("d: the test labels {0, 3} never occur in the training labels "
                               "{1, 2}, so the model could never predict them. Remove those test "
                               "samples or add training samples of those classes.")
    with pytest.raises(DataError, match="the test labels \\{'1'\\} never occur"):
        encode_labels("d", np.array([1, 2]), np.array(["1"]))


def test_unsupervised_labels_take_every_class_of_both_parts():
    classes, etr, ete = encode_labels("d", np.array([4, 4]), np.array([1, 9]), supervised=False)
    assert (classes.tolist(), etr.tolist(), ete.tolist()) == ([1, 4, 9], [1, 1], [0, 2])


def test_the_label_map_is_announced_only_when_it_changes_labels(caplog):
    with caplog.at_level(logging.INFO, logger="sparsemlp.data"):
        encode_labels("d", np.array([0, 1, 2, 1]))
        assert caplog.records == []
        encode_labels("d", np.array([1, 2]))
    assert [r.getMessage() for r in caplog.records] == [
        "d: labels {1, 2} -> classes 0..1 (outputs and per-class results use the original "
        "labels)"]
