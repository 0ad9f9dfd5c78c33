"""dealer2 truncations whose output stays pending: a product of two such outputs (or a square)
needs no Beaver round of its own, so a chain of products with truncations waits on one round
per product instead of two.

After a truncation's round, P0 and P1 know the opened c and their shares v0, v1 of the output
x = pub + K + s * J: `pub` and the sign s = 1 - 2 c63 are functions of c, and K = -(r's shifted
low bits), J = 2^(63-m) * (r's top bit) are the dealer's, who drew the mask r but never learns
s. For x and y pending, x * y = pub_x * y + pub_y * x - pub_x pub_y + (K_x + s_x J_x)(K_y + s_y J_y);
the first three terms are local, and the dealer deals additive shares of the four products
K_x K_y, K_x J_y, J_x K_y, J_x J_y (two for a square, as s_x^2 = 1) that the openers combine
with the public signs. The product is then an additive sharing, and its truncation opens it in
the next round; the dealer's words do not depend on data, so it sends them ahead.

A sum with a sharing is not a pending value here (the dealer knows no part of the sharing), so
dealer2 declares only public linear ops (`Dealer2.pending_mixed`); a sum with a sharing defined
before the truncation goes into the truncation instead (its `addend`, dealer2._with_addend). The
output of `finish` is v, with no round. docs/security.md has the argument; compiler/pending.py decides where it is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.runtime.protocols import rep3_fused as fused
from veil.runtime.protocols.base import Context, Cost, Exchange, KernelGen, dealt_first, kernel, links
from veil.runtime.protocols.dealer2 import KERNELS, _trunc, _trunc_cost
from veil.runtime.protocols.rep3 import U64, _check_bits

S_D = (50, 51, 52, 53)  # P0's parts of the dealt products (P0-dealer)
MINUS_ONE = fused.MINUS_ONE


@dataclass
class Pending:
    """A dealer2 truncation's output with what makes it pending: at P0 and P1 the share v (P0's
    includes pub), pub and s; at the dealer kj = (K, J). Arrays are flat."""

    shape: tuple[int, ...]
    v: np.ndarray | None = None
    pub: np.ndarray | None = None
    s: np.ndarray | None = None
    kj: tuple[np.ndarray, np.ndarray] | None = None


def opened(c: np.ndarray, v: np.ndarray, m: int, shape: tuple[int, ...]) -> Pending:
    """An opener's pending output from the opened c (offset included) and its share v."""
    pub, s = fused.public_part(c, m)
    return Pending(tuple(shape), v, pub, s)


def dealt(r: np.ndarray, m: int, shape: tuple[int, ...]) -> Pending:
    """The dealer's pending output from the whole mask r: K = -(r mod 2^63 >> m), J = 2^(63-m) r63."""
    k = np.subtract(U64(0), np.right_shift(np.bitwise_and(r, fused.LOW63), U64(m)))
    j = np.multiply(np.right_shift(r, fused.TOP), U64(1 << (63 - m)))
    return Pending(tuple(shape), kj=(k, j))


# ---- finish: the sharing itself, no round -------------------------------------------------------
def _finish_cost(compute: list[str], n: int, **_: Any) -> Cost:
    return Cost(0, {p: 0 for p in compute}, {p: 0 for p in compute}, links())


@kernel(KERNELS, _finish_cost)
def finish(ctx: Context, x: Pending) -> KernelGen:
    """The pending value's sharing: each opener's v, the dealer's zeros."""
    if x.kj is not None:
        return np.zeros(x.shape, dtype=U64)
    return x.v.reshape(x.shape).copy()
    yield  # a kernel without a round  # noqa: unreachable


# ---- a product of pending values, then its truncation -------------------------------------------
def _parts(both: bool) -> int:
    """Words per element the dealer deals: two for a square, four for two pending values."""
    return 4 if both else 2


def _mul_pending_cost(compute: list[str], n: int, bits: int, both: bool = False, **_: Any) -> Cost:
    """The truncation's cost with one round before it, in which the dealer sends P1 2n words (4n
    for `both`) that it can send as early as it likes; P0 and the dealer draw as many more."""
    p0, p1, d = compute
    k = _parts(both)
    return dealt_first(_trunc_cost(compute, n, bits), d, p1, p0, k * n, k * n)


