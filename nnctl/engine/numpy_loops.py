"""NumPy's own float32 ``exp`` and ``log`` loops, callable from compiled code, so that a
lane computes exponentials and logarithms of its rows that round exactly as
``np.exp`` and ``np.log`` of the whole array do (numba's own round differently).

A ufunc keeps one inner loop per type signature in its ``functions`` array (public
fields of NumPy's ``PyUFuncObject``: nin, nout, nargs, identity, functions, data,
ntypes, …, types).  The loop for float32 → float32 is registered with LLVM under
``nnctl_numpy_exp_f32`` / ``nnctl_numpy_log_f32``; its call is
``loop(char **args, npy_intp *dimensions, npy_intp *steps, void *data)``, with
args = (input, output), dimensions = (n,), steps = (4, 4) for contiguous float32.

``register`` accepts a loop only after it has given, bit for bit, what the ufunc gives
on a set of test values (specials, both ranges, odd lengths and offsets, in place);
anything else, and the callers keep NumPy's call on the whole array.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

NPY_FLOAT = 11
SYMBOLS = {"exp": "nnctl_numpy_exp_f32", "log": "nnctl_numpy_log_f32"}


class _UfuncHead(ctypes.Structure):
    """The leading fields of NumPy's PyUFuncObject (ufuncobject.h)."""

    _fields_ = [
        ("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
        ("nin", ctypes.c_int), ("nout", ctypes.c_int), ("nargs", ctypes.c_int), ("identity", ctypes.c_int),
        ("functions", ctypes.POINTER(ctypes.c_void_p)), ("data", ctypes.POINTER(ctypes.c_void_p)),
        ("ntypes", ctypes.c_int), ("reserved1", ctypes.c_int), ("name", ctypes.c_char_p),
        ("types", ctypes.POINTER(ctypes.c_char)),
    ]


_LOOP = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _float32_loop(ufunc: np.ufunc) -> int | None:
    """The address of ``ufunc``'s float32 → float32 inner loop (which takes no data), or None."""
    if not isinstance(ufunc, np.ufunc) or ufunc.nin != 1 or ufunc.nout != 1:
        return None
    head = _UfuncHead.from_address(id(ufunc))
    if (head.nin, head.nout, head.nargs, head.ntypes) != (1, 1, 2, ufunc.ntypes) or head.name != ufunc.__name__.encode():
        return None
    for i in range(head.ntypes):
        if head.types[2 * i][0] == NPY_FLOAT and head.types[2 * i + 1][0] == NPY_FLOAT:
            if head.data[i] or not head.functions[i]:
                return None
            return int(head.functions[i])
    return None


def _call(address: int, src: np.ndarray, dst: np.ndarray) -> None:
    args = (ctypes.c_void_p * 2)(src.ctypes.data, dst.ctypes.data)
    dims = (ctypes.c_ssize_t * 1)(src.size)
    steps = (ctypes.c_ssize_t * 2)(4, 4)
    _LOOP(address)(ctypes.addressof(args), ctypes.addressof(dims), ctypes.addressof(steps), None)


def _test_values(name: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    specials = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38,
                         88.72, 88.73, -87.3, -103.9, -104.0], np.float32)
    if name == "exp":
        body = np.concatenate([rng.uniform(-104, 89, 4000), rng.uniform(-20, 0, 4000), rng.standard_normal(1000)])
    else:
        body = np.concatenate([rng.uniform(0, 1, 4000), 10.0 ** rng.uniform(-45, 38, 4000), rng.uniform(-1, 2, 1000)])
    return np.concatenate([specials, body.astype(np.float32)])


def _agrees(name: str, address: int) -> bool:
    """The loop gives the ufunc's bits, whole, in pieces at odd offsets, and in place."""
    ufunc = getattr(np, name)
    values = _test_values(name)
    with np.errstate(all="ignore"):
        result = ufunc(values)
        expected = result.view(np.int32)
        out = np.empty_like(values)
        at = 0
        for piece in (1, 3, 7, 15, 16, 17, 31, 64, 100, 1000):
            _call(address, values[at:at + piece], out[at:at + piece])
            at += piece
        _call(address, values[at:], out[at:])
        in_place = values.copy()
        _call(address, in_place[5:], in_place[5:])
        _call(address, in_place[:5], in_place[:5])
    nan = np.isnan(result)
    same = out.view(np.int32) == expected
    same_in_place = in_place.view(np.int32) == expected
    # NaN payloads are not numbers: any NaN for a NaN.
    return bool(np.all(same | (nan & np.isnan(out))) and np.all(same_in_place | (nan & np.isnan(in_place))))


@lru_cache(maxsize=1)
def register() -> bool:
    """Register NumPy's float32 exp and log loops for compiled code (``SYMBOLS``); whether
    both are there and agree with the ufuncs."""
    try:
        import llvmlite.binding as llvm
    except ImportError:
        return False
    found = {}
    for name in SYMBOLS:
        address = _float32_loop(getattr(np, name))
        if address is None or not _agrees(name, address):
            return False
        found[name] = address
    for name, address in found.items():
        llvm.add_symbol(SYMBOLS[name], address)
    return True
