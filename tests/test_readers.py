"""The data-file readers against files written by hand from their formats' definitions (IDX
bytes, Madelon and csv text, .mat and .npz archives): values, dtypes and every refusal's full
message (the problem and the fix a user reads)."""

import gzip
import os
import pathlib
import re
import struct
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

from sparsemlp.data import DataError, readers

# IDX type codes and the big-endian struct format of one value (the format's definition)
IDX = {0x08: "B", 0x09: "b", 0x0B: "h", 0x0C: "i", 0x0D: "f", 0x0E: "d"}


def idx_file(path, code, shape, values=None, *, payload=None, gz=False):
    """An IDX file: bytes 0, 0, type code, number of dimensions; one big-endian uint32 per
    dimension; then the values, big-endian, row-major."""
    if payload is None:
        payload = struct.pack(">" + IDX[code] * len(values), *values)
    raw = bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape)
    raw += payload
    path = os.fspath(path) + (".gz" if gz else "")
    with open(path, "wb") as fh:
        fh.write(gzip.compress(raw) if gz else raw)
    return path


def message(fn, *args, **kw):
    with pytest.raises(DataError) as e:
        fn(*args, **kw)
    return str(e.value)


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("code", sorted(IDX))
def test_read_idx_every_type(tmp_path, code):
    values = [0, 1, 2, 3, 4, 5] if code == 0x08 else [-3, 1, 2, 3, 4, 5]
    if code in (0x0D, 0x0E):
        values = [v + 0.5 for v in values]
    a = readers.read_idx(idx_file(tmp_path / "a", code, (2, 3), values))
    assert a.shape == (2, 3)
    assert a.tolist() == [values[:3], values[3:]]


def test_read_idx_edge_shapes(tmp_path):
    # no dimension: one value (a scalar), as the header's empty product says
    a = readers.read_idx(idx_file(tmp_path / "s", 0x08, (), [7]))
    assert a.shape == () and int(a) == 7
    # a dimension of size 0: a header and no values
    assert readers.read_idx(idx_file(tmp_path / "e", 0x0D, (0,), [])).shape == (0,)
    # bytes after the values the header promises (e.g. padding) are not read
    p = idx_file(tmp_path / "p", 0x0E, (2,), payload=struct.pack(">2d", 1.5, -2.0) + b"\0" * 3)
    assert readers.read_idx(p).tolist() == [1.5, -2.0]


def test_read_idx_refusals(tmp_path):
    p = str(tmp_path / "f")
    missing = message(readers.read_idx, p)
    assert re.fullmatch(re.escape(p) + r" cannot be read: .*No such file.*\. Replace the file\.",
                        missing)
    with open(p + ".gz", "wb") as fh:
        fh.write(b"not gzip at all")
    assert re.fullmatch(re.escape(p) + r"\.gz cannot be read: .+\. Replace the file\.",
                        message(readers.read_idx, p + ".gz"))
    bad_magic = f"{p} is not an IDX file (bad magic number). Replace the file."
    one = struct.pack(">I", 1) + b"\x05"
    for raw in (b"\x00\x00\x08",  # shorter than the magic number
                b"\x01\x00\x08\x01" + one, b"\x00\x01\x08\x01" + one,  # first two bytes not 0
                b"\x00\x00\x07\x01" + one):  # no such type
        with open(p, "wb") as fh:
            fh.write(raw)
        assert message(readers.read_idx, p) == bad_magic, raw
    with open(p, "wb") as fh:  # two dimensions announced, one size written
        fh.write(b"\x00\x00\x08\x02" + struct.pack(">I", 3))
    assert message(readers.read_idx, p) == \
        f"{p} is truncated inside its header. Replace the file."
    for shape, code, values in (((3,), 0x0E, [1.0, 2.0]), ((), 0x08, [])):
        idx_file(p, code, shape, values)
        assert message(readers.read_idx, p) == \
            f"{p} is truncated: header promises {shape} values. Replace the file."


def _idx_dir(d, X_train, X_test, *, gz=(False, True, False, True)):
    os.makedirs(d, exist_ok=True)
    files = []
    for stem, a, z in zip(readers.IDX_FILES, (X_train, np.arange(len(X_train)) % 3, X_test,
                                               np.arange(len(X_test)) % 3), gz):
        a = np.asarray(a, np.uint8)
        files.append(idx_file(os.path.join(d, stem), 0x08, a.shape, a.ravel().tolist(), gz=z))
    return files


