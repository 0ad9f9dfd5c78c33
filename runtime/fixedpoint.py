"""The one definition of veil's fixed-point rule (LANGUAGE.md §9): how clear values become ring
elements of Z_2^64 (stored as uint64, two's complement) and back.

Encoding
    fix   v  ->  round(v * 2^F) mod 2^64      (F = frac_bits, 16 by default; round half to even)
    int   v  ->  v mod 2^64                   (two's complement)
    bool  v  ->  1 if v else 0

Decoding reads the uint64 as a signed int64 first, so negative values come back negative; a fix
value is that integer divided by 2^F.

Input range (`max_abs`)
    A product of two fix values lives at double scale (2F fractional bits) until it is truncated.
    The runtime's truncation is exact to within one unit in the last place for every ring value
    |x| < 2^62, so one product a*b is safe while |a*b| * 2^(2F) < 2^62. Requiring every input to
    satisfy |v| < 2^(31 - F) guarantees that for any two inputs: |a*b| < 2^(62 - 2F).
    With F = 16 the bound is 2^15 = 32768 (and products stay below 2^30).
    The rule is defined for 0 <= F <= 30 (for F = 31 the bound would drop to 1).
    int inputs must satisfy |v| < 2^62 (int64 less one bit, so a sum of two cannot wrap).
    bool inputs are 0 or 1.
"""
from __future__ import annotations

import numpy as np

DTYPES = ("fix", "int", "bool")
MAX_FRAC_BITS = 30
INT_BOUND = 2.0**62
_RING_LIMIT = 2.0**63


def _check_dtype(dtype: str) -> None:
    """Fail loudly on a dtype name the language does not have."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")


def _check_frac_bits(frac_bits: int, limit: int = 62) -> None:
    """Fail loudly on a scale the 64-bit ring cannot hold."""
    if not isinstance(frac_bits, (int, np.integer)) or not 0 <= int(frac_bits) <= limit:
        raise ValueError(f"frac_bits must be an int in 0..{limit}, got {frac_bits!r}")


def max_abs(dtype: str, frac_bits: int) -> float:
    """The exclusive bound on an input's magnitude (see the module docstring for why)."""
    _check_dtype(dtype)
    if dtype == "bool":
        return 1.0
    if dtype == "int":
        return INT_BOUND
    _check_frac_bits(frac_bits, MAX_FRAC_BITS)
    return 2.0 ** (31 - int(frac_bits))


def encode(values: np.ndarray, dtype: str, frac_bits: int) -> np.ndarray:
    """Clear values -> ring elements (uint64), the same way in runtime, emulator and tests."""
    _check_dtype(dtype)
    arr = np.asarray(values)
    if dtype == "bool":
        return arr.astype(bool).astype(np.uint64)
    if dtype == "int":
        return _encode_int(arr)
    _check_frac_bits(frac_bits)
    scaled = np.rint(arr.astype(np.float64) * 2.0 ** int(frac_bits))
    if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled) >= _RING_LIMIT):
        raise ValueError(f"fix value out of the 64-bit ring at {frac_bits} fractional bits")
    return scaled.astype(np.int64).view(np.uint64)


def _encode_int(arr: np.ndarray) -> np.ndarray:
    """Two's complement of integer-valued data (ints, or floats holding whole numbers)."""
    if arr.dtype.kind in "bu":
        return arr.astype(np.uint64)
    if arr.dtype.kind == "i":
        return arr.astype(np.int64).view(np.uint64)
    as_float = arr.astype(np.float64)
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.floor(as_float)):
        raise ValueError("int encoding needs whole numbers")
    if np.any(np.abs(as_float) >= _RING_LIMIT):
        raise ValueError("int value does not fit in 64 bits")
    return as_float.astype(np.int64).view(np.uint64)


def decode(ring: np.ndarray, dtype: str, frac_bits: int) -> np.ndarray:
    """Ring elements -> clear values: float64 for fix, int64 for int, bool for bool."""
    _check_dtype(dtype)
    signed = np.asarray(ring).astype(np.uint64, copy=False).view(np.int64)
    if dtype == "bool":
        return signed != 0
    if dtype == "int":
        return signed.copy()
    _check_frac_bits(frac_bits)
    return signed.astype(np.float64) / 2.0 ** int(frac_bits)
