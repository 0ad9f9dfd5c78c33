"""rep3 truncations whose second round waits: the output kept after round 1 (a `Pending` sharing),
and the kernels that take it so (a product, a truncation), which saves the truncation's round 2
on their path; linear ops (a sum with a sharing or a public value, a product with a public value)
keep a value pending on the way.

After a truncation's round 1 the openers P0 and P1 know c, and the output's one component that
depends on c is x1 = pub + sec0 + sec1: `pub` is a function of c (both openers know it), sec_i is
opener i's alone. P2 drew everything in sec_i, which is K_i + s * J_i with the sign s = 1 - 2 c63
that P2 does not know. So P2 can deal the openers additive shares of any product of sec_i with a
value P2 holds, as a pair (K-part, J-part) that the openers combine with s; a product of x with a
sharing y (or with itself) is then an additive sharing without round 2, and its own truncation
opens it in the next round. `finish` is round 2 itself, for the consumers that need x as a sharing.
docs/security.md has the argument; compiler/pending.py decides where it is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.runtime.protocols import rep3_fused as fused
from veil.runtime.protocols.base import Context, Cost, Exchange, KernelGen, dealt_first, kernel, links
from veil.runtime.protocols.rep3 import KERNELS, U64, Share, _check_bits, _components, _shaped

S_D0, S_D1, S_D2, S_D3 = 10, 11, 12, 13  # P0's masks (k02) on the dealt parts of a product with a pending operand
MINUS_ONE = fused.MINUS_ONE


@dataclass
class Pending:
    """A truncation's output before its round 2. At opener i: `own`, its component that is drawn
    (x0 at P0, x2 at P1), pub, its sec_i, and s. At P2: own = (x2, x0) and K0, J0, K1, J1."""

    shape: tuple[int, ...]
    own: Any
    pub: np.ndarray | None = None
    sec: np.ndarray | None = None
    s: np.ndarray | None = None
    kj: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


def opener_pending(c_terms: tuple[np.ndarray, np.ndarray, np.ndarray | None], v: np.ndarray,
                   mine: slice, own: np.ndarray, m: int) -> Pending:
    """An opener's pending output, from the terms of c and its half v of x1 (`mine`: the elements
    it opened first, where v carries pub)."""
    pub, s = fused.public_part(fused._opened(*c_terms), m)
    sec = np.array(v, copy=True)
    sec[mine] -= pub[mine]
    return Pending((v.size,), own, pub, sec, s)


def dealer_pending(r: np.ndarray, first0: np.ndarray, first1: np.ndarray, t: np.ndarray, q: np.ndarray,
                   m: int) -> Pending:
    """P2's pending output: its components and each opener's K_i, J_i, from the mask r, the first
    openers' drawn parts of r's top bit and low bits (first0 on [0, h), first1 on [h, n)) and the
    output masks t (x0) and q (x2)."""
    n = r.size
    h, rest = n // 2, n - n // 2
    k = U64(1 << (63 - m))
    r63 = np.right_shift(r, fused.TOP)
    low = np.right_shift(np.bitwise_and(r, fused.LOW63), U64(m))
    k0, j0, k1, j1 = (np.empty(n, dtype=U64) for _ in range(4))
    # [0, h): P0 opens first with (r63a, rla) = first0, P1 holds the rest; [h, n): the roles swapped
    for part, (a63, al), (kf, jf), (ks, js), (tf, ts) in (
            (slice(0, h), (first0[:h], first0[h:2 * h]), (k0, j0), (k1, j1), (t, q)),
            (slice(h, n), (first1[:rest], first1[rest:2 * rest]), (k1, j1), (k0, j0), (q, t))):
        np.subtract(U64(0), al, out=kf[part])
        kf[part] -= tf[part]                       # the first opener: -rla - its output mask
        np.multiply(a63, k, out=jf[part])          # K r63a
        np.subtract(al, low[part], out=ks[part])   # the second: -(low - rla) - its output mask
        ks[part] -= ts[part]
        np.subtract(r63[part], a63, out=js[part])
        js[part] *= k                              # K (r63 - r63a)
    return Pending((n,), (q, t), kj=(k0, j0, k1, j1))


def reshaped(p: Pending, shape: tuple[int, ...]) -> Pending:
    """A kernel's fresh pending output in the shape of its value."""
    p.shape = tuple(shape)
    return p


# ---- round 2, when a consumer needs the sharing -------------------------------------------------
def _finish_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """1 round: P0 and P1 send each other n words (their sec_i)."""
    p0, p1, p2 = compute
    return Cost(1, {p0: n, p1: n, p2: 0}, {p0: 0, p1: 0, p2: 0}, links(((p0, p1), (p1, p0))))


