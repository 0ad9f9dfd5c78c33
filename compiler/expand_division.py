"""Exact integer division of secret values by a public constant: `x // d` and `x % d` with numpy's
floor semantics, for |x| < 2^30 ring units (ints below 2^30; fix values below 2^(30-F)).

    x' = x + K*d >= 0                          (K = ceil(2^30 / |d|): floor semantics for x < 0)
    q0 = trunc(x' * m, 31), m = floor(2^31/|d|)  q0 is q' - 1, q' or q' + 1 (the product's rounding
                                               and the truncation's +1 are each below one unit)
    r  = x' - q0*|d|;  q' = q0 - [r < 0] + [r >= |d|]     (two comparisons, in the same rounds)
    x // d = q' - K (negated for d < 0 ...), x % d = x - (x // d) * d
"""
from __future__ import annotations

import numpy as np

from veil.runtime.ring import asring

from .expand import Emitter, expansion
from .ir import Op, Value
from .types import PUBLIC, Type

BOUND_BITS = 30  # |x| < 2^30 in ring units
SHIFT = 31


def _const(em: Emitter, k: int, like: Type) -> Value:
    return em.emit("const", [], Type(PUBLIC, like.dtype, (), like.scale), value=asring(np.int64(k)))


def _divisor(em: Emitter, op: Op) -> int | None:
    """The divisor as a signed int when it is a nonzero public constant, else None."""
    word = em.constant(op.ins[1])
    if word is None:
        return None
    d = int(np.uint64(word).view(np.int64))
    return d or None


def _quotient(em: Emitter, x: Value, d: int) -> Value:
    """floor(x / d) of a secret x as an int tensor of x's shape (ring units)."""
    t = Type(x.type.vis, "int", x.type.shape, 0)
    if d < 0:
        x, d = em.emit("neg", [x], x.type), -d
    x = em.emit("retag", [x], t)
    if d == 1:
        return x
    k = -(-(1 << BOUND_BITS) // d)
    shifted = em.emit("add", [x, _const(em, k * d, t)], t)
    scaled = em.emit("mul", [shifted, _const(em, (1 << SHIFT) // d, t)], t)
    q0 = em.emit("trunc", [scaled], t, bits=SHIFT)
    r = em.emit("sub", [shifted, em.emit("mul", [q0, _const(em, d, t)], t)], t)
    under = em.sign_of_difference(r, _const(em, 0, t))           # r < 0
    over = em.not_(em.sign_of_difference(r, _const(em, d, t)), Type(t.vis, "bool", t.shape, 0))  # r >= d
    q = em.emit("add", [em.emit("sub", [q0, em.emit("retag", [under], t)], t), em.emit("retag", [over], t)], t)
    return em.emit("sub", [q, _const(em, k, t)], t)


@expansion("floordiv", secret_only=True)
def _floordiv(em: Emitter, op: Op) -> Value | None:
    d = _divisor(em, op)
    if d is None:
        return None  # a secret divisor: the lowering refuses it
    return _quotient(em, em.bcast(op.ins[0], op.out.type.shape), d)


@expansion("mod", secret_only=True)
def _mod(em: Emitter, op: Op) -> Value | None:
    d = _divisor(em, op)
    if d is None:
        return None
    x = em.bcast(op.ins[0], op.out.type.shape)
    q = _quotient(em, x, d)
    units = q.type  # ring units as ints: x - q*d, then labelled with x's dtype and scale
    rest = em.emit("sub", [em.emit("retag", [x], units), em.emit("mul", [q, _const(em, d, units)], units)], units)
    return em.emit("retag", [rest], op.out.type)
