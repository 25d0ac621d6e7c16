"""Downloads against a local HTTP server on 127.0.0.1: checksums, errors, nothing partial, search order."""

import functools
import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import pytest
from test_data import IDX_FILES, tiny_idx_set

from sparsemlp.data import download, load
from sparsemlp.data.download import DataError, cache_dir, fashion_mnist_dir, fetch


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Short(http.server.BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 10, hangs up."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")

    def log_message(self, *args):
        pass


def _serve(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return httpd


@pytest.fixture
def www(tmp_path):
    """(folder served, base URL) of a server on 127.0.0.1 with a tiny gzip IDX set."""
    root = tmp_path / "www"
    tiny_idx_set(root)
    httpd = _serve(functools.partial(_Quiet, directory=str(root)))
    yield root, f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Cache in tmp_path; no proxies, no system copy, no env overrides."""
    for v in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "SPARSEMLP_FASHION_MNIST", "SPARSEMLP_FASHION_MNIST_URL"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("SPARSEMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "FASHION_DIRS", ())
    return tmp_path / "cache" / "fashion-mnist"


def _md5s(root):
    return {f"{s}.gz": hashlib.md5((root / f"{s}.gz").read_bytes()).hexdigest() for s in IDX_FILES}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cache_dir_order(monkeypatch, tmp_path):
    assert cache_dir("x") == str(tmp_path / "cache" / "x")
    monkeypatch.delenv("SPARSEMLP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == str(tmp_path / "xdg" / "sparsemlp")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("fashion-mnist") == str(tmp_path / "home" / ".cache" / "sparsemlp" / "fashion-mnist")


def test_fetch_ok(www, cache):
    root, url = www
    name = "t10k-labels-idx1-ubyte.gz"
    dest = fetch(url + name, cache / name, md5=_md5s(root)[name], progress=False)
    assert open(dest, "rb").read() == (root / name).read_bytes()
    assert os.listdir(cache) == [name]
    assert download.file_md5(dest) == _md5s(root)[name]


def test_download_then_load_from_cache(www, cache, monkeypatch):
    root, url = www
    monkeypatch.setattr(download, "FASHION_MNIST_MD5", _md5s(root))
    ds = load("fashion-mnist", rng=np.random.default_rng(0), download_url=url, progress=False,
              dtype=np.float32)
    assert (ds.X_train.shape, ds.X_test.shape, ds.X_train.dtype) == ((30, 12), (12, 12), np.float32)
    assert sorted(os.listdir(cache)) == sorted(f"{s}.gz" for s in IDX_FILES)
    # second time: found in the cache, no network (downloading off, server address unused)
    again = load("fashion-mnist", rng=np.random.default_rng(0), download=False)
    np.testing.assert_array_equal(again.X_train.astype(np.float32), ds.X_train)


def test_only_missing_files_are_fetched(www, cache, monkeypatch):
    root, url = www
    md5 = _md5s(root)
    cache.mkdir(parents=True)
    for s in IDX_FILES[:2]:  # already cached; not on the server any more
        os.replace(root / f"{s}.gz", cache / f"{s}.gz")
    assert fashion_mnist_dir(url=url, progress=False, md5=md5) == str(cache)
    assert len(os.listdir(cache)) == 4


def test_env_url(www, cache, monkeypatch):
    root, url = www
    monkeypatch.setenv("SPARSEMLP_FASHION_MNIST_URL", url)
    assert fashion_mnist_dir(progress=False, md5=_md5s(root)) == str(cache)


def test_checksum_mismatch_leaves_nothing(www, cache):
    root, url = www
    md5 = dict(_md5s(root), **{"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(DataError) as e:
        fashion_mnist_dir(url=url, progress=False, md5=md5)
    msg = str(e.value)
    assert f"{url}train-images-idx3-ubyte.gz" in msg and "0" * 32 in msg
    assert _md5s(root)["train-images-idx3-ubyte.gz"] in msg
    assert "--data-dir" in msg and "apt-get install dataset-fashion-mnist" in msg and "\n" not in msg
    assert os.listdir(cache) == []


def test_unreachable_server(cache):
    url = f"http://127.0.0.1:{_free_port()}/"
    with pytest.raises(DataError, match=f"download of {url}train-images-idx3-ubyte.gz failed .*"
                                        "nothing was saved. Pass --data-dir DIR") as e:
        load("fashion-mnist", rng=np.random.default_rng(0), download_url=url, progress=False)
    assert "refused" in str(e.value).lower()
    assert os.listdir(cache) == []


def test_http_404(www, cache):
    _, url = www
    with pytest.raises(DataError, match="HTTP Error 404"):
        fetch(url + "nope.gz", cache / "nope.gz", md5="0" * 32, progress=False)
    assert os.listdir(cache) == []


def test_truncated_transfer(cache):
    httpd = _serve(_Short)
    try:
        with pytest.raises(DataError, match="failed \\(connection closed after 10 of 1000 bytes\\)"):
            fetch(f"http://127.0.0.1:{httpd.server_port}/x", cache / "x", md5="0" * 32,
                  progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert os.listdir(cache) == []


def test_timeout(cache):
    with socket.socket() as s:  # accepts connections (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with pytest.raises(DataError, match="timed out"):
            fetch(f"http://127.0.0.1:{s.getsockname()[1]}/x", cache / "x", md5="0" * 32,
                  progress=False, timeout=0.2)
    assert os.listdir(cache) == []


def test_search_order(tmp_path, cache, monkeypatch):
    dirs = {k: tmp_path / k for k in ("given", "env", "system")}
    for d in (*dirs.values(), cache):
        tiny_idx_set(d)
    monkeypatch.setenv("SPARSEMLP_FASHION_MNIST", str(dirs["env"]))
    monkeypatch.setattr(download, "FASHION_DIRS", (str(dirs["system"]),))
    assert fashion_mnist_dir(str(dirs["given"]), download=False) == str(dirs["given"])
    assert fashion_mnist_dir(str(tmp_path / "empty"), download=False) == str(dirs["env"])
    monkeypatch.delenv("SPARSEMLP_FASHION_MNIST")
    assert fashion_mnist_dir(download=False) == str(dirs["system"])
    monkeypatch.setattr(download, "FASHION_DIRS", ())
    assert fashion_mnist_dir(download=False) == str(cache)


def test_not_found_and_download_off(tmp_path, cache):
    tiny_idx_set(tmp_path / "partial")
    os.remove(tmp_path / "partial" / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="no folder with all four IDX files .*partial.*downloading "
                                        "is off. Pass --data-dir DIR"):
        load("fashion-mnist", rng=np.random.default_rng(0), data_dir=str(tmp_path / "partial"),
             download=False)


def test_unwritable_cache(www, monkeypatch, tmp_path):
    _, url = www
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SPARSEMLP_CACHE", str(tmp_path / "file"))  # a file, not a folder
    with pytest.raises(DataError, match="Set SPARSEMLP_CACHE to a writable folder"):
        fashion_mnist_dir(url=url, progress=False)
