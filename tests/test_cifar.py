"""CIFAR-10 binary reader and search order, on small files in the official format written here."""

import re

import numpy as np
import pytest

from sparsemlp.cli.train import main
from sparsemlp.data import DataError, load
from sparsemlp.data.cifar import CIFAR10_TEST, CIFAR10_TRAIN, cifar10_dir, load_cifar10_dir, read_cifar_bin


def write_batch(path, images, labels):
    """The official layout, written byte by byte: label, then the R, G and B planes row-major."""
    with open(path, "wb") as fh:
        for img, lab in zip(images, labels, strict=True):
            fh.write(bytes([int(lab)]))
            for c in range(3):
                for r in range(32):
                    fh.write(bytes(int(v) for v in img[r, :, c]))  # HWC image -> CHW bytes


def make_dir(root, n=(3, 2, 4, 1, 2), n_test=3, seed=0):
    """A cifar-10-batches-bin folder with a few random HWC images per batch."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    truth = {}
    for name, k in zip(CIFAR10_TRAIN + CIFAR10_TEST, (*n, n_test), strict=True):
        imgs = rng.integers(0, 256, (k, 32, 32, 3), dtype=np.uint8)
        labs = rng.integers(0, 10, k)
        write_batch(d / name, imgs, labs)
        truth[name] = (imgs, labs)
    return d, truth


def test_reader_matches_the_written_images(tmp_path):
    d, truth = make_dir(tmp_path)
    X, y = read_cifar_bin(d / "data_batch_1.bin")
    imgs, labs = truth["data_batch_1.bin"]
    assert X.dtype == np.uint8 and X.shape == (3, 3072)
    np.testing.assert_array_equal(y, labs)
    np.testing.assert_array_equal(X.reshape(-1, 3, 32, 32), imgs.transpose(0, 3, 1, 2))
    # pixel (row 5, col 7) of the green plane of image 2
    assert X[2, 1024 + 5 * 32 + 7] == imgs[2, 5, 7, 1]



def test_reader_labels_are_int64_and_unreadable_files_name_the_fix(tmp_path):
    d, _ = make_dir(tmp_path)
    assert read_cifar_bin(d / "test_batch.bin")[1].dtype == np.int64  # the documented dtype
    for bad in (tmp_path / "missing.bin", d):  # no such file; a folder
        with pytest.raises(DataError, match=rf"^{re.escape(str(bad))} cannot be read \(.+\)\. "
                                            r"Check the file or replace it\.$"):
            read_cifar_bin(bad)

def test_load_concatenates_batches_in_order(tmp_path):
    d, truth = make_dir(tmp_path)
    Xtr, ytr, Xte, yte = load_cifar10_dir(d)
    assert Xtr.shape == (12, 3072) and Xte.shape == (3, 3072)
    np.testing.assert_array_equal(ytr, np.concatenate([truth[n][1] for n in CIFAR10_TRAIN]))
    np.testing.assert_array_equal(yte, truth["test_batch.bin"][1])
    np.testing.assert_array_equal(Xtr[3:5].reshape(2, 3, 32, 32),
                                  truth["data_batch_2.bin"][0].transpose(0, 3, 1, 2))


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPARSEMLP_CIFAR10", raising=False)
    d, _ = make_dir(tmp_path / "given")
    assert cifar10_dir(tmp_path / "given") == str(d)  # the subfolder of --data-dir
    assert cifar10_dir(d) == str(d)  # or the folder itself
    monkeypatch.setenv("SPARSEMLP_CIFAR10", str(tmp_path / "given"))
    assert cifar10_dir(None) == str(d)
    monkeypatch.delenv("SPARSEMLP_CIFAR10")
    c, _ = make_dir(tmp_path / "cache")
    assert cifar10_dir(tmp_path / "nowhere") == str(c)  # the user cache last


def test_load_by_name_splits_and_scales(tmp_path):
    make_dir(tmp_path)
    ds = load("cifar10", data_dir=str(tmp_path), rng=np.random.default_rng(0),
              normalize_how="minmax")
    assert ds.X_train.shape == (12, 3072) and ds.X_test.shape == (3, 3072)
    assert ds.X_train.min() >= 0 and ds.X_train.max() <= 1


def test_missing_folder_error_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPARSEMLP_CIFAR10", raising=False)
    with pytest.raises(DataError, match="no folder with data_batch_1.bin.*--data-dir"):
        load("cifar10", data_dir=str(tmp_path), rng=np.random.default_rng(0))



def test_missing_folder_error_lists_the_files_and_the_folders_searched(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPARSEMLP_CACHE", str(cache))
    monkeypatch.delenv("SPARSEMLP_CIFAR10", raising=False)
    given = tmp_path / "given"
    files = ("data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, "
             "data_batch_5.bin, test_batch.bin")
    searched = f"{given}, {given}/cifar-10-batches-bin, {cache}, {cache}/cifar-10-batches-bin"
    with pytest.raises(DataError) as e:
        cifar10_dir(given)
    assert str(e.value).startswith(f"cifar10: no folder with {files} (searched {searched}). "
                                   "Download cifar-10-binary.tar.gz from https://")


def test_a_missing_batch_is_named(tmp_path):
    d, _ = make_dir(tmp_path)
    (d / "data_batch_4.bin").unlink()
    with pytest.raises(DataError, match=rf"^cifar10: {re.escape(str(d / 'data_batch_4.bin'))} is "
                                        r"missing\. Download cifar-10-binary\.tar\.gz from "):
        load_cifar10_dir(d)

@pytest.mark.parametrize("damage,match", [
    (lambda p: p.write_bytes(p.read_bytes()[:-10]), "whole number"),
    (lambda p: p.write_bytes(b""), "whole number"),
    (lambda p: p.write_bytes(bytes([10]) + p.read_bytes()[1:]), "label 10"),
])
def test_corrupt_files(tmp_path, damage, match):
    d, _ = make_dir(tmp_path)
    damage(d / "data_batch_3.bin")
    with pytest.raises(DataError, match=match):
        load_cifar10_dir(d)


def test_cli_trains_on_it_and_fails_cleanly_without(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPARSEMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPARSEMLP_CIFAR10", raising=False)
    assert main(["--dataset", "cifar10", "--data-dir", str(tmp_path), "-q"]) == 2
    assert "cifar10: no folder" in capsys.readouterr().err
    make_dir(tmp_path)
    assert main(["--dataset", "cifar10", "--data-dir", str(tmp_path), "--hidden", "16",
                 "--epsilon", "2", "--epochs", "1", "--out", str(tmp_path / "run"), "-q"]) == 0
