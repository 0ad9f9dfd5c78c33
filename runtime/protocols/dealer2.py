"""dealer2: two computing parties with additive shares over Z_2^64 and a dealer (TF Encrypted's Pond).

P0 and P1 hold x0 and x1 with x = x0 + x1 mod 2^64. The dealer D only produces correlated
randomness (Beaver triples, masked truncation pairs) from the pairwise AES-CTR streams it shares
with P0 and P1, and never sees data; it keeps an all-zero placeholder share so that it follows the
program's shapes. Semi-honest; secure as long as the dealer does not collude with P0 or P1.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from veil.runtime.protocols.base import Context, Cost, Exchange, KernelGen, KernelSpec, Protocol, kernel, links
from veil.runtime.protocols import rep3_fused as fused
from veil.runtime.protocols.rep3 import U64, _check_bits, _flat, _owned, _plus
from veil.runtime.inplace import same_shapes, sole, writable
from veil.runtime.masked import Masked
from veil.runtime.ring import asring
from veil.runtime.ring import matmul as ring_matmul, matmul2

# PRG stream numbers, one per independent draw under the same key within a kernel.
S_A, S_B, S_C = 0, 1, 2        # Beaver triple: a, b and P0's part of c
S_SHARE = 3                    # share: the part known to the owner and one computing party
S_R, S_R63, S_RL = 4, 5, 6     # truncation: mask halves, P0's parts of its top bit and low bits


def _parties(ctx: Context) -> tuple[str, str, str]:
    """(P0, P1, dealer)."""
    p0, p1, d = ctx.compute
    return p0, p1, d


def _zeros(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, dtype=U64)


# ---- declared costs (rounds, elements sent, PRG words drawn per party), beside the kernels ----

KERNELS: dict[str, KernelSpec] = {}


def _mul_cost(compute: list[str], n: int, sizes: list[int] | None = None, masked: tuple[int, ...] = (),
              **_: Any) -> Cost:
    """Beaver: P0 and P1 each send both masked operands (but one opened before, `masked`), the
    dealer sends P1 its part of c."""
    p0, p1, d = compute
    sizes = (sizes or [n, n])[:2]  # a third operand is an addend (local)
    inputs = sum(s for i, s in enumerate(sizes) if i not in masked)
    pairs = ((p0, p1), (p1, p0), (d, p1)) if inputs else ((d, p1),)
    return Cost(1, {p0: inputs, p1: inputs, d: n}, {p0: inputs + n, p1: inputs, d: 2 * inputs + n}, links(pairs))


def _mask_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """P0 and P1 open x - a to each other; the dealer draws both parts of a."""
    p0, p1, d = compute
    return Cost(1, {p0: n, p1: n, d: 0}, {p0: n, p1: n, d: 2 * n}, links(((p0, p1), (p1, p0))))


def _trunc_cost(compute: list[str], n: int, bits: int, **_: Any) -> Cost:
    """P0 and P1 open the masked value to each other; the dealer sends P1 the mask's parts (n words
    and f_words, n/4 for bits <= 16)."""
    p0, p1, d = compute
    return Cost(1, {p0: n, p1: n, d: n + fused.f_words(n, bits)}, {p0: 3 * n, p1: n, d: 4 * n},
                links(((p0, p1), (p1, p0), (d, p1))))


def _mul_trunc_cost(compute: list[str], n: int, **attrs: Any) -> Cost:
    a, b = _mul_cost(compute, n, **attrs), _trunc_cost(compute, n, **attrs)
    return Cost(2, {p: a.sent[p] + b.sent[p] for p in compute}, {p: a.draws[p] + b.draws[p] for p in compute},
                a.links + b.links)


def _share_participants(compute: list[str], owner: str, **_: Any) -> set[str]:
    return set(compute) | {owner}


def _share_cost(compute: list[str], n: int, owner: str, **_: Any) -> Cost:
    """A computing owner draws its partner's part (no round); anyone else sends x - x0 to P1."""
    p0, p1, d = compute
    if owner in (p0, p1):
        return Cost(0, {p: 0 for p in compute}, {p0: n, p1: n, d: 0})
    return Cost(1, {p: 0 for p in compute} | {owner: n}, {p0: n, p1: 0, d: 0, owner: n})


