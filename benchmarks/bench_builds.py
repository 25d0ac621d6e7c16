"""Kernel speed of two builds of sparsemlp (before/after a kernel change), timed alternately.

Each build is a source tree with its compiled kernels in place (``python setup.py build_ext
--inplace``, or a copy of ``sparsemlp/_kernels/*.so`` into an exported tree). A Cython module
can be imported once per process only, so every round runs ``bench_kernels.py`` once per
build in its own process (``PYTHONPATH`` = that tree), alternating which build goes first, and
records each point's median of ``--repeats``. The table gives, per point, the median over
the rounds for each build and the ratio after / before (above 1: the after build is slower).

Example (the fixed summation order of sddmm, issue 12 item 10)::

    git archive main | tar -x -C /tmp/before && cp /path/to/main/sparsemlp/_kernels/*.so \\
        /tmp/before/sparsemlp/_kernels/
    flock /tmp/sparsemlp-bench.lock python benchmarks/bench_builds.py --before /tmp/before \\
        --after . --rounds 5 --out benchmarks/results/builds.jsonl
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
KEY = ("op", "dtype", "n_in", "batch", "threads", "backend")


def run_build(tree, args, dtype, out):
    """One bench_kernels.py process on ``tree``'s sparsemlp; its JSON lines are appended to
    ``out``."""
    cmd = [sys.executable, str(HERE / "bench_kernels.py"), "--no-competitors", "--no-triad",
           "--n", *map(str, args.n), "--batch", *map(str, args.batch),
           "--threads", *map(str, args.threads), "--repeats", str(args.repeats),
           "--min-time", str(args.min_time), "--ops", *args.ops, "--dtype", dtype,
           "--backends", *(f"cython-{v}" for v in args.variants), "--out", str(out),
           *(["--cpu-time"] if args.cpu_time else [])]
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(tree).resolve())}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def collect(args):
    """{build: {key: [median_s per round]}} and the raw records, tagged with build and round."""
    times = {"before": {}, "after": {}}
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for dtype in args.dtypes:
                order = ("before", "after") if rnd % 2 == 0 else ("after", "before")
                for build in order:
                    out = pathlib.Path(tmp) / f"{build}-{rnd}-{dtype}.jsonl"
                    run_build(getattr(args, build), args, dtype, out)
                    for line in out.read_text().splitlines():
                        rec = json.loads(line)
                        if "median_s" not in rec:
                            continue
                        rec.update(build=build, round=rnd)
                        records.append(rec)
                        times[build].setdefault(tuple(rec[k] for k in KEY), []).append(
                            rec["median_s"])
                print(f"# round {rnd + 1}/{args.rounds} {dtype} done", file=sys.stderr,
                      flush=True)
    return times, records


def table(times):
    """Markdown rows: point, median ms before, after, ratio after / before."""
    lines = ["| op | dtype | n | B | thr | variant | before ms | after ms | after/before |",
             "|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for key in sorted(times["before"], key=lambda k: tuple(map(str, k))):
        if key not in times["after"]:
            continue
        before = float(np.median(times["before"][key]))
        after = float(np.median(times["after"][key]))
        ratios.append(after / before)
        op, dtype, n, batch, threads, backend = key
        lines.append(f"| {op} | {dtype} | {n} | {batch} | {threads} | "
                     f"{backend.removeprefix('cython-')} | {before * 1e3:.3g} | "
                     f"{after * 1e3:.3g} | {after / before:.3f} |")
    if ratios:
        lines.append(f"\nratio after/before: median {np.median(ratios):.3f}, "
                     f"min {min(ratios):.3f}, max {max(ratios):.3f} over {len(ratios)} points")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", required=True, help="source tree of the reference build")
    p.add_argument("--after", required=True, help="source tree of the changed build")
    p.add_argument("--rounds", type=int, default=5, help="processes per build and dtype")
    p.add_argument("--n", type=int, nargs="+", default=[3000, 30000])
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--ops", nargs="+", default=["forward", "sddmm", "fused"])
    p.add_argument("--variants", nargs="+", default=["baseline", "avx2", "avx512"])
    p.add_argument("--repeats", type=int, default=5, help="timed repeats within a process")
    p.add_argument("--min-time", type=float, default=0.02)
    p.add_argument("--cpu-time", action="store_true",
                   help="CPU time of the calling thread (with --threads 1), see bench_kernels.py")
    p.add_argument("--out", default=None, help="JSON-lines file for every record (appended)")
    args = p.parse_args(argv)
    for tree in (args.before, args.after):
        if not (pathlib.Path(tree) / "sparsemlp" / "_kernels").is_dir():
            p.error(f"{tree} is not a sparsemlp source tree (no sparsemlp/_kernels); "
                    "pass the root of a built checkout")
    times, records = collect(args)
    if args.out:
        with open(args.out, "a") as fh:
            for rec in records:
                fh.write(json.dumps(rec) + "\n")
    print(table(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
