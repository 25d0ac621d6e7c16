"""Mutation testing of sparsemlp's pure-Python core with mutmut 3 (kept out of `python -m pytest`).

Each module in ``MODULES`` is mutated on its own, against a focused selection of tests, in a
scratch copy of the package and tests (``build/mutation/<module>/``): mutmut 3 reads one
``[tool.mutmut]`` table per directory, and a focused selection per module keeps a run within
minutes on two cores. The runs use ``SPARSEMLP_BACKEND=numpy`` so that every test that does not
pick a backend exercises the NumPy reference kernels (one of the mutated modules); the compiled
Cython modules (.so) and Numba are copied and stay available to the tests that compare
backends.

Usage (from the repository root, after ``pip install mutmut``)::

    python tools/mutation.py                # full run of every module, then the report
    python tools/mutation.py --ci           # the CI subset (optim.py: 2-7 min on 2 cores)
    python tools/mutation.py evolution      # modules whose path contains "evolution"
    python tools/mutation.py --report       # score of the last runs, no new run
    python tools/mutation.py --survivors    # the diff of every surviving, unlisted mutant
    python tools/mutation.py --rerun        # rerun only the survivors (after adding tests;
                                            # with the module's current selection in MODULES)
    python tools/mutation.py estimators/rbm --only '*_check_params*' '*fit*'
                                            # a module in chunks: these functions' mutants
    SPARSEMLP_MUTATION_TIMEOUT=5 python tools/mutation.py topology/sampling
                                            # a timeout after 5 x the tests' time (mutmut: 15)

Surviving mutants that cannot change behaviour are listed, each with its reason, in
``tests/mutation_equivalents.md``; the score is killed / (total - equivalent), where
"killed" counts mutants detected by a failing test, a timeout or a crash, and mutants no
selected test reaches count as not killed. When modules move, update ``MODULES`` (the only
list of paths) and the mutant names in the equivalents file.
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.md"

# source file -> the focused tests run against its mutants (pytest arguments). Only the
# tests among these that execute a mutated function run for each of its mutants.
MODULES = {
    "sparsemlp/evolution/set.py": ["tests/test_evolution.py", "tests/test_evolution_regrow.py"],
    "sparsemlp/evolution/thresholds.py": ["tests/test_evolution.py",
                                         "tests/test_evolution_contracts.py"],
    "sparsemlp/evolution/regrowth.py": ["tests/test_evolution.py",
                                       "tests/test_evolution_contracts.py"],
    "sparsemlp/evolution/steps.py": ["tests/test_evolution.py"],
    "sparsemlp/evolution/remap.py": ["tests/test_evolution.py",
                                    "tests/test_evolution_contracts.py"],
    "sparsemlp/evolution/importance.py": ["tests/test_evolution.py",
                                         "tests/test_evolution_contracts.py"],
    "sparsemlp/topology/csr.py": ["tests/test_topology.py", "tests/test_topology_csr.py",
                                  "tests/test_evolution.py"],
    "sparsemlp/nn/optim.py": ["tests/test_optim.py", "tests/test_adam.py",
                           "tests/test_training_step.py"],
    "sparsemlp/_kernels/_reference.py": ["tests/test_kernels.py", "tests/test_kernel_edges.py",
                                         "tests/test_layers.py",
                                         "tests/test_models.py", "tests/test_evolution.py"],
    "sparsemlp/topology/laws.py": ["tests/test_topology.py",
                                   "tests/test_topology_laws_contracts.py"],
    "sparsemlp/topology/sampling.py": ["tests/test_topology.py", "tests/test_evolution.py",
                                       "tests/test_topology_sampling_contracts.py"],
    # the pre-defined topologies: test_rewiring.py and the training tests only use them
    "sparsemlp/topology/nets.py": ["tests/test_predefined.py",
                                   "tests/test_predefined_contracts.py"],
    "sparsemlp/topology/predefined.py": ["tests/test_predefined.py",
                                         "tests/test_predefined_contracts.py"],
    "sparsemlp/topology/hardware.py": ["tests/test_predefined.py",
                                       "tests/test_predefined_contracts.py"],
    "sparsemlp/topology/schedule.py": ["tests/test_predefined.py",
                                       "tests/test_predefined_contracts.py"],
    "sparsemlp/training/checkpoint.py": ["tests/test_checkpoint.py",
                                         "tests/test_checkpoint_integrity.py",
                                         "tests/test_run_lifecycle.py",
                                         "tests/test_approx_checkpoints.py"],
    "sparsemlp/training/layerinfo.py": ["tests/test_layerinfo.py", "tests/test_checkpoint.py",
                                        "tests/test_checkpoint_integrity.py",
                                        "tests/test_approx_checkpoints.py"],
    "sparsemlp/training/config.py": ["tests/test_config.py", "tests/test_train_cli.py",
                                     "tests/test_keras_preset.py"],
    "sparsemlp/training/checks.py": ["tests/test_config.py", "tests/test_train_cli.py",
                                     "tests/test_predefined_training.py",
                                     "tests/test_checks_contracts.py"],
    "sparsemlp/data/core.py": ["tests/test_data_core.py", "tests/test_data.py",
                               "tests/test_labels.py", "tests/test_preprocessing.py"],
    "sparsemlp/data/readers.py": ["tests/test_readers.py", "tests/test_data.py",
                                  "tests/test_data_core.py"],
    "sparsemlp/data/preprocessing.py": ["tests/test_preprocessing.py", "tests/test_data.py",
                                        "tests/test_labels.py"],
    # without the ~290 scikit-learn checks and the two wide training runs (2.5 min per
    # surviving mutant on 2 cores); test_estimator_mlp.py checks what they would
    "sparsemlp/estimators/mlp.py": ["tests/test_estimator_mlp.py", "tests/test_estimators.py",
                                    "-k", "not test_sklearn_compatible and not digits_accuracy"
                                    " and not keeps_the_model"],
    "sparsemlp/estimators/rbm.py": ["tests/test_rbm_estimator_unit.py",
                                    "tests/test_rbm_estimator_contracts.py",
                                    "tests/test_rbm_estimator.py", "-k",
                                    "not test_sklearn_compatible and not test_example"],
}
MODULES.update({
    "sparsemlp/evolution/gradient.py": ["tests/test_gradient_regrowth.py",
                                        "tests/test_gradient_contracts.py"],
    "sparsemlp/evolution/rewiring.py": ["tests/test_rewiring.py", "tests/test_evolution.py",
                                        "tests/test_rewiring_contracts.py"],
    "sparsemlp/data/augment.py": ["tests/test_augment.py"],
    "sparsemlp/data/cifar.py": ["tests/test_cifar.py"],
    "sparsemlp/data/download.py": ["tests/test_download.py"],
})
CI_MODULES = ["sparsemlp/nn/optim.py"]

PYTEST_ARGS = ["-p", "no:cacheprovider", "-q", "-x", "-m", "not slow", "--hypothesis-seed=0"]

# mutmut's exit codes; -15 is a worker that mutmut terminated after its time limit
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", -15: "timeout", -9: "crash", -11: "crash"}
NOT_KILLED = {0: "survived", 5: "no tests", 33: "no tests", None: "not checked"}


def slug(path):
    return path.removeprefix("sparsemlp/").removesuffix(".py").replace("/", "-").lstrip("_")


def mutmut_table(module, tests):
    q = lambda xs: "[" + ", ".join(json.dumps(x) for x in xs) + "]"  # noqa: E731
    return ("\n[tool.mutmut]\n"
            'source_paths = ["sparsemlp"]\n'
            f"only_mutate = {q([module])}\n"
            f"pytest_add_cli_args = {q(PYTEST_ARGS)}\n"
            f"pytest_add_cli_args_test_selection = {q(tests)}\n"
            # mutmut waits 15 x the tests' time before calling a mutant a timeout; a module
            # with many endless-loop mutants runs far faster with e.g. 5
            + (f"timeout_multiplier = {float(os.environ['SPARSEMLP_MUTATION_TIMEOUT'])}\n"
               if os.environ.get("SPARSEMLP_MUTATION_TIMEOUT") else ""))


def prepare(module):
    """A fresh scratch copy: package (with the compiled kernels), tests, pyproject + mutmut."""
    d = WORK / slug(module)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    shutil.copytree(ROOT / "sparsemlp", d / "sparsemlp", ignore=ignore)
    shutil.copytree(ROOT / "tests", d / "tests", ignore=ignore)
    text = (ROOT / "pyproject.toml").read_text()
    (d / "pyproject.toml").write_text(text + mutmut_table(module, MODULES[module]))
    return d


def env():
    e = dict(os.environ, SPARSEMLP_BACKEND="numpy")
    e.pop("PYTHONPATH", None)  # the scratch copy's mutants/ must be the package imported
    e.pop("SPARSEMLP_DEBUG", None)
    return e


def run(module, max_children, names=(), fresh=None):
    """Run mutmut on ``module``: all its mutants in a fresh copy, or ``names`` (mutant names
    or fnmatch patterns) in the existing one (``fresh=True``: in a fresh copy)."""
    fresh = not names if fresh is None else fresh
    d = prepare(module) if fresh else WORK / slug(module)
    if names and not fresh:  # refresh the tests (new ones kill survivors) and the module's
        # selection in MODULES (new test files); mutants/ is kept
        for t in (d / "tests", d / "mutants" / "tests"):
            shutil.copytree(ROOT / "tests", t, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        text = (ROOT / "pyproject.toml").read_text() + mutmut_table(module, MODULES[module])
        for p in (d / "pyproject.toml", d / "mutants" / "pyproject.toml"):
            if p.exists():
                p.write_text(text)
    before = results(module) if names and not fresh else None
    t0 = time.time()
    log = d / "mutmut.log"
    with open(log, "a") as f:
        rc = subprocess.call([sys.executable, "-m", "mutmut", "run", "--max-children",
                              str(max_children), *names], cwd=d, env=env(), stdout=f,
                             stderr=subprocess.STDOUT)
    print(f"{module}: mutmut exit {rc} in {time.time() - t0:.0f} s (log: {log})", flush=True)
    if before:  # mutmut resets every verdict when the tests or the selection change: the
        # mutants not rerun keep the verdict of the module's last run
        meta = d / "mutants" / (module + ".meta")
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for k, v in before.items():
            if codes.get(k) is None and v is not None and k in codes:
                codes[k] = v
        meta.write_text(json.dumps(data))


def results(module):
    """{mutant: mutmut exit code} of the module's last run, or None."""
    meta = WORK / slug(module) / "mutants" / (module + ".meta")
    if not meta.exists():
        return None
    return json.loads(meta.read_text())["exit_code_by_key"]


