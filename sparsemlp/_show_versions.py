"""Diagnostics for bug reports: versions, the active kernel backend, why others are unavailable, threads."""

import platform
import sys

from . import _kernels
from ._version import __version__

__all__ = ["show_versions"]


def _info():
    import numpy
    import scipy

    lines = [("sparsemlp", __version__), ("python", sys.version.split()[0]),
             ("platform", platform.platform()), ("numpy", numpy.__version__),
             ("scipy", scipy.__version__)]
    for mod in ("Cython", "numba", "threadpoolctl", "tqdm", "sklearn", "torch", "mpi4py",
                "matplotlib"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                from importlib.metadata import version

                dist = {"sklearn": "scikit-learn"}.get(mod, mod)
                lines.append((mod, version(dist)))
            except Exception:  # noqa: BLE001 - absent package
                lines.append((mod, "not installed"))
        else:
            lines.append((mod, getattr(m, "__version__", "?")))
    active = _kernels.active()
    lines.append(("active backend", active))
    avail = _kernels.available()
    lines.append(("available backends", ", ".join(avail)))
    for name, why in _kernels.unavailable_reasons().items():
        lines.append((f"{name} backend", f"unavailable: {why}"))
    if "cython" in avail:
        cy = _kernels._modules["cython"]
        omp = getattr(cy, "openmp_enabled", lambda: False)()
        lines.append(("cython OpenMP", f"yes, max {cy.max_threads()} threads" if omp else
                      "no (serial kernels: the compiler had no OpenMP at install time)"))
        usable = _kernels.cython_variants()
        others = "; ".join(f"{k}: {v}" for k, v in _kernels._isa_reasons.items())
        lines.append(("cython ISA", f"{cy.ISA} (usable here: {', '.join(usable)}"
                      + (f"; unavailable {others})" if others else ")")))
    nt = _kernels.numba_threads()
    if nt is not None:
        lines.append(("numba threads", f"{nt[0]} ({nt[1]})"))
    try:
        from threadpoolctl import threadpool_info

        for p in threadpool_info():
            lines.append((f"threadpool {p.get('user_api')}",
                          f"{p.get('internal_api')} {p.get('num_threads')} threads "
                          f"({p.get('filepath', '').rsplit('/', 1)[-1]})"))
    except Exception as exc:  # noqa: BLE001
        lines.append(("threadpoolctl", f"error: {exc}"))
    return lines


def show_versions(file=None):
    """Print versions, the active kernel backend, why others are unavailable, and threads.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).

    Examples
    --------
    >>> import sparsemlp
    >>> sparsemlp.show_versions()  # doctest: +SKIP
    """
    for k, v in _info():
        print(f"{k:>22}: {v}", file=file or sys.stdout)
