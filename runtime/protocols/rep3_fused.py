"""rep3 truncation's elementwise formulas, each party's in one call: a C pass where the kernels are
built (one sweep over memory instead of one per numpy operator), else numpy with in-place ops.
Both paths give the same words (tests/test_rep3_fused.py); rep3.py's kernels call these only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

try:
    from veil.cffi_kernels._ring import ffi as _ffi, lib as _lib
except ImportError:  # built only when a C compiler was present at install time
    _ffi = _lib = None

U64 = np.uint64
_U64 = np.dtype(U64)  # numpy's one native uint64 dtype object: an identity test names it
TOP = U64(63)
LOW63 = U64((1 << 63) - 1)
OFFSET = U64(1 << 62)   # makes z + 2^62 lie in [0, 2^63) for |z| < 2^62

TRUNC_ABI = 3  # the argument lists of trunc.c's entry points (its veil_trunc_abi)
# A stale build lacks the formulas or takes other arguments: then the numpy path runs.
HAVE_C: bool = _lib is not None and hasattr(_lib, "veil_trunc_abi") and _lib.veil_trunc_abi() == TRUNC_ABI
use_c: bool = HAVE_C  # tests switch it off to run the numpy path


def _u64(a: np.ndarray) -> np.ndarray:
    """A C-contiguous, aligned uint64 array (no copy when it already is one)."""
    if type(a) is np.ndarray and a.dtype is _U64:  # the kernels' own arrays: skip np.require's ~1 us
        flags = a.flags
        if flags.c_contiguous and flags.aligned:
            return a
    return np.require(a, dtype=U64, requirements="CA")


_U64_ARRAY = _ffi.typeof("uint64_t[]") if _ffi is not None else None
_NULL = _ffi.NULL if _ffi is not None else None
_F_DTYPE = {2: np.dtype(np.uint16), 4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}  # f_bytes -> f's elements


def _ptr(a: np.ndarray | None) -> Any:
    """The array's data for C (cffi's typed from_buffer is the cheap way; read-only is fine)."""
    return _NULL if a is None else _ffi.from_buffer(_U64_ARRAY, a)


def _operand(a: np.ndarray, n: int) -> np.ndarray:
    """One operand as a flat aligned uint64 array of n elements."""
    a = _u64(a)
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.size != n:
        raise ValueError(f"fused rep3 kernel: operand of {a.size} elements, expected {n}")
    return a


def _check(n: int, *arrays: np.ndarray | None) -> list[np.ndarray | None]:
    """The arrays as flat aligned uint64, each of n elements (None passes through)."""
    return [None if a is None else _operand(a, n) for a in arrays]


def _c_args(n: int, *arrays: np.ndarray | None) -> list[Any]:
    """The arrays' data for C, each checked as _check does (None: NULL); one pass instead of two.
    A pointer holds its (possibly converted) array alive for as long as it is used."""
    from_buffer, typ = _ffi.from_buffer, _U64_ARRAY
    out = []
    for a in arrays:
        if a is None:
            out.append(_NULL)
        elif (type(a) is np.ndarray and a.dtype is _U64 and a.ndim == 1 and a.size == n
              and (flags := a.flags).c_contiguous and flags.aligned):
            out.append(from_buffer(typ, a))  # _operand's common case, inline
        else:
            out.append(from_buffer(typ, _operand(a, n)))
    return out


def open_mask(product: tuple[np.ndarray, ...], r: np.ndarray) -> np.ndarray:
    """z + r: z = xa*(ya+yb) + xb*ya for product (xa, xb, ya, yb), or z for (z,)."""
    n = r.size
    if len(product) not in (1, 4):
        raise ValueError("open_mask takes (z,) or (xa, xb, ya, yb)")
    out = np.empty(n, dtype=U64)
    if use_c and HAVE_C:
        args = _c_args(n, *product, r)
        if len(product) == 4:
            args.insert(4, _NULL)  # no z: the product's operands
        else:
            args[0:0] = [_NULL] * 4  # z given: no operands
        _lib.veil_rep3_open_mask(*args, _ptr(out), n)
        return out
    *base, r = _check(n, *product, r)
    if len(base) == 4:
        xa, xb, ya, yb = base
        np.add(ya, yb, out=out)
        np.multiply(out, xa, out=out)
        tmp = np.multiply(xb, ya)
        np.add(out, tmp, out=out)
    else:
        np.copyto(out, base[0])
    return np.add(out, r, out=out)


def f_bytes(m: int) -> int:
    """Bytes per element of the dealer's f = r63b mod 2^(8 f_bytes): P1 reads r63b only modulo 2^m."""
    return 2 if m <= 16 else 4 if m <= 32 else 8