def test_load_idx_dir_flattens_and_converts(tmp_path):
    d = str(tmp_path)
    Xtr = np.arange(5 * 2 * 3).reshape(5, 2, 3) * 7 % 256
    Xte = np.arange(4 * 6).reshape(4, 6)  # images stored already flat
    _idx_dir(d, Xtr, Xte)
    out = readers.load_idx_dir(d)
    assert [a.dtype for a in out] == [np.float64, np.int64] * 2
    assert out[0].tolist() == Xtr.reshape(5, 6).tolist() and out[2].tolist() == Xte.tolist()
    assert out[1].tolist() == [0, 1, 2, 0, 1] and out[3].tolist() == [0, 1, 2, 0]
    raw = readers.load_idx_dir(d, dtype=None)
    assert raw[0].dtype == raw[2].dtype == np.uint8 and raw[1].dtype == np.int64
    assert raw[0].tolist() == out[0].tolist()
    f32 = readers.load_idx_dir(d, dtype=np.float32)
    assert f32[0].dtype == f32[2].dtype == np.float32 and f32[3].dtype == np.int64
    assert f32[2].tolist() == Xte.tolist()


def test_load_idx_dir_refusals(tmp_path):
    d = str(tmp_path)
    files = _idx_dir(d, np.zeros((5, 2, 2)), np.zeros((4, 2, 2)))
    os.remove(files[2])
    os.remove(files[3])
    assert message(readers.load_idx_dir, d) == (
        f"{d} lacks t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or .gz). Put all "
        "four IDX files in one folder.")
    files = _idx_dir(d, np.zeros(5), np.zeros((4, 2, 2)))  # images of one value each
    assert message(readers.load_idx_dir, d) == (
        f"{files[0]} holds images of shape (5,) but {files[1]} labels of shape (5,). Use image "
        "and label files of the same set.")


# ---------------------------------------------------------------- Madelon


def _madelon(d, train="1 2 3\n4 5 6\n7 8 9\n10 11 12\n", train_labels="-1\n1\n1\n-1\n",
             valid="0 0 1\n2 0 0\n", valid_labels="1\n-1\n"):
    os.makedirs(d, exist_ok=True)
    texts = (train, train_labels, valid, valid_labels)
    for name, text in zip(readers._MADELON, texts):
        with open(os.path.join(d, name), "w") as fh:
            fh.write(text)
    return [os.path.join(d, n) for n in readers._MADELON]


def test_load_madelon_values(tmp_path):
    _madelon(tmp_path)
    Xtr, ytr, Xte, yte = readers.load_madelon(tmp_path)
    assert Xtr.dtype == Xte.dtype == np.float64 and ytr.dtype == yte.dtype == np.int64
    assert Xtr.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
    assert Xte.tolist() == [[0, 0, 1], [2, 0, 0]]
    assert ytr.tolist() == [0, 1, 1, 0] and yte.tolist() == [1, 0]


def test_load_madelon_refusals(tmp_path):
    d = str(tmp_path)
    for p in _madelon(d):  # gzipped files do not count: the reader reads text
        with open(p, "rb") as src, gzip.open(p + ".gz", "wb") as dst:
            dst.write(src.read())
        os.remove(p)
    assert message(readers.load_madelon, d) == (
        f"{d} lacks madelon_train.data, madelon_train.labels, madelon_valid.data, "
        "madelon_valid.labels. Put the four Madelon files in one folder (--data-dir or "
        "SPARSEMLP_MADELON).")
    px, py = _madelon(d, train_labels="0\n1\n1\n0\n")[:2]
    assert message(readers.load_madelon, d) == (
        f"{py} must hold one label per line, each -1 or +1. Use the challenge's original "
        "labels file.")
    _madelon(d, train_labels="-1\n1\n1\n")
    assert message(readers.load_madelon, d) == (
        f"{px} has 4 rows but {py} has 3 labels. Use data and labels files of the same split.")
    _madelon(d, train="")
    assert message(readers.load_madelon, d) == \
        f"{px} is empty. Use the challenge's original data file."
    for path, kw, what in ((px, {"train": "1 2 3\n4 5\n"}, "data"),  # ragged rows
                           (py, {"train_labels": "-1\nyes\n1\n-1\n"}, "labels")):
        _madelon(d, **kw)
        try:  # NumPy's own reason, up to its advice after ';' (which does not apply here)
            np.loadtxt(path)
        except ValueError as exc:
            why = str(exc).split(";")[0]
        assert message(readers.load_madelon, d) == (
            f"{path} is not a whitespace-separated numeric table ({why}). Use the challenge's "
            f"original {what} file.")


