"""Compile an export for the host or ARM, run it (under qemu-user for ARM), check it, time it."""

import dataclasses
import os
import shutil
import subprocess
import tempfile

import numpy as np

from ._emit import ExportError

__all__ = ["TARGETS", "BuildError", "find_compiler", "find_runner", "compile_c", "build_harness",
           "run_check", "run_bench", "WARN_FLAGS"]

WARN_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")


class BuildError(RuntimeError):
    """The C compiler or the compiled program failed (a bug, or bad extra flags)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A compilation target: compilers to try, flags, how to run its programs."""

    name: str
    compilers: tuple
    flags: tuple
    runner: tuple = ()
    static: bool = False
    package: str = ""


TARGETS = {
    "host": Target("host", ("gcc", "cc", "clang"), ()),
    # fused multiply-add: one instruction per connection instead of two (results differ
    # from Python by one rounding per term, within the checked tolerance)
    "aarch64": Target("aarch64", ("aarch64-linux-gnu-gcc",), ("-ffp-contract=fast",),
                      ("qemu-aarch64",), True, "gcc-aarch64-linux-gnu"),
    "armv7": Target("armv7", ("arm-linux-gnueabihf-gcc",),
                    ("-march=armv7-a", "-mfpu=vfp", "-mfloat-abi=hard"), ("qemu-arm",), True,
                    "gcc-arm-linux-gnueabihf"),
}


def _target(name):
    if name not in TARGETS:
        raise ExportError(f"target must be one of {', '.join(TARGETS)}. Got {name!r}.")
    return TARGETS[name]


def find_compiler(target="host", cc=None):
    """Path of the C compiler for ``target``.

    Parameters
    ----------
    target : {"host", "aarch64", "armv7"}, default="host"
        Target.
    cc : str, optional
        Compiler to use instead of the target's default (a name on PATH or a path).

    Returns
    -------
    str
        Absolute path.

    Raises
    ------
    ExportError
        If no compiler is found (the message names the Debian package).
    """
    t = _target(target)
    for name in (cc,) if cc else t.compilers:
        path = shutil.which(name)
        if path:
            return path
    need = cc or " or ".join(t.compilers)
    hint = f"apt-get install {t.package}" if t.package else "install gcc or clang"
    raise ExportError(f"no C compiler for target {target}: {need} not found on PATH. Install it "
                      f"({hint}) or choose another --target.")


def find_runner(target="host"):
    """Command prefix that runs a program built for ``target`` (empty for the host).

    Parameters
    ----------
    target : {"host", "aarch64", "armv7"}, default="host"
        Target.

    Returns
    -------
    list of str
        ``[]`` or ``[path of qemu-aarch64 / qemu-arm]``.

    Raises
    ------
    ExportError
        If the emulator is missing.
    """
    t = _target(target)
    if not t.runner:
        return []
    path = shutil.which(t.runner[0])
    if path is None:
        raise ExportError(f"running {target} programs needs {t.runner[0]}, which is not on PATH. "
                          "Install it (apt-get install qemu-user) or use --target host.")
    return [path]


