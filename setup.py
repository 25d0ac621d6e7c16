"""Build the optional compiled kernels (csrc/_cython.pyx, smlp_dot.h); all metadata is in pyproject.toml."""

import os
import platform
import shutil
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRED = os.environ.get("SPARSEMLP_REQUIRE_EXTENSIONS") == "1"
# Every variant computes the same bits (csrc/_cython.pyx, "Same bits in every instruction-set
# variant"): no FMA contraction (-ffp-contract=off) and no reassociation (-fno-fast-math
# also cancels a -ffast-math or -fassociative-math in the user's CFLAGS, which come first),
# so the compiler evaluates each sum in the order the source writes, whatever the vector width.
CFLAGS = ["-O3", "-fno-fast-math", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
if os.environ.get("SPARSEMLP_NATIVE") == "1":  # opt-in for local builds only
    CFLAGS.append("-march=native")
OMP = ["-fopenmp"]
# The same kernels built once more per x86-64 ISA level; sparsemlp._kernels imports the best
# one the running CPU supports (baseline SSE2 otherwise). SPARSEMLP_ISA_VARIANTS=0 skips them.
X86_VARIANTS = {
    "avx2": ["-march=x86-64-v3"],
    "avx512": ["-march=x86-64-v4", "-mprefer-vector-width=512"],
}


def _openmp_works(compiler):
    """Compile and link a two-line OpenMP program with the build's own compiler."""
    tmp = tempfile.mkdtemp()
    src = os.path.join(tmp, "omp_probe.c")
    with open(src, "w") as f:
        f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
    try:
        objs = compiler.compile([src], output_dir=tmp, extra_postargs=OMP)
        compiler.link_executable(objs, os.path.join(tmp, "omp_probe"), extra_postargs=OMP)
        return True
    except Exception:  # noqa: BLE001 - any failure means "no OpenMP"
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """build_ext that drops -fopenmp when the compiler cannot build an OpenMP program."""

    def build_extensions(self):
        omp = _openmp_works(self.compiler)
        for ext in self.extensions:
            if not omp:
                ext.extra_compile_args = [a for a in ext.extra_compile_args if a not in OMP]
                ext.extra_link_args = [a for a in ext.extra_link_args if a not in OMP]
            ext.define_macros = [*ext.define_macros, ("SPARSEMLP_OPENMP", "1" if omp else "0")]
        if not omp:
            print("sparsemlp: OpenMP unavailable, building serial kernels", file=sys.stderr)
        super().build_extensions()


def _extensions():
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRED:
            raise
        print("sparsemlp: Cython missing, skipping compiled kernels", file=sys.stderr)
        return []
    from Cython import __version__ as cython_version

    version = [("SMLP_CYTHON_VERSION", f'"{cython_version}"')]  # reported by show_versions()
    dep = ["csrc/_cython.pyx", "csrc/smlp_dot.h"]  # rebuild on change; shipped in the sdist
    exts = [Extension("sparsemlp._kernels._cython", ["csrc/_cython.pyx"],
                      extra_compile_args=CFLAGS + OMP, extra_link_args=OMP,
                      define_macros=version, depends=dep)]
    x86 = platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32"
    if x86 and os.environ.get("SPARSEMLP_ISA_VARIANTS", "1") != "0":
        for isa, flags in X86_VARIANTS.items():
            exts.append(Extension(f"sparsemlp._kernels._cython_{isa}", [f"csrc/_cython_{isa}.pyx"],
                                  extra_compile_args=CFLAGS + flags + OMP, extra_link_args=OMP,
                                  define_macros=[("SMLP_ISA", f'"{isa}"'), *version],
                                  depends=dep))
    exts = cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
    for e in exts:  # cythonize() drops `optional`: without a compiler the install must still work
        e.optional = not REQUIRED
    return exts


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