@kernel(KERNELS, _mul_pending_cost, counts=("multiplications", "truncations"))
def mul_trunc_pending(ctx: Context, x: Pending, y: Pending, bits: int, keep: bool = False,
                      both: bool = False, **_: Any) -> KernelGen:
    """mul_trunc of a pending x with itself or (`both`) another pending y: the product is additive
    once the dealer's parts arrive, and its truncation opens it."""
    m = _check_bits(bits)
    if not isinstance(y, Pending) or both != (y is not x):
        raise ValueError("dealer2 mul_trunc_pending takes a pending value times itself or (both) another")
    if y.shape != x.shape:
        raise ValueError(f"dealer2 mul_trunc_pending needs equal shapes, got {x.shape} and {y.shape}")
    p0, p1, d = ctx.compute
    n = int(np.prod(x.shape))
    streams = S_D[:_parts(both)]
    if ctx.index == 2:
        shares = ctx.rand_rows(tuple((p0, st) for st in streams), n)
        yield Exchange(send={p1: [q - q0 for q, q0 in zip(_dealer_parts(x, y), shares)]})
        z = np.zeros(n, dtype=U64)
    elif ctx.index == 0:
        parts = ctx.rand_many(d, streams, n)
        yield Exchange()
        z = _local(x, y, True) + _signed(x, y, parts)
    else:
        got = yield Exchange(expect={d: len(streams)})
        z = _local(x, y, False) + _signed(x, y, got[d])
    return (yield from _trunc(ctx, z.reshape(x.shape), m, keep))


def _dealer_parts(x: Pending, y: Pending) -> list[np.ndarray]:
    """The products of the dealer's parts that the openers combine with the signs."""
    kx, jx = x.kj
    if y is x:  # (K + s J)^2 = K^2 + J^2 + s 2 K J
        return [kx * kx + jx * jx, U64(2) * kx * jx]
    ky, jy = y.kj
    return [kx * ky, kx * jy, jx * ky, jx * jy]


def _signed(x: Pending, y: Pending, d: list[np.ndarray]) -> np.ndarray:
    """An opener's share of (K_x + s_x J_x)(K_y + s_y J_y) from its shares of the dealt parts."""
    if len(d) == 2:
        return d[0] + x.s * d[1]
    return d[0] + y.s * d[1] + x.s * (d[2] + y.s * d[3])


def _local(x: Pending, y: Pending, first: bool) -> np.ndarray:
    """An opener's share of pub_x y + pub_y x - pub_x pub_y (P0 alone subtracts the public term)."""
    z = x.pub * y.v.reshape(-1) + y.pub * x.v.reshape(-1)
    if first:
        z -= x.pub * y.pub
    return z


# ---- the linear ops that keep a value pending: with public values only --------------------------
def local(i: int, opcode: str, args: list, pending: list[bool], secret: list[bool]) -> Pending:
    """add or sub of a public value, neg, or mul by a public value, of one pending operand."""
    k = pending.index(True)
    x = args[k]
    if any(s for j, s in enumerate(secret) if j != k):
        raise ValueError(f"dealer2: {opcode} of a pending value and a sharing is not a local op")
    if opcode == "neg":
        return _scaled(x, MINUS_ONE)
    other = fused.flat_as(args[1 - k], x.shape)
    if opcode == "mul":
        return _scaled(x, other)
    if opcode not in ("add", "sub"):
        raise ValueError(f"dealer2: {opcode} of a pending value is not a local op")
    if opcode == "sub" and k == 1:  # other - x = (-x) + other
        return _plus(i, _scaled(x, MINUS_ONE), other)
    return _plus(i, x, U64(0) - other if opcode == "sub" else other)


def _scaled(x: Pending, k: Any) -> Pending:
    """k * x: every part times k (the signs stay)."""
    if x.kj is not None:
        return Pending(x.shape, kj=(x.kj[0] * k, x.kj[1] * k))
    return Pending(x.shape, x.v.reshape(-1) * k, x.pub * k, x.s)


def _plus(i: int, x: Pending, c: np.ndarray) -> Pending:
    """x + c for a public c: it joins pub, and P0's share."""
    if x.kj is not None:
        return Pending(x.shape, kj=x.kj)
    v = x.v.reshape(-1)  # P1's share is unchanged (arrays of a pending value are never written)
    return Pending(x.shape, v + c if i == 0 else v, x.pub + c, x.s)