@kernel(KERNELS, _finish_cost)
def finish(ctx: Context, x: Pending) -> KernelGen:
    """The truncation's round 2: x1 = pub + sec0 + sec1 from the openers' exchange."""
    p0, p1, _ = ctx.compute
    if ctx.index == 2:
        yield Exchange()
        x2, x0 = x.own
        return _shaped((x2.copy(), x0.copy()), x.shape)
    other = p1 if ctx.index == 0 else p0
    got = yield Exchange(send={other: [x.sec]}, expect={other: 1})
    x1 = x.pub + x.sec
    x1 += got[other][0]
    pair = (x.own.copy(), x1) if ctx.index == 0 else (x1, x.own.copy())
    return _shaped(pair, x.shape)


# ---- a product with a pending operand, then its truncation --------------------------------------
def _parts(both: bool) -> int:
    """Words per element P2 deals: the K- and J-parts, or all four sign products when both
    operands are pending with signs of their own."""
    return 4 if both else 2


def _mul_pending_cost(compute: list[str], n: int, bits: int, keep: bool = False, both: bool = False,
                      **_: Any) -> Cost:
    """mul_trunc's cost with one round before it, in which P2 deals P1 2n words (4n for `both`)
    that P2 can send as early as it likes; P0 and P2 draw as many more words, in rows."""
    from veil.runtime.protocols.rep3_trunc import _halves, _trunc_cost
    p0, p1, p2 = compute
    k, row = _parts(both), _halves(n)[2]
    return dealt_first(_trunc_cost(compute, n, bits, keep=keep), p2, p1, p0, k * n, k * row)


@kernel(KERNELS, _mul_pending_cost, counts=("multiplications", "truncations"))
def mul_trunc_pending(ctx: Context, x: Pending, y: Share | Pending, bits: int, keep: bool = False,
                      both: bool = False, **_: Any) -> KernelGen:
    """mul_trunc of a pending x with y: a sharing, x itself, or (`both`) another pending value.
    The product is additive as soon as P2's dealt parts arrive, and its truncation opens it."""
    from veil.runtime.protocols.rep3_trunc import _halves, _out, _trunc
    m = _check_bits(bits)
    if both != (isinstance(y, Pending) and y is not x):
        raise ValueError("rep3 mul_trunc_pending: `both` must say whether y is another pending value")
    p0, p1, p2 = ctx.compute
    n = int(np.prod(x.shape))
    streams = (S_D0, S_D1, S_D2, S_D3)[:_parts(both)]
    row = _halves(n)[2]
    if ctx.index == 2:
        z, dealt = _dealer_product(x, y)
        masks = ctx.rand_rows(tuple((p0, st) for st in streams), row)
        yield Exchange(send={p1: [d - r[:n] for d, r in zip(dealt, masks)]})
    elif ctx.index == 0:
        masks = ctx.rand_many(p2, streams, row)
        yield Exchange()
        z = _opener_product(0, x, y)
        z += _signed(x, y, [r[:n] for r in masks])
    else:
        got = yield Exchange(expect={p2: len(streams)})
        z = _opener_product(1, x, y)
        z += _signed(x, y, got[p2])
    return _out((yield from _trunc(ctx, (z,), m, keep)), x.shape)


def _signed(x: Pending, y: Share | Pending, d: list[np.ndarray]) -> np.ndarray:
    """An opener's share of the dealt term from its shares of the parts: d0 + s d1 (one sign), or
    d00 + sy d01 + sx d10 + sx sy d11."""
    if len(d) == 2:
        return d[0] + x.s * d[1]
    return d[0] + y.s * d[1] + x.s * (d[2] + y.s * d[3])


def _as_pending(y: Share | Pending, i: int, n: int) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    """An operand at opener i as (own, pub, sec) parts, a sharing read as a pending value with
    pub = y1 and no sec: P0 (y0, y1), P1 (y1, y2)."""
    if isinstance(y, Pending):
        return y.own, y.pub, y.sec
    a, b, _ = _components(y)
    if a.size != n:
        raise ValueError(f"rep3 mul_trunc_pending needs equal shapes, got {n} and {a.size} elements")
    return (a, b, 0) if i == 0 else (b, a, 0)


def _opener_product(i: int, x: Pending, y: Share | Pending) -> np.ndarray:
    """Opener i's additive share of x * y, without the dealt part: with A = own + pub + sec at P0
    and B = own + sec at P1, P0 takes A_x A_y and P1 B_x B_y + pub_x B_y + pub_y B_x."""
    own, pub, sec = _as_pending(y, i, x.pub.size)
    if i == 0:
        return additive(0, x) * (own + pub + sec)
    bx, by = additive(1, x), own + sec
    return bx * by + x.pub * by + pub * bx