def compile_c(sources, output, *, target="host", cc=None, opt="-O2", kind="exe", flags=(),
              libm=True, include_dirs=()):
    """Compile C99 sources with warnings as errors.

    Parameters
    ----------
    sources : list of str
        C files.
    output : str
        Output path.
    target : {"host", "aarch64", "armv7"}, default="host"
        Target (cross compilers link statically, so qemu-user runs the program as is).
    cc : str, optional
        Compiler override.
    opt : str, default="-O2"
        Optimisation flag.
    kind : {"exe", "obj", "asm"}, default="exe"
        A program, an object file (``-c``) or assembly (``-S``, one source).
    flags : sequence of str, default=()
        Extra flags (e.g. ``-fsanitize=address,undefined``).
    libm : bool, default=True
        Link with ``-lm``.
    include_dirs : sequence of str, default=()
        ``-I`` directories.

    Returns
    -------
    str
        ``output``.

    Raises
    ------
    ExportError
        If the compiler is missing.
    BuildError
        If compiling fails (the message holds the first compiler messages).
    """
    t = _target(target)
    cmd = [find_compiler(target, cc), *WARN_FLAGS, opt, *t.flags, *flags]
    cmd += [f"-I{d}" for d in include_dirs]
    if kind == "obj":
        cmd += ["-c"]
    elif kind == "asm":
        cmd += ["-S"]
    elif t.static:
        cmd += ["-static"]
    cmd += [*sources, "-o", output]
    if kind == "exe" and libm:
        cmd += ["-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        msg = " | ".join((r.stderr or r.stdout).strip().splitlines()[:6])
        raise BuildError(f"{' '.join(cmd[:1])} failed ({r.returncode}): {msg}")
    return output


def _run(cmd, timeout):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        msg = " | ".join(r.stderr.strip().splitlines()[:20])
        raise BuildError(f"{os.path.basename(cmd[0])} exited with {r.returncode}: {msg}")
    return r


def _harness(export, kind):
    """C source of the check or bench program for ``export``."""
    P, T = export.prefix.upper(), export.ctype
    head = ["#define _POSIX_C_SOURCE 199309L", "#include <stdio.h>", "#include <stdlib.h>",
            "#include <time.h>", f'#include "{os.path.basename(export.header)}"', "",
            "int main(int argc, char **argv)", "{",
            f"    static {T} scratch[{P}_SCRATCH_SIZE];"]
    if kind == "check":  # check N IN OUT: logits then outputs of N samples
        return "\n".join(head + [
            "    size_t n, got;", f"    {T} *in, *lo, *out;", "    FILE *f;",
            "    if (argc != 4) return 2;",
            "    n = (size_t)strtoul(argv[1], NULL, 10);",
            f"    in = malloc((n + 1) * {P}_IN_SIZE * sizeof *in);",
            f"    lo = malloc((n + 1) * {P}_OUT_SIZE * sizeof *lo);",
            f"    out = malloc((n + 1) * {P}_OUT_SIZE * sizeof *out);",
            "    if (!in || !lo || !out || !(f = fopen(argv[2], \"rb\"))) return 3;",
            f"    got = fread(in, sizeof *in, n * {P}_IN_SIZE, f);", "    fclose(f);",
            f"    if (got != n * {P}_IN_SIZE) return 4;",
            f"    if ({export.logits}_batch(n, in, lo, scratch) != 0) return 5;",
            f"    if ({export.entry}_batch(n, in, out, scratch) != 0) return 5;",
            f"    if ({export.entry}(NULL, out, scratch) != -1) return 6;",
            "    if (!(f = fopen(argv[3], \"wb\"))) return 3;",
            f"    fwrite(lo, sizeof *lo, n * {P}_OUT_SIZE, f);",
            f"    fwrite(out, sizeof *out, n * {P}_OUT_SIZE, f);",
            "    fclose(f);", "    free(in);", "    free(lo);", "    free(out);",
            "    return 0;", "}", ""])
    # bench REPS TRIALS: nanoseconds per call of each trial, one per line
    return "\n".join(head + [
        f"    static {T} in[{P}_IN_SIZE], out[{P}_OUT_SIZE];",
        "    long reps, trials, r, t;", "    unsigned s = 12345u;", "    size_t i;",
        "    volatile double sink = 0;", "    struct timespec a, b;",
        "    if (argc != 3) return 2;",
        "    reps = strtol(argv[1], NULL, 10);", "    trials = strtol(argv[2], NULL, 10);",
        f"    for (i = 0; i < {P}_IN_SIZE; ++i) {{",
        "        s = s * 1103515245u + 12345u;",
        f"        in[i] = ({T})((double)(s >> 8) / 16777216.0 * 2.0 - 1.0);", "    }",
        "    for (t = 0; t < trials; ++t) {",
        "        clock_gettime(CLOCK_MONOTONIC, &a);",
        "        for (r = 0; r < reps; ++r) {",
        f"            {export.entry}(in, out, scratch);", "            sink += out[0];",
        "        }",
        "        clock_gettime(CLOCK_MONOTONIC, &b);",
        "        printf(\"%.1f\\n\", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) "
        "/ reps);",
        "    }", "    return 0;", "}", ""])


def build_harness(export, kind, workdir, *, target="host", cc=None, opt="-O2", flags=()):
    """Compile the export with its check (``kind="check"``) or bench program.

    Parameters
    ----------
    export : CExport
        What :func:`sparsemlp.export.to_c` wrote.
    kind : {"check", "bench"}
        Program.
    workdir : str
        Directory for the harness source and the program.
    target : {"host", "aarch64", "armv7"}, default="host"
        Target.
    cc : str, optional
        Compiler override.
    opt : str, default="-O2"
        Optimisation flag.
    flags : sequence of str, default=()
        Extra compiler flags.

    Returns
    -------
    str
        Path of the program.
    """
    src = os.path.join(workdir, f"{export.prefix}_{kind}_main.c")
    with open(src, "w") as fh:
        fh.write(_harness(export, kind))
    exe = os.path.join(workdir, f"{export.prefix}_{kind}_{target}{opt}")
    return compile_c([src, export.source], exe, target=target, cc=cc, opt=opt, flags=flags,
                     include_dirs=[os.path.dirname(os.path.abspath(export.header))])


def run_check(exe, export, X, *, target="host", timeout=600):
    """Run a check program on samples ``X``; return the C logits and outputs.

    Parameters
    ----------
    exe : str
        Program from :func:`build_harness` with ``kind="check"``.
    export : CExport
        The export it was built from.
    X : ndarray of shape (n, in_size)
        Inputs (converted to the export's type).
    target : {"host", "aarch64", "armv7"}, default="host"
        The program's target (ARM runs under qemu-user).
    timeout : float, default=600
        Seconds.

    Returns
    -------
    logits, outputs : ndarray of shape (n, out_size)
        What the C functions wrote.
    """
    dt = np.float32 if export.ctype == "float" else np.float64
    X = np.ascontiguousarray(X, dt)
    n = X.shape[0]
    with tempfile.TemporaryDirectory() as d:
        fin, fout = os.path.join(d, "in.bin"), os.path.join(d, "out.bin")
        X.tofile(fin)
        _run([*find_runner(target), exe, str(n), fin, fout], timeout)
        res = np.fromfile(fout, dt)
    if res.size != 2 * n * export.out_size:
        raise BuildError(f"{exe} wrote {res.size} values; expected {2 * n * export.out_size}.")
    res = res.reshape(2, n, export.out_size)
    return res[0], res[1]


def run_bench(exe, *, target="host", reps=1000, trials=15, timeout=600):
    """Time one sample through a bench program: nanoseconds per call, per trial.

    Parameters
    ----------
    exe : str
        Program from :func:`build_harness` with ``kind="bench"``.
    target : {"host", "aarch64", "armv7"}, default="host"
        Its target (emulated timings say little about hardware).
    reps : int, default=1000
        Calls per trial.
    trials : int, default=15
        Timed trials.
    timeout : float, default=600
        Seconds.

    Returns
    -------
    ndarray of shape (trials,)
        Nanoseconds per call of each trial (report the median).
    """
    r = _run([*find_runner(target), exe, str(int(reps)), str(int(trials))], timeout)
    return np.array([float(v) for v in r.stdout.split()])