def _reveal_cost(compute: list[str], n: int, **_: Any) -> Cost:
    return Cost(1, {compute[0]: 2 * n, compute[1]: 2 * n, compute[2]: 0}, {p: 0 for p in compute})


def _reveal_to_participants(compute: list[str], party: str, **_: Any) -> set[str]:
    return set(compute[:2]) | {party}


def _reveal_to_cost(compute: list[str], n: int, party: str, **_: Any) -> Cost:
    senders = [p for p in compute[:2] if p != party]
    return Cost(1, {p: n for p in senders} | {party: 0}, {p: 0 for p in senders} | {party: 0})


# ---- multiplication with Beaver triples ------------------------------------------------------

def _beaver(ctx: Context, x: Any, y: Any, prod: Callable) -> KernelGen:
    """My additive share of prod(x, y) from a dealer triple (a, b, c = prod(a, b)); 1 round.
    Each party's words come from one bulk draw where a, b and c have one shape (elementwise).
    An operand opened before under a mask (a Masked, runtime/masked.py) brings its e and a: it is
    neither drawn nor sent again, and the dealer's c is made with the a it kept."""
    p0, p1, d = _parties(ctx)
    xm, ym = isinstance(x, Masked), isinstance(y, Masked)
    xs, ys = np.shape(x.a if xm else x), np.shape(y.a if ym else y)
    if ctx.index == 2:
        rows = ((p0, S_A), (p1, S_A)) * (not xm) + ((p0, S_B), (p1, S_B)) * (not ym) + ((p0, S_C),)
        drawn = _draw_triple(ctx, rows, xs, ys, prod)
        a = x.a if xm else _summed(drawn.pop(0), drawn.pop(0))
        b = y.a if ym else _summed(drawn.pop(0), drawn.pop(0))
        c = asring(prod(a, b))
        yield Exchange(send={p1: [np.subtract(c, drawn[0], out=c)]})
        return _zeros(c.shape)
    other = p1 if ctx.index == 0 else p0
    rows = ((d, S_A),) * (not xm) + ((d, S_B),) * (not ym) + ((d, S_C),) * (ctx.index == 0)
    drawn = _draw_triple(ctx, rows, xs, ys, prod)
    a_i = x.a if xm else drawn.pop(0)
    b_i = y.a if ym else drawn.pop(0)
    opened = [_minus(v, r) for v, r, m in ((x, a_i, xm), (y, b_i, ym)) if not m]
    got = yield Exchange(send={other: opened}, expect={other: len(opened), **({d: 1} if ctx.index == 1 else {})})
    theirs = iter(got[other])
    e = x.e if xm else np.add(opened[0], next(theirs).reshape(xs), out=opened[0])
    f = y.e if ym else np.add(opened[-1], next(theirs).reshape(ys), out=opened[-1])
    if prod is ring_matmul:  # e (b_i [+ f]) + a_i f in one pass of the C kernel: two products, not three
        z = matmul2(e, b_i, a_i, f, b1x=f if ctx.index == 0 else None)
    else:
        z = asring(prod(e, b_i))
        np.add(z, prod(a_i, f), out=z)
        if ctx.index == 0:
            np.add(z, prod(e, f), out=z)
    if ctx.index == 0:
        return np.add(z, drawn[0].reshape(z.shape), out=z)
    return np.add(z, got[d][0].reshape(z.shape), out=z)


def _draw_triple(ctx: Context, rows: tuple[tuple[str, int], ...], xs: tuple[int, ...], ys: tuple[int, ...],
                 prod: Callable) -> list[np.ndarray]:
    """A party's triple words, row (key, stream) each: S_A shaped like x, S_B like y, S_C like the
    product. One call where the three shapes agree (elementwise), else one per row."""
    if prod is not ring_matmul and xs == ys:
        drawn = ctx.rand_rows(rows, int(np.prod(xs, dtype=np.int64)))
        return [row.reshape(xs) for row in drawn]
    zs = (xs[0], ys[1]) if prod is ring_matmul else np.broadcast_shapes(xs, ys)
    shapes = {S_A: xs, S_B: ys, S_C: zs}
    return [ctx.rand(peer, stream, shapes[stream]) for peer, stream in rows]