def _dealer_product(x: Pending, y: Share | Pending) -> tuple[np.ndarray, list[np.ndarray]]:
    """P2's additive share of x * y, a_x b_y + b_x a_y (a = x0, b = x2), and the parts of the
    openers' dealt term a_x sec1_y + sec0_x b_y + b_x sec0_y + sec1_x a_y + sec0_x sec1_y + sec1_x sec0_y
    (sec_i = K_i + s J_i): by sign, [1, s] or [1, s_y, s_x, s_x s_y]."""
    bx, ax = x.own
    k0x, j0x, k1x, j1x = x.kj
    if not isinstance(y, Pending):  # a sharing has no K- or J-part: only a_y and b_y remain
        by, ay, _ = _components(y)
        return ax * by + bx * ay, [k0x * by + k1x * ay, j0x * by + j1x * ay]
    by, ay = y.own
    k0y, j0y, k1y, j1y = y.kj
    z = ax * by + bx * ay
    d00 = ax * k1y + k0x * by + bx * k0y + k1x * ay + k0x * k1y + k1x * k0y
    d01 = ax * j1y + bx * j0y + k0x * j1y + k1x * j0y
    d10 = j0x * by + j1x * ay + j0x * k1y + j1x * k0y
    d11 = j0x * j1y + j1x * j0y
    if y is x:  # s_x s_y = 1
        return z, [d00 + d11, d01 + d10]
    return z, [d00, d01, d10, d11]


# ---- a truncation of a pending value, and the linear ops that keep a value pending --------------
def additive(i: int, x: Pending) -> np.ndarray:
    """My 3-out-of-3 additive share of a pending x: P0 x0 + pub + sec0, P1 x2 + sec1, P2 nothing."""
    if i == 0:
        return x.own + x.pub + x.sec
    if i == 1:
        return x.own + x.sec
    return np.zeros(x.own[0].size, dtype=U64)


def _trunc_pending_cost(compute: list[str], n: int, bits: int, keep: bool = False, **_: Any) -> Cost:
    """trunc_additive's cost: the pending value is already additive."""
    from veil.runtime.protocols.rep3_trunc import _trunc_cost
    return _trunc_cost(compute, n, bits, keep=keep)


@kernel(KERNELS, _trunc_pending_cost, counts=("truncations",))
def trunc_pending(ctx: Context, x: Pending, bits: int, keep: bool = False) -> KernelGen:
    """trunc of a pending x (a linear function of a kept truncation): opened as an additive sharing."""
    from veil.runtime.protocols.rep3_trunc import _out, _trunc
    return _out((yield from _trunc(ctx, (additive(ctx.index, x),), _check_bits(bits), keep)), x.shape)


def local(i: int, opcode: str, args: list, pending: list[bool], secret: list[bool]) -> Pending:
    """A linear op with one pending operand (`pending`), the others sharings (`secret`) or public
    ring values: add, sub, neg, or mul by a public value; the result pending too."""
    k = pending.index(True)
    x = args[k]
    if opcode == "neg":
        return _scaled(x, MINUS_ONE)
    other, other_secret = args[1 - k], secret[1 - k]
    if opcode == "mul":
        if other_secret:
            raise ValueError("rep3: a pending value times a secret is a kernel's work, not a local op")
        return _scaled(x, np.asarray(other, dtype=U64))
    if opcode not in ("add", "sub"):
        raise ValueError(f"rep3: {opcode} of a pending value is not a local op")
    if opcode == "sub" and k == 1:  # other - x = (-x) + other
        return _added(i, _scaled(x, MINUS_ONE), other, other_secret, 1)
    return _added(i, x, other, other_secret, -1 if opcode == "sub" else 1)


def _scaled(x: Pending, k: np.ndarray) -> Pending:
    """k * x, elementwise: every part times k (the signs s stay)."""
    k = fused.flat_as(k, x.shape)
    if x.kj is not None:
        return Pending(x.shape, (x.own[0] * k, x.own[1] * k), kj=tuple(part * k for part in x.kj))
    return Pending(x.shape, x.own * k, x.pub * k, x.sec * k, x.s)


def _added(i: int, x: Pending, y: Any, secret: bool, sign: int) -> Pending:
    """x + sign * y: a sharing's components join x's own components and pub (y1, which both
    openers hold); a public value joins pub."""
    def signed(a: Any) -> np.ndarray:
        a = fused.flat_as(a, x.shape)
        return a if sign > 0 else U64(0) - a
    if not secret:
        if x.kj is not None:  # P2 holds no part of a public value
            return Pending(x.shape, x.own, kj=x.kj)
        return Pending(x.shape, x.own, x.pub + signed(y), x.sec, x.s)
    a, b = signed(y[0]), signed(y[1])
    if x.kj is not None:  # P2: (y2, y0)
        return Pending(x.shape, (x.own[0] + a, x.own[1] + b), kj=x.kj)
    if i == 0:  # P0: (y0, y1)
        return Pending(x.shape, x.own + a, x.pub + b, x.sec, x.s)
    return Pending(x.shape, x.own + b, x.pub + a, x.sec, x.s)  # P1: (y1, y2)
