"""Ring (Z_2^64) matrix product through the C kernel, because numpy's integer matmul skips BLAS;
without the kernel, large products go through float64 BLAS on limbs (`limbs.py`), still exact."""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from veil.cffi_kernels import limbs

try:
    from veil.cffi_kernels._ring import ffi as _ffi, lib as _lib
except ImportError:  # built only when a C compiler was present at install time
    _ffi = _lib = None

HAVE_C: bool = _lib is not None

# Below this many multiply-adds (m * k * n) numpy's own loop is as fast as the call overhead.
SMALL_WORK: int = 2048
# Without C: from this many multiply-adds, with both outer sides at least LIMB_SIDE, the six BLAS
# limb products beat numpy's integer loop (measured in programs/bench_kernels.py).
LIMB_WORK: int = 1 << 18
LIMB_SIDE: int = 16
# matmul2: below this many output columns the C kernel's 4-wide tiles waste most lanes, and two
# calls of matmul() (its dot-product form) are faster (programs/bench_kernels.py, 1000x784 @ 784xn).
NARROW_N: int = 3

BUILD_HINT = (
    "veil's C ring kernels are not built; falling back to numpy's (slower) integer matmul. "
    "Build them with `pip install -e .` (or `pip install .`) on a machine with a C compiler."
)

_warned = False

U64 = np.dtype(np.uint64)


def _u64_view(x: Any) -> np.ndarray:
    """A uint64 view as it comes (int64 reinterpreted bit for bit, i.e. already mod 2^64)."""
    arr = np.asarray(x)
    if arr.dtype == U64:
        return arr
    if arr.dtype != np.int64:
        raise TypeError(f"ring matmul needs uint64 or int64 arrays, got {arr.dtype}")
    return arr.view(np.uint64)


def _as_u64(x: Any) -> np.ndarray:
    """A C-contiguous uint64 view (see _u64_view), copied only when it is not contiguous."""
    arr = _u64_view(x)
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _check_shapes(a: np.ndarray, b: np.ndarray) -> None:
    """Fail like numpy would, but before handing raw pointers to C."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"ring matmul needs 2-D arrays, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"ring matmul shape mismatch: {a.shape} @ {b.shape}")


def _warn_fallback() -> None:
    """Say once per process that the fast path is missing and how to get it."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(BUILD_HINT, RuntimeWarning, stacklevel=4)  # the caller of matmul()


def matmul_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Reference path: numpy's uint64 matmul wraps modulo 2^64 exactly."""
    return np.matmul(a, b)


def matmul_limbs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Float64 BLAS on 22-bit limbs: exact, and ~2x numpy's integer loop on large products."""
    return limbs.matmul(a, b)


