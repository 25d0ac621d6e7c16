"""Boundary checks with one message format: parameters, arrays, canonical CSR, kernel arguments."""

import numbers

import numpy as np

__all__ = ["check_param", "check_array", "check_finite", "check_csr", "check_kernel_args"]


def _owner(owner):
    return f" of {owner}" if owner else ""


def check_param(name, value, kind, *, low=None, high=None, low_open=False, high_open=False,
                options=None, owner=None):
    """Validate one scalar hyperparameter and return it converted.

    Parameters
    ----------
    name : str
        Parameter name used in the message.
    value : object
        The value to check.
    kind : {"int", "float", "bool", "str"}
        Expected type.
    low, high : float, optional
        Bounds; closed unless ``low_open``/``high_open``.
    low_open, high_open : bool, default=False
        Whether the bounds are excluded.
    options : sequence of str, optional
        Allowed values for ``kind="str"``.
    owner : str, optional
        Class or function name shown in the message.

    Returns
    -------
    object
        ``value`` converted to the requested type.

    Raises
    ------
    TypeError
        If the type is wrong.
    ValueError
        If the value is outside the allowed range or options.
    """
    where = _owner(owner)
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"The {name!r} parameter{where} must be a bool. Got {value!r} instead.")
        return bool(value)
    if kind == "str":
        if not isinstance(value, str) or (options is not None and value not in options):
            opts = ", ".join(repr(o) for o in options) if options else "a string"
            raise ValueError(
                f"The {name!r} parameter{where} must be one of {opts}. Got {value!r} instead."
            )
        return value
    if kind == "int":
        ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
        conv = int
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        conv = float
    lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
    hi = "" if high is None else f"{high}" + (")" if high_open else "]")
    rng = f" in the range {lo or '(-inf'}, {hi or 'inf)'}" if (low is not None or high is not None) else ""
    msg = f"The {name!r} parameter{where} must be {'an int' if kind == 'int' else 'a float'}{rng}."
    if not ok:
        raise TypeError(f"{msg} Got {value!r} instead.")
    v = conv(value)
    if kind == "float" and not np.isfinite(v):
        raise ValueError(f"{msg} Got {value!r} instead.")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{msg} Got {value!r} instead.")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{msg} Got {value!r} instead.")
    return v


def check_finite(a, name):
    """Raise ValueError naming ``name`` if ``a`` holds NaN or infinity.

    Parameters
    ----------
    a : ndarray
        Floating array.
    name : str
        Name used in the message.

    Raises
    ------
    ValueError
        If any entry is NaN or +-inf.
    """
    if a.dtype.kind in "fc" and a.size and not np.isfinite(a).all():
        n_nan = int(np.isnan(a).sum())
        n_inf = int(np.isinf(a).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite values. Remove or impute them "
            "(e.g. sklearn.impute.SimpleImputer) before training."
        )


def check_array(a, name, *, ndim=2, dtype=None, n_cols=None, owner=None, finite=True):
    """Return ``a`` as a C-contiguous array of the given ndim/dtype, validated.

    Parameters
    ----------
    a : array_like
        Input data.
    name : str
        Name used in messages (e.g. ``"X"``).
    ndim : int, default=2
        Required number of dimensions.
    dtype : dtype, optional
        Target floating dtype; integers are converted, other floats preserved if None.
    n_cols : int, optional
        Required number of columns.
    owner : str, optional
        Object name used in the column-count message.
    finite : bool, default=True
        Reject NaN and infinity.

    Returns
    -------
    ndarray
        Validated array (a copy only where conversion needs one).

    Raises
    ------
    ValueError
        On wrong dimensionality, column count, empty input or non-finite values.
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric. Got an array of dtype {arr.dtype}.")
    if dtype is None and arr.dtype.kind != "f":
        dtype = np.float32
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array. Got shape {arr.shape}. "
            + ("Reshape a single sample with x.reshape(1, -1)." if ndim == 2 else "")
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples; at least 1 is required.")
    if n_cols is not None and ndim == 2 and arr.shape[1] != n_cols:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but this {owner or 'model'} was built for "
            f"{n_cols} inputs. Pass {n_cols} columns or build a new model."
        )
    if finite:
        check_finite(arr, name)
    return arr


def check_csr(w, name="W"):
    """Check that a csr_array is canonical with consistent index arrays.

    Parameters
    ----------
    w : scipy.sparse.csr_array
        Matrix to check.
    name : str, default="W"
        Name used in messages.

    Raises
    ------
    ValueError
        If indptr, indices or data are inconsistent, out of range, unsorted or duplicated.
    """
    n_rows, n_cols = w.shape
    indptr, indices, data = w.indptr, w.indices, w.data
    if indptr.shape != (n_rows + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ValueError(f"{name}.indptr is not a valid row pointer for {n_rows} rows.")
    nnz = int(indptr[-1])
    if indices.shape != (nnz,) or data.shape != (nnz,):
        raise ValueError(
            f"{name} has indptr[-1]={nnz} but {indices.shape[0]} indices and {data.shape[0]} values."
        )
    if indices.dtype != indptr.dtype or indices.dtype not in (np.int32, np.int64):
        raise ValueError(f"{name} indices must be int32 or int64 and match indptr.")
    if nnz and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(f"{name} has column indices outside [0, {n_cols}).")
    if nnz > 1:
        d = np.diff(indices.astype(np.int64))
        starts = indptr[1:-1]
        inner = np.ones(nnz - 1, dtype=bool)
        inner[starts[(starts > 0) & (starts < nnz)] - 1] = False
        if np.any(d[inner] <= 0):
            raise ValueError(
                f"{name} must be canonical CSR (sorted indices, no duplicates). "
                "Call W.sum_duplicates() first."
            )


def check_kernel_args(kernel, args):
    """Debug-mode check (SPARSEMLP_DEBUG=1) that every array argument is C-contiguous.

    Parameters
    ----------
    kernel : str
        Kernel name used in the message.
    args : tuple
        Positional arguments of the kernel call.

    Raises
    ------
    ValueError
        If an array argument is not C-contiguous, or float arrays mix dtypes.
    """
    floats = set()
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            if not a.flags.c_contiguous:
                raise ValueError(f"{kernel}: argument {i} is not C-contiguous.")
            if a.dtype.kind == "f":
                floats.add(a.dtype)
    if len(floats) > 1:
        raise ValueError(f"{kernel}: float arguments mix dtypes {sorted(map(str, floats))}.")