def f_words(n: int, m: int) -> int:
    """Ring words (8 bytes) that carry n elements of f for a shift by m."""
    return (n * f_bytes(m) + 7) // 8


def trunc_deal(ra: np.ndarray, rb: np.ndarray, r63a: np.ndarray, rla: np.ndarray, m: int,
               rc: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The dealer's parts for P1 of the mask r = ra + rb (+ rc: rep3's dealer masks its own opened
    share with a private rc): with r63b = (r >> 63) - r63a and rlb = ((r & LOW63) >> m) - rla,
    e = r63b * 2^(63-m) - rlb and f, r63b's low 8 f_bytes(m) bits packed into f_words(n, m) words
    (P1's formula reads r63b only through e and r63b mod 2^m)."""
    n = ra.size
    e, f = np.empty(n, dtype=U64), np.empty(f_words(n, m), dtype=U64)
    if f.size:
        f[-1] = 0  # the padding after the last element travels too: never uninitialized memory
    if use_c and HAVE_C:
        _lib.veil_rep3_trunc_deal(*_c_args(n, ra, rb, rc, r63a, rla), m, _ptr(e), _ptr(f), f_bytes(m), n)
        return e, f
    ra, rb, rc, r63a, rla = _check(n, ra, rb, rc, r63a, rla)
    r = np.add(ra, rb)
    if rc is not None:
        np.add(r, rc, out=r)
    r63b = np.right_shift(r, TOP)
    np.subtract(r63b, r63a, out=r63b)
    np.bitwise_and(r, LOW63, out=r)
    np.right_shift(r, U64(m), out=r)
    np.subtract(r, rla, out=r)            # rlb
    f.view(_F_DTYPE[f_bytes(m)])[:n] = r63b  # wraps to the low bits
    np.multiply(r63b, U64(1 << (63 - m)), out=e)
    np.subtract(e, r, out=e)
    return e, f


def _opened(s: np.ndarray, g: np.ndarray, h: np.ndarray | None) -> np.ndarray:
    """The opened value c = s + g + h + 2^62."""
    c = np.add(s, g)
    if h is not None:
        np.add(c, h, out=c)
    return np.add(c, OFFSET, out=c)


def _opened_sign(s: np.ndarray, g: np.ndarray, h: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """c (see _opened) and sgn = 1 - 2 * (c >> 63), the opened value and its sign factor."""
    c = _opened(s, g, h)
    sgn = np.right_shift(c, TOP)
    np.multiply(sgn, U64(2), out=sgn)
    np.subtract(U64(1), sgn, out=sgn)
    return c, sgn


MINUS_ONE = U64((1 << 64) - 1)


def public_part(c: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """What the openers know of a truncation's output from the opened c (offset included): pub =
    cl + c63 K - 2^(62-m) and the sign s = 1 - 2 c63 (K = 2^(63-m)); the output is pub plus the
    dealer's masks combined with s (rep3_pending, dealer2_pending)."""
    c63 = np.right_shift(c, TOP)
    s = np.subtract(U64(1), np.multiply(c63, U64(2)))
    pub = np.right_shift(np.bitwise_and(c, LOW63), U64(m))
    pub += c63 * U64(1 << (63 - m))
    pub -= U64(1 << (62 - m))
    return pub, s


def flat_as(a: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A public operand broadcast to `shape`, flat and contiguous (a pending value's linear ops)."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=U64), shape)).reshape(-1)


def _result(n: int, out: np.ndarray | None) -> np.ndarray:
    """Where a formula writes: `out` (n contiguous words, e.g. a slice of a message being built), or a
    fresh array."""
    if out is None:
        return np.empty(n, dtype=U64)
    if type(out) is not np.ndarray or out.dtype is not _U64 or out.shape != (n,) or not out.flags.c_contiguous:
        raise ValueError(f"fused rep3 kernel: out must be {n} contiguous uint64 words")
    return out


def _copied(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The numpy path's result written where the caller asked."""
    np.copyto(_result(y.size, out), y)
    return out


def _c_trunc(fn: Any, operands: tuple[np.ndarray | None, ...], m: int, n: int, out: np.ndarray | None) -> np.ndarray:
    """One party's truncation formula as its C pass over the operands (checked here)."""
    out = _result(n, out)
    fn(*_c_args(n, *operands), m, _ptr(out), n)
    return out


def trunc_p0(s: np.ndarray, g1: np.ndarray, g2: np.ndarray | None, r63a: np.ndarray, rla: np.ndarray,
             t: np.ndarray | None, m: int, out: np.ndarray | None = None) -> np.ndarray:
    """P0's v0 = cl + c63*K - 2^(62-m) - rla + r63a*sgn*K - t for the opened c, K = 2^(63-m)
    (g2, t None: zero), written into `out` if given."""
    n = s.size
    if use_c and HAVE_C:
        return _c_trunc(_lib.veil_rep3_trunc_p0, (s, g1, g2, r63a, rla, t), m, n, out)
    s, g1, g2, r63a, rla, t = _check(n, s, g1, g2, r63a, rla, t)
    k = U64(1 << (63 - m))
    c, y = _opened_sign(s, g1, g2)
    np.multiply(y, r63a, out=y)
    np.multiply(y, k, out=y)            # r63a * sgn * K
    c63 = np.right_shift(c, TOP)
    np.multiply(c63, k, out=c63)
    np.add(y, c63, out=y)               # + c63 * K
    np.bitwise_and(c, LOW63, out=c)
    np.right_shift(c, U64(m), out=c)
    np.add(y, c, out=y)                 # + cl
    np.subtract(y, U64(1 << (62 - m)), out=y)
    np.subtract(y, rla, out=y)
    if t is not None:
        np.subtract(y, t, out=y)
    return y if out is None else _copied(y, out)


def trunc_p1(s: np.ndarray, g0: np.ndarray, z2: np.ndarray | None, e: np.ndarray, f: np.ndarray,
             q: np.ndarray | None, m: int, out: np.ndarray | None = None) -> np.ndarray:
    """P1's v1 = r63b*sgn*K - rlb - q = e - c63 * (r63b << (64 - m)) - q for the opened c, from
    the dealer's e and packed f (see trunc_deal; z2, q None: zero), written into `out` if given."""
    n = s.size
    f = _operand(f, f_words(n, m))
    if use_c and HAVE_C:
        out = _result(n, out)
        args = _c_args(n, s, g0, z2, e)
        _lib.veil_rep3_trunc_p1(*args, _ptr(f), f_bytes(m), *_c_args(n, q), m, _ptr(out), n)
        return out
    s, g0, z2, e, q = _check(n, s, g0, z2, e, q)
    y = np.right_shift(_opened(s, g0, z2), TOP)  # c63
    if m:
        top = f.view(_F_DTYPE[f_bytes(m)])[:n].astype(U64)
        np.left_shift(top, U64(64 - m), out=top)
        np.multiply(y, top, out=y)
    else:
        y[:] = 0  # 2^64 = 0: the c63 term vanishes
    np.subtract(e, y, out=y)
    if q is not None:
        np.subtract(y, q, out=y)
    return y if out is None else _copied(y, out)