# ---------------------------------------------------------------- csv


def _csv(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return str(p)


def test_read_csv_layouts(tmp_path):
    # a byte-order mark (spreadsheet export) before a first line of numbers: no header
    X, y = readers.read_csv(_csv(tmp_path, "\ufeff1,2,0\n3,4,1\n"))
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    # an indented comment before the header, a blank line and a comment between rows
    X, y = readers.read_csv(_csv(tmp_path, "  # exported\nf1,f2,label\n1,2,0\n\n# x\n3,4,1\n"))
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    # one feature and the label
    X, y = readers.read_csv(_csv(tmp_path, "5,0\n6,1\n"))
    assert X.tolist() == [[5], [6]] and y.tolist() == [0, 1]
    # the first column by its negative index
    X, y = readers.read_csv(_csv(tmp_path, "0,1,2\n1,3,4\n"), label_column=-3)
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    X, y = readers.read_csv(_csv(tmp_path, "1\t2\t0\n3\t4\t1\n"), delimiter="\t")
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]


def test_read_csv_label_column_out_of_range(tmp_path):
    p = _csv(tmp_path, "0,1,2\n1,3,4\n")
    for col in (3, -4):
        assert message(readers.read_csv, p, label_column=col) == (
            f"{p} has 3 columns, so label_column={col} does not leave a label and at least one "
            "feature. Choose another label column.")
    p = _csv(tmp_path, "1\n2\n", "one.csv")
    assert message(readers.read_csv, p) == (
        f"{p} has 1 columns, so label_column=-1 does not leave a label and at least one "
        "feature. Choose another label column.")


@pytest.mark.parametrize("text,delimiter,why", [
    # a byte-order mark is not a cell: the problem is on line 3
    ("\ufeff1,2,0\n3,4,1\n5,x,1\n", ",", "line 3, column 2: 'x' is not a number"),
    # the header, a blank line and an indented comment are skipped, a typo at a row's end found
    ("a,b,label\n1,2,0\n\n   # note\n3,4,12X\n", ",", "line 5, column 3: '12X' is not a number"),
    ("1,2,0\n3,4\n", ",", "line 2 has 2 cells but the first row has 3 (ragged rows)"),
    # a trailing tab leaves an empty last cell
    ("1\t2\t0\n3\t4\t\n", "\t", "line 2, column 3: '' is not a number"),
])
def test_read_csv_names_the_bad_cell(tmp_path, text, delimiter, why):
    p = _csv(tmp_path, text)
    assert message(readers.read_csv, p, delimiter=delimiter) == (
        f"{p}: {why}. Every row needs the same number of numeric cells.")


def test_read_csv_other_failures(tmp_path):
    p = str(tmp_path / "nope.csv")
    assert re.fullmatch(re.escape(p) + r" cannot be read: .*No such file.*\. Check the path\.",
                        message(readers.read_csv, p))
    p = _csv(tmp_path, "# only a comment\n\n")
    assert message(readers.read_csv, p) == \
        f"{p} is empty. Give a csv file with one sample per row."
    p = _csv(tmp_path, "a,b,label\n")
    assert message(readers.read_csv, p) == \
        f"{p} has a header but no data rows. Add one sample per row."
    # a number Python reads but NumPy does not: NumPy's reason, without its final period
    p = _csv(tmp_path, "1_0,2,0\n")
    try:
        np.loadtxt(p, delimiter=",")
    except ValueError as exc:
        why = str(exc).split(";")[0].rstrip(".")
    assert "1_0" in why
    assert message(readers.read_csv, p) == \
        f"{p}: {why}. Every row needs the same number of numeric cells."


# ---------------------------------------------------------------- .mat


def test_load_mat(tmp_path):
    from scipy.io import savemat

    p = str(tmp_path / "d.mat")
    X = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    savemat(p, {"X": sp.csc_matrix(X), "Y": np.array([[1], [2]])})
    got, Y = readers._load_mat(p)
    assert isinstance(got, np.ndarray) and got.tolist() == X.tolist()
    assert np.asarray(Y).ravel().tolist() == [1, 2]
    savemat(p, {"X": X})
    assert message(readers._load_mat, p) == f"{p} must hold variables 'X' and 'Y' (found ['X'])."
    with open(p, "wb") as fh:
        fh.write(b"not a mat file")
    assert re.fullmatch(re.escape(p) + r" is not a readable MATLAB \.mat file \(.+\)\. Re-save "
                        r"it with MATLAB's save or scipy\.io\.savemat\.",
                        message(readers._load_mat, p))


