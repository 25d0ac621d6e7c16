"""The import rules of docs/ARCHITECTURE.md, checked by reading the source (ast), not by importing it."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sparsemlp"

# Floors, bottom first: a unit imports only from lower floors or from itself (docs/ARCHITECTURE.md).
FLOORS = {
    "_version": 0, "_validation": 0, "_parallel": 0, "_rng": 0,
    "_kernels": 1,
    "topology": 2, "data": 2,
    "nn": 3,
    "evolution": 4, "rbm": 4, "approx": 4,
    "prune": 5, "training": 5,
    "estimators": 6, "export": 6, "distributed": 6, "_show_versions": 6,
    "cli": 7,
    # `python -m sparsemlp.<tool>` entry points: five-line shims over cli/
    "train": 8, "evaluate": 8, "info": 8, "plot": 8, "__main__": 8,
}
# Private modules every unit may import (their public names), the foundation of the package.
BASE = {"_version", "_validation", "_parallel", "_rng", "_kernels"}
# Private names imported across units on purpose: (importing unit, imported module, name) -> why.
PRIVATE_ALLOWED = {}
# Modules allowed to grow past the size limit, and why.
SIZE_LIMIT = 440  # "about 400 lines", with a tenth of slack
SIZE_ALLOWED = {
    "sparsemlp._kernels._numba": "the Numba twin of every compiled kernel, kept in one file like csrc/",
}


def _module_name(path, root):
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect(pkg_dir):
    """{module name: (path, is_package)} for every .py file under ``pkg_dir``."""
    out = {}
    for p in sorted(pkg_dir.rglob("*.py")):
        out[_module_name(p, pkg_dir)] = (p, p.name == "__init__.py")
    return out


def imports(name, path, is_pkg, modules):
    """Every import of module ``name`` as (line, target module, imported name or None), absolute."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = name if is_pkg else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for al in node.names:
                out.append((node.lineno, al.name, None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - (node.level - 1)]
                tgt = ".".join(base + ([node.module] if node.module else []))
            else:
                tgt = node.module
            for al in node.names:
                sub = f"{tgt}.{al.name}"
                out.append((node.lineno, sub, None) if sub in modules else (node.lineno, tgt, al.name))
    return out


def unit(mod):
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def floor(mod):
    """The floor of a module: its unit's, but a subpackage's ``__main__`` (``python -m
    sparsemlp.<subpackage>``) is a command-line tool and sits on the floor of ``cli``."""
    if mod.endswith(".__main__") and mod.count(".") >= 2:
        return FLOORS["cli"] + 0.5
    return FLOORS.get(unit(mod))


def violations(pkg_dir):
    """Every broken rule of the import graph of the package in ``pkg_dir``, as messages."""
    top = pkg_dir.name
    modules = collect(pkg_dir)
    graph = {m: set() for m in modules}
    bad = []
    for m, (path, is_pkg) in modules.items():
        u = unit(m)
        rel = path.relative_to(pkg_dir.parent)
        for line, tgt, name in imports(m, path, is_pkg, modules):
            where = f"{rel}:{line}"
            if tgt.split(".")[0] in ("numba", "llvmlite") and u != "_kernels":
                bad.append(f"{where}: imports {tgt}; only {top}._kernels may load compiled code")
            full = tgt if name is None else f"{tgt}.{name}"
            if re.search(r"\._cython", full) and u != "_kernels":
                bad.append(f"{where}: imports compiled {full}; only {top}._kernels may")
            if tgt != top and not tgt.startswith(top + "."):
                continue
            if tgt == top and u != "__init__":
                bad.append(f"{where}: imports the package face ({top}.{name}); import the module "
                           "that defines it")
                continue
            if tgt in modules and tgt != m:
                graph[m].add(tgt)
            tu = unit(tgt)
            if tu == "__init__" or u == "__init__":
                continue
            if tu not in FLOORS or u not in FLOORS:
                bad.append(f"{where}: unit {u if u not in FLOORS else tu!r} has no floor in FLOORS")
                continue
            if tgt.endswith(".__main__") and tgt.count(".") >= 2:
                bad.append(f"{where}: imports {tgt}, a command-line entry point; import the "
                           "module that defines what it needs")
            elif tu != u and floor(tgt) >= floor(m):
                bad.append(f"{where}: {u} (floor {floor(m)}) imports {tgt} ({tu}, floor "
                           f"{floor(tgt)}); imports go down the floors only")
            if tu != u:
                private_mod = [p for p in tgt.split(".")[1:] if p.startswith("_") and p not in BASE]
                if private_mod and (u, tgt, name) not in PRIVATE_ALLOWED:
                    bad.append(f"{where}: imports private module {tgt} across units ({u} -> {tu})")
                if name and name.startswith("_") and not name.startswith("__") \
                        and (u, tgt, name) not in PRIVATE_ALLOWED:
                    bad.append(f"{where}: imports private name {name} from {tgt} across units "
                               f"({u} -> {tu})")
    bad += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return bad


def _cycles(graph):
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp) + [sorted(comp)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_import_rules():
    bad = violations(PKG)
    assert not bad, "\n".join(bad)


def test_module_sizes():
    big = []
    for m, (path, _) in collect(PKG).items():
        n = len(path.read_text().splitlines())
        if n > SIZE_LIMIT and m not in SIZE_ALLOWED:
            big.append(f"{path.relative_to(ROOT)}: {n} lines (limit {SIZE_LIMIT}); split it")
    assert not big, "\n".join(big)


# A citation of a file outside the repository (../shared/REFERENCE.md, ../shared/DESIGN.md, ...).
# `REFERENCE_MODEL` (a variable name) does not match.
CITATION = re.compile(r"REFERENCE(\.md)?\s*(§|\d|sections?\b)|REFERENCE\.md|DESIGN(\.md)?\b"
                      r"|\.\./shared|shared/data")
# Lines that name the shared data folder as the path the tests read data from (not a citation):
# (file, stripped line), exact, so nothing else in the file is exempt.
CITATION_PATH_LINES = {
    ("tests/conftest.py",
     '"""Path under ../shared/data, or skip the test with a clear message when it is absent."""'),
}
CITATION_PENDING = set()  # files allowed to cite outside files for a while (none)


def outside_citations(root):
    """``file:line: text`` of every citation of a file outside the repository under ``root``."""
    files = [*(root / "sparsemlp").rglob("*.py"), root / "README.md", *(root / "docs").rglob("*.md"),
             *(root / "csrc").glob("*.pyx"), *(root / "benchmarks").glob("*.py"),
             root / "benchmarks" / "README.md", *(root / "tests").glob("*.py")]
    hits = []
    for f in files:
        rel = f.relative_to(root).as_posix()
        # this file holds the pattern and the exemptions themselves
        if not f.exists() or rel == "tests/test_architecture.py" or rel in CITATION_PENDING:
            continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if CITATION.search(line) and (rel, line.strip()) not in CITATION_PATH_LINES:
                hits.append(f"{rel}:{i}: {line.strip()}")
    return hits


def test_no_references_outside_the_repository():
    """Code, docstrings, docs, benchmarks and tests cite papers or the repository's own docs."""
    hits = outside_citations(ROOT)
    assert not hits, "\n".join(hits)


def test_citation_checker_catches_references_outside_the_repository(tmp_path):
    conftest_path_line = next(iter(CITATION_PATH_LINES))[1]
    files = {
        "sparsemlp/a.py": '"""Thresholds as in REFERENCE §1.7."""\n',
        "benchmarks/bench_x.py": '"""Baseline (REFERENCE sections 1 and 8)."""\nREFERENCE_MODEL = "d"\n',
        "benchmarks/README.md": "The optimizer remap of DESIGN 4.6.\n",
        "tests/test_x.py": "# published in ../shared/REFERENCE.md\n",
        "tests/conftest.py": f"def shared_data():\n    {conftest_path_line}\n# see DESIGN.md 7\n",
        "tests/test_architecture.py": "# REFERENCE §1.3\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    hits = outside_citations(tmp_path)
    assert [h.split(":")[0] + ":" + h.split(":")[1] for h in hits] == [
        "sparsemlp/a.py:1", "benchmarks/bench_x.py:1", "benchmarks/README.md:1",
        "tests/test_x.py:1", "tests/conftest.py:3"], hits


# -- the checker itself must be able to fail ---------------------------------------------------

def _tree(tmp_path, files):
    pkg = tmp_path / "sparsemlp"
    for rel, src in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(src)
    for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return pkg


GOOD = {
    "_validation.py": "def check(): pass\n",
    "nn/layers.py": "from .._validation import check\n",
    "training/base.py": "from ..nn.layers import check\n",
    "cli/train.py": "from ..training import base\n",
}


def test_checker_accepts_a_clean_tree(tmp_path):
    assert violations(_tree(tmp_path, GOOD)) == []


@pytest.mark.parametrize("rel, src, expect", [
    ("nn/optim.py", "from ..training import base\n", "imports go down the floors"),
    ("nn/mlp.py", "from ..cli.train import x\n", "imports go down the floors"),
    ("nn/a.py", "from . import b\n", "import cycle"),
    ("training/run.py", "from .. import Trainer\n", "package face"),
    ("training/x.py", "from ..nn.layers import _helper\n", "private name"),
    ("training/y.py", "import numba\n", "compiled code"),
    ("nn/z.py", "from .._kernels import _cython\n", "compiled"),
    ("training/w.py", "from .._kernels._flags import X\n", "private module"),
])
def test_checker_catches_a_broken_import(tmp_path, rel, src, expect):
    files = dict(GOOD, **{rel: src})
    if rel == "nn/a.py":
        files["nn/b.py"] = "from . import a\n"
    bad = violations(_tree(tmp_path, files))
    assert any(expect in b for b in bad), bad