def matmul_c(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The C kernel on C-contiguous uint64 inputs of matching 2-D shapes."""
    assert _lib is not None and _ffi is not None
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), dtype=np.uint64)
    if m == 0 or n == 0:
        return out
    rc = _lib.ring_matmul(
        _ffi.from_buffer("uint64_t[]", a),
        _ffi.from_buffer("uint64_t[]", b),
        _ffi.from_buffer("uint64_t[]", out, require_writable=True),
        m,
        k,
        n,
    )
    if rc != 0:
        raise MemoryError("ring_matmul: out of memory")
    return out


def _choose(a: np.ndarray, b: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The C kernel unless it is missing or the product is too small to pay for the call."""
    if not HAVE_C:
        _warn_fallback()
        m, k = a.shape
        n = b.shape[1]
        if m * k * n >= LIMB_WORK and min(m, n) >= LIMB_SIDE:
            return matmul_limbs
        return matmul_numpy
    if a.size * b.shape[1] < SMALL_WORK:
        return matmul_numpy
    return matmul_c


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A @ B modulo 2^64 for 2-D uint64 (or int64) arrays; always returns a fresh uint64 array."""
    a = _as_u64(a)
    b = _as_u64(b)
    _check_shapes(a, b)
    return _choose(a, b)(a, b)



def _ptr(x: np.ndarray | None) -> Any:
    """A C pointer to a contiguous uint64 array, or NULL."""
    assert _ffi is not None
    return _ffi.NULL if x is None else _ffi.from_buffer("uint64_t[]", x)


def _view_ptr(x: np.ndarray | None) -> Any:
    """A C pointer to element [0, 0] of a (possibly strided) uint64 view, or NULL; the caller keeps
    x alive for the call."""
    assert _ffi is not None
    if x is None or x.size == 0:
        return _ffi.NULL
    if x.flags.c_contiguous:
        return _ffi.from_buffer("uint64_t[]", x)
    return _ffi.cast("uint64_t *", x.__array_interface__["data"][0])


def _row_major(ops: tuple[np.ndarray | None, ...]) -> bool:
    """Whether every operand present is C-contiguous (then the kernel needs no strides)."""
    for x in ops:
        if x is not None and not x.flags.c_contiguous:
            return False
    return True


def _word_strides(ops: tuple[np.ndarray | None, ...]) -> list[int]:
    """Row and column strides in words of each operand (zeros for an absent one)."""
    out: list[int] = []
    for x in ops:
        out.extend((0, 0) if x is None else (x.strides[0] // 8, x.strides[1] // 8))
    return out


def matmul2_c(a1: np.ndarray, b1: np.ndarray, b1x: np.ndarray | None, a2: np.ndarray | None,
              b2: np.ndarray | None, b2x: np.ndarray | None) -> np.ndarray:
    """The one-pass C kernel on checked uint64 operands (see matmul2); views with word-multiple
    strides (transposes, slices) are read in place."""
    assert _lib is not None and _ffi is not None
    m, k = a1.shape
    n = b1.shape[1]
    out = np.empty((m, n), dtype=np.uint64)
    if m == 0 or n == 0:
        return out
    ops = (a1, b1, b1x, a2, b2, b2x)
    if _row_major(ops):  # the common case, kept cheap
        ptrs, strides = [_ptr(x) for x in ops], _ffi.NULL
    else:
        ptrs, strides = [_view_ptr(x) for x in ops], _ffi.new("int64_t[12]", _word_strides(ops))
    rc = _lib.ring_matmul2(*ptrs, strides, _ffi.from_buffer("uint64_t[]", out, require_writable=True),
                           m, k, n)
    if rc != 0:
        raise MemoryError("ring_matmul2: out of memory")
    return out


def matmul2_reference(a1: np.ndarray, b1: np.ndarray, b1x: np.ndarray | None, a2: np.ndarray | None,
                      b2: np.ndarray | None, b2x: np.ndarray | None) -> np.ndarray:
    """The same sum through matmul() (numpy, limbs or one C call per product)."""
    z = matmul(a1, b1 if b1x is None else b1 + b1x)
    if a2 is not None:
        assert b2 is not None
        np.add(z, matmul(a2, b2 if b2x is None else b2 + b2x), out=z)
    return z


def _operand(x: Any, shape: tuple[int, int] | None, what: str) -> np.ndarray:
    """A checked 2-D uint64 operand of the given shape: a view as it comes (the C kernel reads
    strides), copied only when it is not word-aligned or its strides are not whole words."""
    arr = _u64_view(x)
    if arr.ndim != 2 or (shape is not None and arr.shape != shape):
        raise ValueError(f"ring matmul2: {what} has shape {arr.shape}, needs {shape or '2-D'}")
    flags = arr.flags
    if flags.c_contiguous and flags.aligned:  # the common case, kept cheap
        return arr
    if not flags.aligned or arr.strides[0] % 8 or arr.strides[1] % 8:
        arr = arr.copy(order="C")
    return arr


def _rows_contiguous(a: np.ndarray) -> np.ndarray:
    """A with contiguous rows: a column-wise A (a transposed view) copied, which is cheaper than
    the kernel's in-place reads of it (programs/bench_kernels.py, 128x128 @ 128x128: ~5 %)."""
    if a.strides[1] == 8 or a.shape[0] < 2 or a.shape[1] < 2 or a.strides[0] != 8:
        return a
    return np.ascontiguousarray(a)


def matmul2(a1: Any, b1: Any, a2: Any = None, b2: Any = None, *, b1x: Any = None,
            b2x: Any = None) -> np.ndarray:
    """A1 @ (B1 + B1x) + A2 @ (B2 + B2x) modulo 2^64 (B1x, the second term and B2x optional),
    fresh uint64; one pass of the C kernel over the output, the sums formed inside it."""
    a1 = _operand(a1, None, "A1")
    m, k = a1.shape
    b1 = _operand(b1, None, "B1")
    _check_shapes(a1, b1)
    kn = (k, b1.shape[1])
    b1x = None if b1x is None else _operand(b1x, kn, "B1x")
    if a2 is None:
        if b2 is not None or b2x is not None:
            raise ValueError("ring matmul2: B2 given without A2")
    else:
        a2 = _operand(a2, (m, k), "A2")
        b2 = _operand(b2, kn, "B2")
        b2x = None if b2x is None else _operand(b2x, kn, "B2x")
    if HAVE_C and a1.size * kn[1] >= SMALL_WORK and kn[1] >= NARROW_N:
        if kn[1] >= m:  # the C kernel computes C^T for column-wise A's only when n < m
            a1, a2 = _rows_contiguous(a1), None if a2 is None else _rows_contiguous(a2)
        return matmul2_c(a1, b1, b1x, a2, b2, b2x)
    return matmul2_reference(a1, b1, b1x, a2, b2, b2x)


def avx2_path(on: bool | None = None) -> bool:
    """Whether the C kernels' AVX2 path runs (False without C); `on` switches it off or back on,
    so tests can check the portable loops against it."""
    if _lib is None:
        return False
    return bool(_lib.ring_avx2(-1 if on is None else int(on)))