# ---------------------------------------------------------------- .npz


def test_load_npz_label_forms_and_validation_split(tmp_path):
    p = str(tmp_path / "d.npz")
    xtr = np.arange(12.0).reshape(3, 2, 2)
    xva = -np.arange(8.0).reshape(2, 2, 2)
    np.savez(p, xtr=xtr, ytr=np.array([[0, 1], [1, 0], [0, 1]]),  # one-hot, two classes
             xva=xva, yva=np.array([[0, 0, 1], [1, 0, 0]]),  # one-hot, three columns
             xte=np.ones((3, 4)), yte=np.array([[2], [0], [1]]))  # a column of labels
    X, y, Xte, yte = readers._load_npz(p)
    assert X.tolist() == np.vstack([xtr.reshape(3, 4), xva.reshape(2, 4)]).tolist()
    assert y.tolist() == [1, 0, 1, 2, 0] and yte.tolist() == [2, 0, 1]
    assert Xte.tolist() == np.ones((3, 4)).tolist()
    np.savez(p, X=np.ones((2, 2)), y=np.array([3, 4]))
    X, y = readers._load_npz(p)
    assert X.tolist() == [[1, 1], [1, 1]] and y.tolist() == [3, 4]


@pytest.mark.parametrize("xtr,xva", [(np.ones(3), np.ones(2)), (np.ones((3, 4)), np.ones((2, 5)))])
def test_load_npz_mismatched_validation_split(tmp_path, xtr, xva):
    p = str(tmp_path / "d.npz")
    np.savez(p, xtr=xtr, ytr=np.zeros(3), xva=xva, yva=np.zeros(2), xte=np.ones((1, 4)),
             yte=np.zeros(1))
    assert message(readers._load_npz, p) == (
        f"{p}: xtr and xva must be (samples, features) arrays with the same features; got "
        f"shapes {xtr.shape} and {xva.shape}. Save matching training and validation arrays.")


@pytest.mark.parametrize("key,what,dtype", [("X", "numbers", "float"), ("xtr", "numbers", "float"),
                                            ("y", "integers or strings", "int"),
                                            ("ytr", "integers or strings", "int")])
def test_load_npz_refuses_object_arrays(tmp_path, key, what, dtype):
    p = str(tmp_path / "d.npz")
    arrays = dict(X=np.ones((2, 2)), y=np.zeros(2)) if key in "Xy" else \
        dict(xtr=np.ones((2, 2)), ytr=np.zeros(2), xte=np.ones((1, 2)), yte=np.zeros(1))
    arrays[key] = np.array([{"a": 1}, None], dtype=object)
    np.savez(p, **arrays)
    assert message(readers._load_npz, p) == (
        f"{p}: array {key!r} holds Python objects (dtype object), which sparsemlp does not "
        f"unpickle. Save it as {what}, e.g. np.savez(..., {key}=np.asarray({key}, "
        f"dtype={dtype})).")


def test_load_npz_damaged_files(tmp_path):
    p = str(tmp_path / "d.npz")
    with open(p, "wb") as fh:
        fh.write(b"PK not really a zip")
    assert message(readers._load_npz, p) == \
        f"{p} is not a readable .npz file (not a zip archive). Re-save it with numpy.savez."
    header = b"not a header dict\n"
    with zipfile.ZipFile(p, "w") as z:  # a .npy member whose header NumPy cannot parse
        z.writestr("X.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        z.writestr("y.npy", b"")
    assert message(readers._load_npz, p) == (
        f"{p}: array 'X' cannot be read (Cannot parse header: {header.decode()!r}). Re-save it "
        "with numpy.savez.")
    np.savez(p, X=np.arange(64.0).reshape(8, 8), y=np.zeros(8))
    raw = bytearray(pathlib.Path(p).read_bytes())
    at = raw.index(np.arange(64.0)[40:41].tobytes())  # inside X's values
    raw[at] ^= 0xFF  # the member's CRC no longer matches
    pathlib.Path(p).write_bytes(bytes(raw))
    assert message(readers._load_npz, p) == (
        f"{p}: array 'X' cannot be read (Bad CRC-32 for file 'X.npy'). Re-save it with "
        "numpy.savez.")
