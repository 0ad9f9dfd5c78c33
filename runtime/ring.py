"""Ring arithmetic on uint64 tensors (mod 2^64): encodings, the ring matmul, exact shifts and
division; the building blocks of the operations' clear semantics in `ops.py`."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

import numpy as np

try:
    from veil.cffi_kernels.ring import matmul as _ring_matmul, matmul2 as _ring_matmul2
except ImportError:  # the kernels package is optional; numpy's uint64 matmul wraps exactly
    _ring_matmul = _ring_matmul2 = None

U64 = np.uint64
_U64 = np.dtype(U64)  # numpy's one native uint64 dtype object: an identity test names it


def asring(x: Any) -> np.ndarray:
    """A uint64 ndarray (never a numpy scalar, whose arithmetic warns on wrap-around)."""
    if type(x) is np.ndarray and x.dtype is _U64:  # already one (the common case): no new view
        return x
    return np.asarray(x).astype(U64, copy=False).reshape(np.shape(x))


# glibc's malloc returns a freed block above its mmap threshold to the OS at once, so a kernel's
# fresh 8-32 MB arrays page-fault on every trip; these settings keep freed memory for reuse.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling on 64-bit
_TRIM_THRESHOLD = 1 << 30


def retain_freed_memory() -> bool:
    """Have glibc keep freed blocks of up to 32 MB for reuse (a party process calls this once per
    session); False where there is no glibc or VEIL_MALLOC_DEFAULT=1 asks for the defaults."""
    if not sys.platform.startswith("linux") or os.environ.get("VEIL_MALLOC_DEFAULT") == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs: keep their defaults
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def signed(x: np.ndarray) -> np.ndarray:
    """The two's complement reading of a ring tensor."""
    return np.asarray(x).view(np.int64)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Ring matrix product of 2-D tensors, through the C kernel where it is built."""
    if _ring_matmul is not None and a.ndim == 2 and b.ndim == 2:
        return _ring_matmul(a, b)
    return np.matmul(a, b)


def matmul2(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray | None = None, b2: np.ndarray | None = None, *,
            b1x: np.ndarray | None = None, b2x: np.ndarray | None = None) -> np.ndarray:
    """A1 @ (B1 + B1x) + A2 @ (B2 + B2x) in the ring (the optional parts may be None): a secret
    product's two matrix products in one pass of the C kernel where it is built."""
    if _ring_matmul2 is not None:
        return _ring_matmul2(a1, b1, a2, b2, b1x=b1x, b2x=b2x)
    z = asring(np.matmul(a1, b1 if b1x is None else b1 + b1x))
    if a2 is not None:
        np.add(z, np.matmul(a2, b2 if b2x is None else b2 + b2x), out=z)
    return z


def trunc(x: np.ndarray, bits: int) -> np.ndarray:
    """Exact arithmetic shift right: floor(x / 2^bits) on the signed reading."""
    return (signed(x) >> np.int64(bits)).view(U64)


def index_key(items: list) -> tuple:
    """A numpy index from the IR's static slice description."""
    key = []
    for it in items:
        if it[0] == "i":
            key.append(int(it[1]))
        else:
            key.append(slice(it[1], it[2], it[3]))
    return tuple(key)


def dslice(x: np.ndarray, start: np.ndarray, axis: int, length: int, step: int) -> np.ndarray:
    """A slice whose start is a run-time public int (a loop variable's affine function)."""
    s = int(signed(np.asarray(start)).reshape(-1)[0])
    key = [slice(None)] * x.ndim
    key[axis] = slice(s, s + length * step, step)
    return x[tuple(key)]


def div(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """a / b of two ring values at the same scale, rounded down to `bits` fractional bits."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.floor_divide(signed(a) << np.int64(bits), signed(b))


def toint(a: np.ndarray, bits: int) -> np.ndarray:
    """A fixed-point value's integer part, rounded toward zero like numpy's astype(int)."""
    s = signed(a)
    q = np.abs(s) >> np.int64(bits)
    return np.where(s < 0, -q, q)
