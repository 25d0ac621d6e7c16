"""Kernel backend discovery and selection; the only importer of compiled code."""

import functools
import importlib
import logging
import os
import types

import numpy as np

from . import _flags, _reference
from ._flags import FUSED_BACKWARD

__all__ = ["KERNEL_NAMES", "KernelSet", "available", "active", "get", "resolve",
           "unavailable_reasons", "cython_variants", "numba_threads", "FUSED_BACKWARD"]

logger = logging.getLogger(__name__)

ORDER = ("cython", "numba", "numpy")

KERNEL_NAMES = (
    "spmm",
    "spmm_scatter",
    "spmm_t",
    "sddmm",
    "backward_fused",
    "csr_transpose",
    "csr_merge",
    "csr_compact",
    "merge_values",
    "empty_slots",
    "sgd_update",
    "adam_update",
)


class KernelSet(types.SimpleNamespace):
    """Frozen namespace of one backend's kernels (``ks.spmm(...)``) plus ``ks.name`` and
    ``ks.isa`` (the Cython module's instruction-set variant, None for the other backends)."""

    def __setattr__(self, key, value):
        raise AttributeError("KernelSet is read-only")

    def __repr__(self):
        return f"KernelSet({self.name!r})"


_reasons: dict[str, str] = {}
_modules: dict[str, object] = {}


def _load(name):
    """Import a backend module, or record why it is unavailable and return None."""
    if name in _modules:
        return _modules[name]
    if name in _reasons:
        return None
    mod = None
    if name == "numpy":
        mod = _reference
    elif name == "cython":
        # Idle OpenMP threads sleep instead of spinning (unless the user chose otherwise):
        # on a shared 2-core machine spinning threads made an epoch 4x slower (0.56 vs
        # 0.14 s/epoch, digits, load average 4). Read by libgomp when it first loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from . import _cython as base  # compiled at install time from csrc/_cython.pyx
        except ImportError as exc:
            _reasons[name] = f"not built (no C compiler at install time?): {exc}"
            base = None
        if base is not None:
            mod = _cython_variant(base, os.environ.get("SPARSEMLP_ISA", "auto") or "auto")
            mod.set_parallel_threshold(_flags.PAR_MIN_FLOPS)
    elif name == "numba":
        try:
            from . import _numba as mod
        except ImportError as exc:
            _reasons[name] = f"not installed ({exc}); pip install 'sparsemlp[numba]'"
            mod = None
    else:
        raise ValueError(f"Unknown kernel backend {name!r}. Choose one of {ORDER} or 'auto'.")
    if mod is not None:
        _modules[name] = mod
    return mod


# Instruction-set variants of the Cython module, fastest first, with the CPU level each needs
# (the baseline module's cpu_level(): 1 = x86-64-v3, 2 = x86-64-v4). Same source, same
# results for the gathers (no FMA contraction); the dot products of sddmm may differ in the
# last bits between variants (vector width sets the summation order).
ISAS = {"avx512": 2, "avx2": 1, "baseline": 0}
_isa_reasons: dict[str, str] = {}


def _import_isa(isa, base):
    """The Cython module built for ``isa``, or None with the reason in _isa_reasons."""
    if isa == "baseline":
        return base
    if base.cpu_level() < ISAS[isa]:
        _isa_reasons[isa] = "this CPU lacks the instructions"
        return None
    try:
        return importlib.import_module(f"{__name__}._cython_{isa}")
    except ImportError as exc:
        _isa_reasons[isa] = f"not built ({exc})"
        return None


def _cython_variant(base, want):
    """The best usable ISA variant (``want="auto"``) or the one named by SPARSEMLP_ISA."""
    if want != "auto":
        if want not in ISAS:
            raise ValueError(f"SPARSEMLP_ISA={want!r} is not an instruction-set variant. "
                             f"Choose one of 'auto', {', '.join(map(repr, ISAS))}.")
        mod = _import_isa(want, base)
        if mod is None:
            raise ValueError(f"SPARSEMLP_ISA={want!r} is unavailable: {_isa_reasons[want]}. "
                             "Unset it to take the best variant this machine supports.")
        return mod
    for isa in ISAS:
        mod = _import_isa(isa, base)
        if mod is not None:
            return mod
    return base  # unreachable: the baseline is always usable


