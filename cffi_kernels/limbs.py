"""Exact Z_2^64 matrix product through float64 BLAS on 22-bit limbs, because numpy's integer
matmul is a naive loop while its float64 matmul is OpenBLAS.

Each uint64 operand is split into three balanced limbs, x = l0 + l1 2^22 + l2 2^44 (mod 2^64), with
l0, l1 in [-2^21, 2^21) and l2 in [-2^19, 2^19) (l2 matters only modulo 2^20).  Every limb product
is at most 2^42 in magnitude, so a dot product of up to 2^11 of them, and every partial sum BLAS
forms on the way in any order (with or without FMA), is an integer of magnitude at most 2^53: float64
holds it exactly.  Only the six limb pairs whose shift is below 64 contribute modulo 2^64; deeper
products are split into chunks of at most `MAX_K` along the inner dimension.
"""
from __future__ import annotations

import numpy as np

LIMB_BITS = 22
# |limb product| <= 2^42 and 2^42 * 2^11 = 2^53: the largest exactly summable inner dimension.
MAX_K = 1 << (53 - 2 * (LIMB_BITS - 1))

_U64 = np.uint64
_HALF = _U64(1 << (LIMB_BITS - 1))
_MASK = _U64((1 << LIMB_BITS) - 1)
_TOP_BITS = 64 - 2 * LIMB_BITS  # 20: what is left of a 64-bit value above two limbs
_TOP_HALF = _U64(1 << (_TOP_BITS - 1))
_TOP_MASK = _U64((1 << _TOP_BITS) - 1)
_SHIFT = _U64(LIMB_BITS)


def _balanced(x: np.ndarray, half: np.uint64, mask: np.uint64) -> np.ndarray:
    """The signed limb of x's low bits, centred on zero (as int64)."""
    return ((x + half) & mask).view(np.int64) - np.int64(half)


def split(x: np.ndarray) -> np.ndarray:
    """The three balanced limbs of a uint64 array as float64, stacked on a new leading axis."""
    out = np.empty((3,) + x.shape, dtype=np.float64)
    l0 = _balanced(x, _HALF, _MASK)
    out[0] = l0
    rest = (x - l0.view(_U64)) >> _SHIFT  # exact: x - l0 is a multiple of 2^22 modulo 2^64
    l1 = _balanced(rest, _HALF, _MASK)
    out[1] = l1
    rest = (rest - l1.view(_U64)) >> _SHIFT
    out[2] = _balanced(rest, _TOP_HALF, _TOP_MASK)
    return out


def _exact(p: np.ndarray) -> np.ndarray:
    """A float64 product of integers (|p| <= 2^53) as its uint64 residue."""
    return p.astype(np.int64).view(_U64)


def _chunk(la: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """A @ B mod 2^64 from limbs la (3, m, k) and lb (3, k, n) with k <= MAX_K."""
    _, m, k = la.shape
    # One BLAS call per limb of B: A's limbs are stacked so each call is one tall product.
    p0 = _exact(la.reshape(3 * m, k) @ lb[0]).reshape(3, m, -1)  # a0b0, a1b0, a2b0
    p1 = _exact(la[:2].reshape(2 * m, k) @ lb[1]).reshape(2, m, -1)  # a0b1, a1b1
    p2 = _exact(la[0] @ lb[2])  # a0b2
    mid = p0[1] + p1[0]
    top = p0[2] + p1[1] + p2
    with np.errstate(over="ignore"):
        return p0[0] + (mid << _SHIFT) + (top << _U64(2 * LIMB_BITS))


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A @ B modulo 2^64 for 2-D C-contiguous uint64 arrays, exactly, through float64 BLAS."""
    m, k = a.shape
    n = b.shape[1]
    if k <= MAX_K:
        return _chunk(split(a), split(b))
    out = np.zeros((m, n), dtype=_U64)
    for p in range(0, k, MAX_K):
        out += _chunk(split(a[:, p : p + MAX_K]), split(b[p : p + MAX_K]))
    return out
