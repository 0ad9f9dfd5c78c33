"""Clear operations on ring-encoded tensors (uint64, arithmetic mod 2^64): one definition, used by
the runtime's VM for public and private values and by the emulator for every value."""
from __future__ import annotations

from typing import Any

import numpy as np

try:
    from veil.cffi_kernels.ring import matmul as _ring_matmul
except ImportError:  # the kernels package is optional; numpy's uint64 matmul wraps exactly
    _ring_matmul = None

U64 = np.uint64


def asring(x: Any) -> np.ndarray:
    """A uint64 ndarray (never a numpy scalar, whose arithmetic warns on wrap-around)."""
    return np.asarray(x).astype(U64, copy=False).reshape(np.shape(x))


def signed(x: np.ndarray) -> np.ndarray:
    """The two's complement reading of a ring tensor."""
    return np.asarray(x).view(np.int64)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Ring matrix product of 2-D tensors, through the C kernel where it is built."""
    if _ring_matmul is not None and a.ndim == 2 and b.ndim == 2:
        return _ring_matmul(a, b)
    return np.matmul(a, b)


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


def _divide(fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy's floor division or modulo on the signed readings (x // 0 and x % 0 give 0)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return fn(signed(a), signed(b))


def div(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """a / b of two ring values at the same scale, rounded down to `bits` fractional bits."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.floor_divide(signed(a) << np.int64(bits), signed(b))


def toint(a: np.ndarray, bits: int) -> np.ndarray:
    """A fixed-point value's integer part, rounded toward zero like numpy's astype(int)."""
    s = signed(a)
    q = np.abs(s) >> np.int64(bits)
    return np.where(s < 0, -q, q)


def _cmp(fn):
    return lambda a, b: fn(signed(a), signed(b)).astype(U64)


# Local, communication-free ops: opcode -> fn(*inputs, **attrs). Linear ones may also be applied
# to each component of a secret sharing (see LINEAR).
LOCAL: dict[str, Any] = {
    "add": lambda a, b: asring(a + b),
    "sub": lambda a, b: asring(a - b),
    "neg": lambda a: asring(U64(0) - a),
    "mul": lambda a, b: asring(a * b),
    "matmul": lambda a, b: asring(matmul(a, b)),
    "trunc": lambda a, bits: asring(trunc(a, bits)),
    "lshift": lambda a, bits: asring(a << U64(bits)),
    "sum": lambda a, axis=None: asring(np.sum(a, axis=axis, dtype=U64)),
    "transpose": lambda a, axes=None: asring(np.transpose(a, axes)),
    "reshape": lambda a, shape: asring(np.reshape(a, shape)),
    "broadcast": lambda a, shape: asring(np.broadcast_to(a, shape).copy()),
    "slice": lambda a, key: asring(a[index_key(key)]),
    "dslice": lambda a, start, axis, length, step: asring(dslice(a, start, axis, length, step)),
    "concat": lambda *xs, axis: asring(np.concatenate(xs, axis=axis)),
    "stack": lambda *xs, axis: asring(np.stack(xs, axis=axis)),
    "lt": _cmp(np.less), "le": _cmp(np.less_equal), "gt": _cmp(np.greater),
    "ge": _cmp(np.greater_equal), "eq": _cmp(np.equal), "ne": _cmp(np.not_equal),
    "bitand": lambda a, b: asring(a & b), "bitor": lambda a, b: asring(a | b),
    "bitnot": lambda a: asring(U64(1) - a),
    "floordiv": lambda a, b: asring(_divide(np.floor_divide, a, b)),
    "mod": lambda a, b: asring(_divide(np.mod, a, b)),
    "div": lambda a, b, bits: asring(div(a, b, bits)),
    "toint": lambda a, bits: asring(toint(a, bits)),
    "where": lambda c, a, b: asring(np.where(c != U64(0), a, b)),
    "abs": lambda a: asring(np.abs(signed(a))),
    "maximum": lambda a, b: asring(np.maximum(signed(a), signed(b))),
    "minimum": lambda a, b: asring(np.minimum(signed(a), signed(b))),
    "rmax": lambda a, axis=None: asring(np.max(signed(a), axis=axis)),
    "rmin": lambda a, axis=None: asring(np.min(signed(a), axis=axis)),
}

# Ops that are linear in each secret operand (applied share-wise without communication).
LINEAR = {"add", "sub", "neg", "lshift", "sum", "transpose", "reshape", "broadcast", "slice",
          "dslice", "concat", "stack"}