def cython_variants():
    """Instruction-set variants of the Cython backend usable here.

    Returns
    -------
    dict
        ISA name (``"avx512"``, ``"avx2"``, ``"baseline"``) -> KernelSet, for every variant
        that is built and that this CPU can run (empty without the Cython backend). The
        ``"cython"`` backend is the first of them unless ``SPARSEMLP_ISA`` names another.
    """
    if not _is_available("cython"):
        return {}
    from . import _cython as base

    out = {}
    for isa in ISAS:
        mod = _import_isa(isa, base)
        if mod is not None:
            mod.set_parallel_threshold(_flags.PAR_MIN_FLOPS)
            out[isa] = _kernel_set("cython", mod)
    return out


def _is_available(name):
    return _load(name) is not None


def available():
    """Names of the kernel backends that load on this machine, fastest first.

    Returns
    -------
    list of str
        A subset of ``["cython", "numba", "numpy"]``; ``"numpy"`` is always present.
    """
    return [n for n in ORDER if _is_available(n)]


def unavailable_reasons():
    """Why each unavailable backend could not be loaded.

    Returns
    -------
    dict
        Backend name -> one-line reason.
    """
    for n in ORDER:
        _load(n)
    return dict(_reasons)


def _debug_wrap(name, fn):
    from .._validation import check_kernel_args

    @functools.wraps(fn)
    def wrapper(*args):
        check_kernel_args(name, args)
        return fn(*args)

    return wrapper


@functools.cache
def get(name="auto"):
    """The KernelSet of one backend.

    Parameters
    ----------
    name : {"auto", "cython", "numba", "numpy"}, default="auto"
        ``"auto"`` honours the ``SPARSEMLP_BACKEND`` environment variable, else takes the
        first available of cython, numba, numpy.

    Returns
    -------
    KernelSet
        Namespace with one function per name in ``KERNEL_NAMES`` and ``name``.

    Raises
    ------
    ValueError
        If the backend is unknown or unavailable here (the message gives the reason).
    """
    if name is None or name == "auto":
        name = os.environ.get("SPARSEMLP_BACKEND", "auto") or "auto"
    if name == "auto":
        for cand in ORDER:
            if _is_available(cand):
                name = cand
                break
        if name == "numpy":
            logger.warning(
                "compiled kernels unavailable (%s); using the slow NumPy reference backend",
                "; ".join(f"{k}: {v}" for k, v in _reasons.items()),
            )
    if name not in ORDER:
        raise ValueError(
            f"Unknown kernel backend {name!r}. Choose one of 'auto', 'cython', 'numba', 'numpy'."
        )
    mod = _load(name)
    if mod is None:
        raise ValueError(
            f"The kernel backend {name!r} is unavailable: {_reasons[name]}. "
            f"Available here: {available()}."
        )
    return _kernel_set(name, mod)


def _kernel_set(name, mod):
    debug = os.environ.get("SPARSEMLP_DEBUG", "") not in ("", "0")
    fns = {k: getattr(mod, k) for k in KERNEL_NAMES}
    if debug:
        fns = {k: _debug_wrap(k, f) for k, f in fns.items()}
    return KernelSet(name=name, isa=getattr(mod, "ISA", None), **fns)


def resolve(kernels="auto"):
    """A KernelSet as given, or the one a backend name selects (what constructors accept).

    Parameters
    ----------
    kernels : KernelSet or str or None, default="auto"
        A KernelSet (returned as is) or a name for :func:`get`.

    Returns
    -------
    KernelSet
        The kernels.
    """
    return kernels if isinstance(kernels, KernelSet) else get(kernels)


def active():
    """Name of the backend ``get("auto")`` selects.

    Returns
    -------
    str
        ``"cython"``, ``"numba"`` or ``"numpy"``.
    """
    return get("auto").name


def numba_threads():
    """Numba's thread count and threading layer, or None when Numba was never imported.

    Returns
    -------
    tuple of (int, str) or None
        ``(threads, layer)``; the layer reads ``"not yet initialised"`` before the first
        parallel kernel ran. None when this process has not imported Numba (it is not
        imported here just to report on it).
    """
    import sys

    if "numba" not in sys.modules:
        return None
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not yet initialised"
    return numba.get_num_threads(), layer


def index_dtype(*sizes):
    """Index dtype: int32 while every size is below 2**31 - 1, else int64 (never intp).

    Parameters
    ----------
    *sizes : int
        Dimensions and nnz that indices and pointers must represent.

    Returns
    -------
    numpy.dtype
        ``int32`` or ``int64``.
    """
    lim = np.iinfo(np.int32).max
    return np.dtype(np.int64) if any(int(s) >= lim for s in sizes) else np.dtype(np.int32)