def equivalents():
    """Names and diff patterns listed in the equivalents file (with their reasons there).

    Every ```sparsemlp.<...>__mutmut_N``` in it names one mutant; a line
    ``- pattern `REGEX`: reason`` covers every mutant with an added line matching REGEX, and
    ``- pattern `REGEX` (was `OLD`): reason`` only those whose removed line matches OLD too.
    """
    if not EQUIVALENTS.exists():
        return set(), []
    text = EQUIVALENTS.read_text()
    names = set(re.findall(r"`(sparsemlp\.[^`\s]+?__mutmut_\d+)`", text))
    patterns = [(re.compile(p), re.compile(q) if q else None)
                for p, q in re.findall(r"^- pattern `([^`]+)`(?: \(was `([^`]+)`\))?", text, re.M)]
    return names, patterns


def _matches(lines, pattern):
    """Whether a mutant's diff lines match an equivalents pattern (added, and removed, line)."""
    new, old = pattern
    return any(new.search(ln) for ln in lines if ln[0] == "+") and \
        (old is None or any(old.search(ln) for ln in lines if ln[0] == "-"))


_DIFF = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, names = json.load(sys.stdin)
print(json.dumps({n: get_diff_for_mutant(n, path=path) for n in names}))
"""


def diffs(module, names):
    """{mutant: its added and removed lines}, from mutmut (one process), cached per module."""
    d = WORK / slug(module)
    path = d / "diffs.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    todo = [n for n in names if n not in cache]
    if todo:
        out = subprocess.run([sys.executable, "-c", _DIFF], cwd=d, env=env(), check=True,
                             input=json.dumps([module, todo]), capture_output=True, text=True)
        for n, text in json.loads(out.stdout).items():
            cache[n] = [ln for ln in text.splitlines()
                        if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        path.write_text(json.dumps(cache))
    return {n: cache[n] for n in names}


def classify(module):
    """{mutant: "killed" | "equivalent" | "survived" | "no tests" | "not checked"}."""
    res = results(module)
    if res is None:
        return None
    names, patterns = equivalents()
    d = diffs(module, [k for k, v in res.items() if v not in KILLED and v is not None]) \
        if patterns else {}
    out = {}
    for k, v in res.items():
        if v in KILLED:
            out[k] = "killed"
        elif k in names or any(_matches(d.get(k, ()), p) for p in patterns):
            out[k] = "equivalent"
        else:
            out[k] = NOT_KILLED.get(v, "survived")
    return out


def survivors(module):
    return [k for k, v in (classify(module) or {}).items() if v in ("survived", "no tests")]


def markdown(modules):
    """The score table in Markdown (for README.md), modules that were run only."""
    print("| module | mutants | killed | equivalent | not killed | score |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in modules:
        c = classify(m)
        if c is None:
            continue
        v = list(c.values())
        k, e, u = v.count("killed"), v.count("equivalent"), v.count("not checked")
        rest = len(v) - k - e - u
        note = f" ({u} not checked)" if u else ""
        print(f"| `{m}` | {len(v)}{note} | {k} | {e} | {rest} | {100 * k / max(1, k + rest):.1f} % |")


def report(modules):
    names, _ = equivalents()
    head = f"{'module':<34} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} " \
           f"{'no test':>7} {'score':>7}"
    print(head)
    tot = [0, 0, 0, 0, 0, 0]
    for m in modules:
        c = classify(m)
        if c is None:
            print(f"{m:<34} (not run)")
            continue
        vals = list(c.values())
        row = [len(vals), vals.count("killed"), vals.count("equivalent"), vals.count("survived"),
               vals.count("no tests")]
        tot = [a + b for a, b in zip(tot, row + [vals.count("not checked")])]
        stale = [f"killed but listed as equivalent: {k}" for k, v in sorted(c.items())
                 if k in names and v == "killed"]
        if vals.count("not checked"):
            stale.append(f"{vals.count('not checked')} not checked yet")
        print(f"{m:<34} {row[0]:>7} {row[1]:>7} {row[2]:>7} {row[3]:>8} {row[4]:>7} "
              f"{100 * row[1] / max(1, row[0] - row[2] - vals.count('not checked')):>6.1f}%"
              + (f"  ({'; '.join(stale)})" if stale else ""))
    print(f"{'all':<34} {tot[0]:>7} {tot[1]:>7} {tot[2]:>7} {tot[3]:>8} {tot[4]:>7} "
          f"{100 * tot[1] / max(1, tot[0] - tot[2] - tot[5]):>6.1f}%")
    return tot


def show_survivors(modules):
    for m in modules:
        res, names = results(m) or {}, survivors(m)
        for name, lines in diffs(m, names).items():
            print(f"{name}  [{NOT_KILLED.get(res[name], res[name])}]")
            print("\n".join("    " + ln for ln in lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("filter", nargs="*", help="run only modules whose path contains one of these")
    p.add_argument("--ci", action="store_true", help=f"the CI subset: {', '.join(CI_MODULES)}")
    p.add_argument("--report", action="store_true", help="print the score of the last runs only")
    p.add_argument("--survivors", action="store_true", help="print the surviving mutants' diffs")
    p.add_argument("--rerun", action="store_true", help="rerun only the surviving mutants")
    p.add_argument("--only", nargs="+", metavar="FUNCTION",
                   help="a fresh run of the mutants of these functions only (fnmatch "
                        "patterns on mutmut's mangled names, e.g. '*_check_params*': a "
                        "module in chunks; the others stay 'not checked')")
    p.add_argument("--markdown", action="store_true", help="print the score table in Markdown")
    p.add_argument("--max-children", type=int, default=1, help="parallel mutants (default 1)")
    a = p.parse_args(argv)
    modules = CI_MODULES if a.ci else [m for m in MODULES
                                       if not a.filter or any(f in m for f in a.filter)]
    if not modules:
        p.error(f"no module matches {a.filter}; choose from {', '.join(MODULES)}")
    if a.markdown:
        markdown(modules)
        return 0
    if not (a.report or a.survivors):
        for m in modules:
            if a.only:
                run(m, a.max_children, [f"{m.removesuffix('.py').replace('/', '.')}.{f}"
                                        for f in a.only], fresh=True)
            elif a.rerun:
                names = survivors(m)
                if names:
                    run(m, a.max_children, names)
            else:
                run(m, a.max_children)
    if a.survivors:
        show_survivors(modules)
    report(modules)
    if a.ci:
        bad = [k for m in modules for k in survivors(m)]
        if bad:
            print(f"{len(bad)} surviving mutants are not listed in {EQUIVALENTS.name}: "
                  + ", ".join(bad))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
