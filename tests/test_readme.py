"""Every code block of README.md runs: Python blocks in-process, shell commands as subprocesses.

What a snippet leaves undefined (``X_train``, ``y_train``, ``X_test``, ``X_train_01``,
``p_dense``, ``p_sparse``) is defined here from the built-in digits data. Shell commands run
in order, one fresh directory per block, with small overrides for speed (fewer epochs, fewer
AIS temperatures, smaller hidden layers for the 3000-unit reference net) and two stand-in
data sets: a tiny Fashion-MNIST of the official format (784 pixels, 10 classes) found through
``$SPARSEMLP_FASHION_MNIST``, and a ``COIL20.mat`` of the original's layout (``X``, ``Y``)
made from the digits. Installing the package and running the test suite itself are the only
commands skipped, each with its reason. A block (or command) that raises or exits non-zero
fails its test.
"""

import gzip
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
       "t10k-labels-idx1-ubyte")


def _blocks():
    """(language, code, first line) of every fenced block of the README."""
    text = README.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text[:m.start()].count("\n") + 1)
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def _commands(code):
    """Shell commands of a block: continuation lines joined, comments dropped, split at &&."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        cmd = []
        for word in shlex.split(line, comments=True):
            if word == "&&":
                out.append(cmd)
                cmd = []
            else:
                cmd.append(word)
        if cmd:
            out.append(cmd)
    return out


BLOCKS = _blocks()
SHELL = [(i, j, cmd) for i, (lang, code, _) in enumerate(BLOCKS) if lang == "bash"
         for j, cmd in enumerate(_commands(code))]


def _slow(cmd):
    """Commands left to ``-m slow``: plots (tests/test_plot.py covers them) and the
    1000-unit PCD-5 RBM. No later command of a block needs their output."""
    return cmd[:3] == ["python", "-m", "sparsemlp.plot"] or "--persistent" in cmd


def _id(i):
    return f"line{BLOCKS[i][2]}"


def test_every_block_is_python_or_bash():
    assert BLOCKS and {lang for lang, _, _ in BLOCKS} <= {"python", "bash"}, \
        [(lang, line) for lang, _, line in BLOCKS]


# ---------------------------------------------------------------- Python blocks


@pytest.fixture(scope="module")
def snippet_names():
    from sparsemlp.data import load

    ds = load("digits", rng=np.random.default_rng(0))
    raw = load("digits", rng=np.random.default_rng(0), normalize_how="minmax")
    rng = np.random.default_rng(1)
    n = 400  # a subset keeps the scikit-learn examples fast
    return {"X_train": ds.X_train[:n], "y_train": ds.y_train[:n], "X_test": ds.X_test,
            "y_test": ds.y_test, "X_train_01": raw.X_train[:n // 2],
            "p_dense": rng.dirichlet(np.ones(10), 50), "p_sparse": rng.dirichlet(np.ones(10), 50)}


@pytest.mark.parametrize("i", [i for i, b in enumerate(BLOCKS) if b[0] == "python"], ids=_id)
def test_python_block(i, snippet_names, tmp_path, monkeypatch):
    code = BLOCKS[i][1]
    if "sklearn" in code or "SparseMLPClassifier" in code or "SparseBernoulliRBM" in code:
        pytest.importorskip("sklearn", reason="the block needs scikit-learn")
    monkeypatch.chdir(tmp_path)  # files a block writes (layer0.csv) stay in tmp_path
    names = dict(snippet_names)
    if "X_train_01" in code:  # the RBM pipeline: as many labels as samples
        names["y_train"] = names["y_train"][:names["X_train_01"].shape[0]]
    exec(compile(code, f"{README}:{BLOCKS[i][2]}", "exec"), names)


# ---------------------------------------------------------------- shell commands


def _tiny_fashion(folder, n_train=300, n_test=100):
    """Four gzipped IDX files of the official layout: 28x28 uint8 images, labels 0..9."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    arrays = []
    for n in (n_train, n_test):
        y = np.arange(n) % 10
        X = rng.integers(0, 60, (n, 28, 28)) + (y * 20)[:, None, None]
        arrays += [X.astype(np.uint8), y.astype(np.uint8)]
    for name, a in zip(IDX, arrays):
        head = bytes([0, 0, 0x08, a.ndim]) + np.array(a.shape, ">u4").tobytes()
        (folder / f"{name}.gz").write_bytes(gzip.compress(head + a.tobytes()))


