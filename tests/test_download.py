"""Downloads against a local HTTP server on 127.0.0.1: checksums, errors, nothing partial, search order."""

import functools
import hashlib
import http.server
import os
import re
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from test_data import IDX_FILES, tiny_idx_set
from tqdm import tqdm

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


class _NoLength(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0 without Content-Length: the body ends when the server hangs up."""

    body = bytes(range(256)) * 300  # 76800 bytes: more than one read

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

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


@pytest.fixture(autouse=True)
def _tqdm_lock(monkeypatch):
    """A process-local lock for the progress bars. tqdm's default lock holds a semaphore that
    forked processes share, and a bar that fails while drawing (a mutant) never releases it:
    every later fork of mutation testing would then hang instead of failing."""
    monkeypatch.setattr(tqdm, "_lock", threading.RLock(), raising=False)


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
    with pytest.raises(DataError, match=r"^cannot write the download of .+ to .+: .+\. "
                                        r"Set SPARSEMLP_CACHE to a writable folder\.$"):
        fashion_mnist_dir(url=url, progress=False)


def test_progress_bar_on_stderr_by_default_removed_when_done(www, cache, capsys):
    root, url = www
    data = bytes(range(256)) * 3907  # 1000192 bytes = 976.75 KiB, 16 reads of 64 KiB
    (root / "big.bin").write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    assert fetch(url + "big.bin", cache / "big.bin", md5=md5) == str(cache / "big.bin")
    err = capsys.readouterr().err
    # tqdm's first display: named after the file, the total in KiB (1024-byte units), bytes/s
    assert re.search(r"\rbig\.bin: +0%\| +\| 0\.00/977k \[00:00<\?, \?B/s\]", err), repr(err)
    assert err.endswith("\r") and "\n" not in err  # cleared, no line left behind
    assert (cache / "big.bin").read_bytes() == data
    fetch(url + "big.bin", cache / "quiet.bin", md5=md5, progress=False)
    assert capsys.readouterr().err == ""
    assert (cache / "quiet.bin").read_bytes() == data


def test_fashion_download_shows_progress_unless_asked_not_to(www, cache, capsys, monkeypatch,
                                                              tmp_path):
    root, url = www
    assert fashion_mnist_dir(url=url, md5=_md5s(root)) == str(cache)
    err = capsys.readouterr().err
    assert all(f"\r{s}.gz: " in err for s in IDX_FILES), repr(err)
    monkeypatch.setenv("SPARSEMLP_CACHE", str(tmp_path / "cache2"))
    assert fashion_mnist_dir(url=url, md5=_md5s(root), progress=False) == \
        str(tmp_path / "cache2" / "fashion-mnist")
    assert capsys.readouterr().err == ""


def test_no_content_length_is_read_to_the_end(cache):
    httpd = _serve(_NoLength)
    try:
        fetch(f"http://127.0.0.1:{httpd.server_port}/x", cache / "x",
              md5=hashlib.md5(_NoLength.body).hexdigest(), progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (cache / "x").read_bytes() == _NoLength.body


def test_the_bytes_go_to_a_hidden_part_file_beside_dest(www, cache):
    root, _ = www
    seen = []

    class Sees(_Quiet):  # what the download's folder holds when the request arrives
        def do_GET(self):
            seen.append(os.listdir(cache))
            super().do_GET()
    httpd = _serve(functools.partial(Sees, directory=str(root)))
    name = "t10k-labels-idx1-ubyte.gz"
    try:
        fetch(f"http://127.0.0.1:{httpd.server_port}/{name}", cache / name,
              md5=_md5s(root)[name], progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(seen) == 1 and len(seen[0]) == 1, seen
    assert re.fullmatch(rf"\.{re.escape(name)}\.\w+\.part", seen[0][0]), seen
    assert os.listdir(cache) == [name]


def test_a_network_failure_reports_its_reason(cache, monkeypatch):
    def refuse(url, timeout):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    dest = cache / "x.gz"
    with pytest.raises(DataError) as e:
        fetch("http://example.invalid/x.gz", dest, md5="0" * 32, progress=False)
    assert str(e.value) == ("download of http://example.invalid/x.gz failed ([Errno 111] "
                            "Connection refused); nothing was saved. Check the network "
                            f"connection, or download the file by hand to {dest}.")
    assert os.listdir(cache) == []


def test_uncompressed_files_and_the_fashion_mnist_subfolder_are_found(tmp_path):
    tiny_idx_set(tmp_path / "raw", gz=False)
    assert fashion_mnist_dir(str(tmp_path / "raw"), download=False) == str(tmp_path / "raw")
    tiny_idx_set(tmp_path / "data" / "fashion-mnist")
    assert fashion_mnist_dir(str(tmp_path / "data"), download=False) == \
        str(tmp_path / "data" / "fashion-mnist")


def test_missing_with_and_without_gz(tmp_path):
    (tmp_path / "a").write_bytes(b"")
    (tmp_path / "b.gz").write_bytes(b"")
    (tmp_path / "c").mkdir()  # a folder is not a file
    names = ["a", "b", "c", "d"]
    assert download._missing(str(tmp_path), names, gz=False) == ["b", "c", "d"]
    assert download._missing(str(tmp_path), names) == ["c", "d"]


def test_not_found_lists_the_folders_searched(tmp_path, cache):
    given = tmp_path / "given"
    with pytest.raises(DataError) as e:
        fashion_mnist_dir(str(given), download=False)
    assert str(e.value).startswith("fashion-mnist: no folder with all four IDX files (searched "
                                   f"{given}, {given}/fashion-mnist, {cache}) and downloading "
                                   "is off. Pass --data-dir DIR")


@pytest.mark.parametrize("gz", [True, False])
def test_cached_uncompressed_files_are_not_fetched_again(www, cache, tmp_path, gz):
    """The cache holds two files uncompressed, the server only the two others."""
    root, url = www
    tiny_idx_set(root, gz=False)  # the same arrays, uncompressed, beside the .gz files
    sfx = ".gz" if gz else ""
    md5 = {f"{s}{sfx}": hashlib.md5((root / f"{s}{sfx}").read_bytes()).hexdigest()
           for s in IDX_FILES}
    cache.mkdir(parents=True)
    for s in IDX_FILES[:2]:
        os.replace(root / s, cache / s)
        (root / f"{s}.gz").unlink()
    assert fashion_mnist_dir(url=url, progress=False, md5=md5) == str(cache)
    assert sorted(os.listdir(cache)) == sorted([*IDX_FILES[:2], *(s + sfx for s in IDX_FILES[2:])])


@pytest.mark.parametrize("sub", ["mirror", "mirror/", "idx/X", "idx/X/"])
def test_base_url_with_or_without_a_trailing_slash(www, cache, sub):
    """Only slashes are stripped from the base (a folder name ending in X keeps its X)."""
    root, url = www
    mirror = root / sub.rstrip("/")
    mirror.mkdir(parents=True)
    for s in IDX_FILES:
        os.replace(root / f"{s}.gz", mirror / f"{s}.gz")
    assert fashion_mnist_dir(url=url + sub, progress=False, md5=_md5s(mirror)) == str(cache)