def _summed(r0: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """The dealer's whole mask from both parties' parts (into the first: it is the dealer's own)."""
    return np.add(r0, r1, out=r0)


def _minus(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """x - r as a fresh ring array of x's shape (0-d stays an array, so it never warns on wrap)."""
    return np.subtract(x, r, out=np.empty(np.shape(x), dtype=U64), dtype=U64)


@kernel(KERNELS, _mul_cost, counts=("multiplications",))
def mul(ctx: Context, x: np.ndarray, y: np.ndarray, **_: Any) -> KernelGen:
    """Elementwise product of two secrets (no truncation): 1 round."""
    return (yield from _beaver(ctx, x, y, np.multiply))


@kernel(KERNELS, _mul_cost, counts=("multiplications",))
def matmul(ctx: Context, x: np.ndarray, y: np.ndarray, **_: Any) -> KernelGen:
    """Matrix product of two 2-D secrets (no truncation) from a matrix triple: 1 round."""
    return (yield from _beaver(ctx, x, y, ring_matmul))


@kernel(KERNELS, _mask_cost)
def mask(ctx: Context, x: np.ndarray, **_: Any) -> KernelGen:
    """x opened once under a fresh mask a, as a Masked (runtime/masked.py) for the products that
    reuse it: P0 and P1 open e = x - a to each other, the dealer keeps a. 1 round."""
    p0, p1, d = _parties(ctx)
    shape = np.shape(x)
    if ctx.index == 2:
        a = _summed(*ctx.rand_rows(((p0, S_A), (p1, S_A)), int(np.size(x)))).reshape(shape)
        yield Exchange()  # the dealer takes part in the round without a message
        return Masked(None, a)
    other = p1 if ctx.index == 0 else p0
    a_i = ctx.rand(d, S_A, shape)
    e_i = _minus(x, a_i)
    got = yield Exchange(send={other: [e_i]}, expect={other: 1})
    return Masked(np.add(e_i, got[other][0].reshape(shape), out=e_i), a_i)


# ---- truncation ----------------------------------------------------------------------------

def _trunc(ctx: Context, z: np.ndarray, m: int, keep: bool = False, addend: np.ndarray | None = None,
           sign: int = 1) -> KernelGen:
    """floor(z / 2^m) (+0 or +1) for |z| < 2^62: P0 and P1 open c = z + r + 2^62 to each other,
    the dealer supplies shares of r's top bit and of its low bits shifted by m. 1 round.
    The formulas are rep3's (one fused pass each, see rep3_fused) with the absent terms zero.
    `keep`: the output as a dealer2_pending.Pending (the same round; what a product of two
    such outputs needs). `addend`: z + sign * addend * 2^m is truncated (see _with_addend)."""
    m = _check_bits(m)
    z = _with_addend(z, addend, sign, m)
    p0, p1, d = _parties(ctx)
    shape, n = np.shape(z), int(np.size(z))
    if ctx.index == 2:
        r0, r63_0, rl_0, r1 = ctx.rand_rows(((p0, S_R), (p0, S_R63), (p0, S_RL), (p1, S_R)), n)
        e, f = fused.trunc_deal(r0, r1, r63_0, rl_0, m)
        yield Exchange(send={p1: [e, f]})
        return dealer2_pending.dealt(r0 + r1, m, shape) if keep else _zeros(shape)
    other = p1 if ctx.index == 0 else p0
    if ctx.index == 0:
        r, r63_0, rl_0 = ctx.rand_many(d, (S_R, S_R63, S_RL), n)
    else:
        r = ctx.rand(d, S_R, (n,))
    masked = np.add(_flat(z), r)
    got = yield Exchange(send={other: [masked]}, expect={other: 1, **({d: 2} if ctx.index == 1 else {})})
    if ctx.index == 0:
        y = fused.trunc_p0(masked, got[other][0], None, r63_0, rl_0, None, m)
    else:
        e, f = got[d]
        y = fused.trunc_p1(masked, got[other][0], None, e, f, None, m)
    if keep:
        return dealer2_pending.opened(fused._opened(masked, got[other][0], None), y, m, shape)
    return y.reshape(shape)


def _with_addend(z: np.ndarray, addend: np.ndarray | None, sign: int, m: int) -> np.ndarray:
    """z + sign * addend * 2^m (the addend broadcast to z's shape): a sum the truncation takes in
    exactly, floor((z + s 2^m) / 2^m) = floor(z / 2^m) + s (compiler/pending.py's `addend`)."""
    if addend is None:
        return z
    shifted = np.left_shift(np.broadcast_to(np.asarray(addend, dtype=U64), np.shape(z)), U64(m))
    return asring(z - shifted if sign < 0 else z + shifted)


@kernel(KERNELS, _trunc_cost, counts=("truncations",))
def trunc(ctx: Context, x: np.ndarray, addend: np.ndarray | None = None, *, bits: int, keep: bool = False,
          addend_sign: int = 1, **_: Any) -> KernelGen:
    """Arithmetic shift right of a secret (plus `addend`, see _with_addend), off by at most +1;
    needs |x| < 2^62. 1 round."""
    return (yield from _trunc(ctx, x, bits, keep, addend, addend_sign))


@kernel(KERNELS, _mul_trunc_cost, counts=("multiplications", "truncations"))
def mul_trunc(ctx: Context, x: np.ndarray, y: np.ndarray, addend: np.ndarray | None = None, *, bits: int,
              keep: bool = False, addend_sign: int = 1, **_: Any) -> KernelGen:
    """Product (plus `addend`, see _with_addend) then truncation: 2 rounds."""
    z = yield from _beaver(ctx, x, y, np.multiply)
    return (yield from _trunc(ctx, z, bits, keep, addend, addend_sign))


@kernel(KERNELS, _mul_trunc_cost, counts=("multiplications", "truncations"))
def matmul_trunc(ctx: Context, x: np.ndarray, y: np.ndarray, addend: np.ndarray | None = None, *, bits: int,
                 keep: bool = False, addend_sign: int = 1, **_: Any) -> KernelGen:
    """Matrix product (plus `addend`, see _with_addend) then truncation: 2 rounds."""
    z = yield from _beaver(ctx, x, y, ring_matmul)
    return (yield from _trunc(ctx, z, bits, keep, addend, addend_sign))


# ---- input and output ----------------------------------------------------------------------

@kernel(KERNELS, _share_cost, participants=_share_participants, shaped=True)
def share(ctx: Context, x: np.ndarray | None, owner: str, shape: tuple[int, ...]) -> KernelGen:
    """The owner's clear x becomes x0 + x1. A computing owner needs no round (the other part is
    drawn from the stream it shares with the other computing party); anyone else sends x - x0 to P1."""
    p0, p1, d = _parties(ctx)
    shape = tuple(int(s) for s in shape)
    if owner in (p0, p1):
        other = p1 if owner == p0 else p0
        if ctx.party == owner:
            return asring(np.asarray(x, dtype=U64).reshape(shape) - ctx.rand(other, S_SHARE, shape))
        if ctx.party == other:
            return ctx.rand(owner, S_SHARE, shape)
        return _zeros(shape)
    if ctx.party == owner:
        yield Exchange(send={p1: [asring(np.asarray(x, dtype=U64).reshape(shape) - ctx.rand(p0, S_SHARE, shape))]})
        return _zeros(shape) if ctx.party == d else None
    if ctx.party == p1:
        got = yield Exchange(expect={owner: 1})
        return asring(got[owner][0]).reshape(shape)
    yield Exchange()  # P0 and the dealer take part in the round without a message
    return ctx.rand(owner, S_SHARE, shape) if ctx.party == p0 else _zeros(shape)


@kernel(KERNELS, _reveal_cost)
def reveal(ctx: Context, x: np.ndarray) -> KernelGen:
    """Open to P0, P1 and the dealer (every computing party): P0 and P1 send their shares. 1 round."""
    p0, p1, d = _parties(ctx)
    if ctx.index == 2:
        got = yield Exchange(expect={p0: 1, p1: 1})
        return asring(got[p0][0] + got[p1][0]).reshape(np.shape(x))
    other = p1 if ctx.index == 0 else p0
    got = yield Exchange(send={other: [x], d: [x]}, expect={other: 1})
    return asring(x + got[other][0].reshape(np.shape(x)))


@kernel(KERNELS, _reveal_to_cost, participants=_reveal_to_participants, shaped=True)
def reveal_to(ctx: Context, x: np.ndarray | None, party: str, shape: tuple[int, ...]) -> KernelGen:
    """Open to one party only; 1 round. Others get None."""
    p0, p1, d = _parties(ctx)
    shape = tuple(int(s) for s in shape)
    senders = [p for p in (p0, p1) if p != party]
    if ctx.party == party:
        got = yield Exchange(expect={p: 1 for p in senders})
        total = sum((got[p][0].reshape(shape) for p in senders), start=_zeros(shape))
        return asring(total + (x if ctx.party in (p0, p1) else 0))
    if ctx.party in senders:
        yield Exchange(send={party: [x]})
    return None


class Dealer2(Protocol):
    """The dealer2 plug-in: a share is one array (the dealer's is all zeros)."""

    name = "dealer2"
    positional = 2          # P0, P1, then the dealer: dealer2(p0, p1, dealer=p2)
    keywords = ("dealer",)
    share_words = 1
    share_kinds = ("arith", "bool")
    kernels = KERNELS
    native = {"share": "share", "reveal": "reveal", "reveal_to": "reveal_to", "mul": "mul", "matmul": "matmul",
              "trunc": "trunc", "msb": "msb", "a2b": "a2b", "bitinject": "bitinject",
              "msb_at": "msb_at", "msb_at_mul": "msb_at_mul"}
    fusions = {("mul", "trunc"): "mul_trunc", ("matmul", "trunc"): "matmul_trunc", ("msb", "mul"): "msb_mul"}
    keep = ("trunc", "mul_trunc", "matmul_trunc", "mul_trunc_pending")
    pending_kernels = {"mul_trunc": "mul_trunc_pending"}
    pending_ops = ("add", "sub", "neg", "mul")
    pending_mixed = False
    pending_addend = ("trunc", "mul_trunc", "matmul_trunc")
    pending_finish = "finish"
    mask_kernel = "mask"
    maskable = ("mul", "matmul", "mul_trunc", "matmul_trunc")

    def map(self, fn: Callable[..., np.ndarray], *shares: np.ndarray) -> np.ndarray:
        """A linear op applies to each party's share alike."""
        return asring(fn(*shares))

    def map_into(self, ufunc: np.ufunc, k: int, shares: list[np.ndarray]) -> np.ndarray | None:
        """ufunc on the shares, into shares[k]'s array when it is the op's alone."""
        if not sole(shares, k):
            return None
        target = shares[k]
        shape = np.shape(target)
        if not (writable(target, shape) and same_shapes(shares, shape)):
            return None
        return ufunc(*shares, out=target)

    def add_public(self, ctx: Context, x: np.ndarray, c: np.ndarray) -> np.ndarray:
        """P0 adds c; everyone takes the broadcast shape."""
        shape = np.broadcast_shapes(np.shape(x), np.shape(c))
        return _plus(x, c) if ctx.index == 0 else _owned(x, shape)

    def from_public(self, ctx: Context, c: np.ndarray) -> np.ndarray:
        """x0 = c, x1 = 0 (and the dealer's placeholder 0)."""
        c = np.array(c, dtype=U64, copy=True)
        return c if ctx.index == 0 else np.zeros_like(c)

    def to_additive(self, ctx: Context, x: np.ndarray) -> np.ndarray:
        return x

    def add_public_additive(self, ctx: Context, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self.add_public(ctx, z, c)

    def pending_local(self, ctx: Context, opcode: str, args: list, pending: list[bool], secret: list[bool]) -> Any:
        """A linear op on a truncation's pending output, with public values (dealer2_pending.local)."""
        return dealer2_pending.local(ctx.index, opcode, args, pending, secret)


from veil.runtime.protocols import dealer2_bool  # noqa: E402,F401  (registers msb, a2b, bitinject)
from veil.runtime.protocols import dealer2_pending  # noqa: E402  (registers finish, mul_trunc_pending)