def _coil20_stand_in(path):
    """A .mat of COIL20's layout (X in [0, 1], Y labels from 1) made from the digits."""
    from scipy.io import savemat

    from sparsemlp.data import load_digits

    X, y = load_digits()
    savemat(path, {"X": X[:600] / 16.0, "Y": (y[:600] + 1)[:, None]})


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("readme")
    _tiny_fashion(base / "fashion-mnist")
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPARSEMLP_FASHION_MNIST=str(base / "fashion-mnist"),
               SPARSEMLP_CACHE=str(base / "cache"), MPLBACKEND="Agg")
    return {"base": base, "env": env, "blocks": {}}


def _plan(cmd):
    """(argv to run, or None and the reason for skipping)."""
    if cmd[0] == "pip":
        return None, ("installs the package: the tests run this worktree's sparsemlp "
                      "(PYTHONPATH) and must not change the environment")
    if cmd[:3] == ["python", "-m", "pytest"]:
        return None, "runs the test suite, which this test is part of"
    if cmd[0] != "python":
        raise AssertionError(f"README command {shlex.join(cmd)!r}: add a rule to test_readme.py")
    args = cmd[1:]
    target = args[args.index("--target") + 1] if "--target" in args else None
    if target is not None:  # a cross compiler and qemu, installed by .ci/run
        from sparsemlp.export._build import TARGETS

        t = TARGETS[target]
        missing = [x for x in (*t.compilers, *t.runner) if shutil.which(x) is None]
        if missing and os.environ.get("SPARSEMLP_REQUIRE_TOOLCHAINS") != "1":
            return None, f"needs {', '.join(missing)} (apt-get install gcc-arm-linux-gnueabihf " \
                         "gcc-aarch64-linux-gnu qemu-user)"
    if args[:2] != ["-m", "sparsemlp.train"] or "--print-config" in args:
        return [sys.executable, *args], None
    if "--resume" in args:  # the run was trained for 2 epochs: "extend" to 3
        # a checkpoint of the README's 50-epoch run -> the 2-epoch run's first one
        args = [re.sub(r"checkpoints/epoch-\d+$", "checkpoints/epoch-0001", a) for a in args]
        return [sys.executable, *args, *(["--epochs", "3"] if "--epochs" in args else [])], None
    extra = ["--epochs", "2", "--checkpoint-every", "1"]
    if "rbm" in args:
        extra += ["--ais-betas", "100"]
    if "reference" in args:
        extra = ["--epochs", "1"] + ([] if "rbm" in args else ["--hidden", "50", "50", "50"])
    return [sys.executable, *args, *extra], None


def _run_block_until(state, i, j):
    """Run commands 0..j of block i in its directory (once each); return command j's result."""
    env = state["env"]
    blk = state["blocks"].setdefault(i, {"done": {}})
    if "cwd" not in blk:
        blk["cwd"] = state["base"] / f"block{i}"
        blk["cwd"].mkdir()
        _coil20_stand_in(blk["cwd"] / "COIL20.mat")
    cmds = _commands(BLOCKS[i][1])
    for k in range(j + 1):
        if k in blk["done"] or (k < j and _slow(cmds[k])):
            continue
        argv, why = _plan(cmds[k])
        if argv is None:
            blk["done"][k] = ("skip", why)
            continue
        p = subprocess.run(argv, cwd=blk["cwd"], env=env, capture_output=True, text=True,
                           timeout=600)
        blk["done"][k] = ("ran", p)
    return blk["done"][j]


@pytest.mark.parametrize("i,j,cmd", [
    pytest.param(i, j, c, marks=[pytest.mark.slow] if _slow(c) else [],
                 id=f"{_id(i)}-{' '.join(c)[:60]}") for i, j, c in SHELL])
def test_shell_command(i, j, cmd, shell_env):
    kind, res = _run_block_until(shell_env, i, j)
    if kind == "skip":
        pytest.skip(f"README line {BLOCKS[i][2]}: {shlex.join(cmd)}: {res}")
    assert res.returncode == 0, (f"README line {BLOCKS[i][2]}: {shlex.join(res.args)} exited "
                                 f"{res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    earlier = [v for k, v in shell_env["blocks"][i]["done"].items() if k < j]
    assert all(kind == "skip" or r.returncode == 0 for kind, r in earlier)
