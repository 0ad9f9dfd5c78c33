"""dealer2's boolean sharing and its conversions: msb, msb_mul, a2b, bitinject (registered in dealer2.KERNELS).

A boolean-shared word is b = b0 ^ b1 with b0 at P0 and b1 at P1; the dealer keeps an all-zero
placeholder. For x = x0 + x1:

- round 1: P0 and P1 open their layer-0 words (boolean.pair_words) masked by the dealer's streams
  and compute XOR shares of the pairs' (G, P) from Beaver products of privately held words; the
  dealer sends P1, once, its part of every product of the kernel (and of a random bit, for msb);
- rounds 2..6: the AND layers (boolean.TREE for msb, SKLANSKY for a2b);
- msb: round 7 opens c = msb ^ r for the dealer's random bit r, and [msb] = c + (1 - 2c)[r]: 7 rounds;
- msb_mul: msb(x) * d in the same 7 rounds: P0 and P1 open f = d - b in round 1 for a dealt mask
  b, the dealer (who knows r) deals [r b], and [msb d] = c [d] + (1 - 2c)(f [r] + [r b]);
- a2b: the sum bits are M ^ N ^ carries, re-randomized by P0-P1 randomness: 6 rounds;
- bitinject: the same masked-bit opening alone: 1 round.

msb and msb_mul of at most fss_msb.FSS_MAX elements skip the circuit: the dealer deals the keys of
a distributed comparison function (fss_msb.py) for r = r0 + r1, while P0 and P1 exchange
x_j + r_j (and d_j - b_j): 1 round, the outputs already additive.

The dealer only sends; the security argument is in docs/security.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.protocols import fss_msb
from veil.runtime.protocols.base import Context, Cost, Exchange, KernelGen, kernel
from veil.runtime.protocols.boolean import (ONE, SKLANSKY, TOP, TREE, Layer, and_layer, cross, dealt_products,
                                            local_p, pack_bits, pair_words, slots, unpack_bits, words_for_bits)
from veil.runtime.protocols.dealer2 import KERNELS, U64, _parties, _zeros
from veil.runtime.protocols.rep3_bool import _check_bit, _one_minus_2c

# PRG stream numbers within one conversion kernel (each (key, stream) drawn once).
S_AX, S_BY = 10, 12        # the masks of P0's and P1's layer-0 words (2 streams each)
S_MASK = 20                # layer k's AND mask (20 + k), P0-dealer and P1-dealer
S_DEALT = 30               # P0's part of the dealt products (P0-dealer)
S_ZETA = 31                # a2b: the output's re-randomization (P0-P1)
S_R0, S_R1, S_RA = 40, 41, 42  # the random bit's XOR parts and P0's additive part
S_B0, S_B1 = 43, 44        # msb_mul: the mask of d, P0's and P1's parts (each with the dealer)
S_RB = 45                  # msb_mul: P0's additive part of r * b (P0-dealer)
S_FR = 60                  # DCF msb: the mask's part r_j (Pj-dealer)
S_FS = 61                  # DCF msb: Pj's DCF seed (Pj-dealer)


def _msb_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """n <= FSS_MAX: 1 round (see _fss_cost). Otherwise 7 rounds: P0 and P1 send 2n layer-0
    words, 5n AND layers, the packed opened bit; the dealer 4n (the layer-0 and layer products,
    P1's additive part of the random bit)."""
    if fss_msb.use_fss(n):
        return _fss_cost(compute, n, times=False)
    p0, p1, d = compute
    w = words_for_bits(n)
    return Cost(7, {p0: 7 * n + w, p1: 7 * n + w, d: 4 * n}, {p0: 11 * n + w, p1: 7 * n + w, d: 18 * n + 2 * w})


def _msb_mul_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """n <= FSS_MAX: 1 round. Otherwise msb's 7 rounds; P0 and P1 also open d - b in round 1 (n
    each), the dealer sends P1 its part of r * b (n); draws: b's parts, P0's part of r * b."""
    if fss_msb.use_fss(n):
        return _fss_cost(compute, n, times=True)
    p0, p1, d = compute
    m = _msb_cost(compute, n)
    return Cost(7, {p0: m.sent[p0] + n, p1: m.sent[p1] + n, d: m.sent[d] + n},
                {p0: m.draws[p0] + 2 * n, p1: m.draws[p1] + n, d: m.draws[d] + 3 * n})


def _fss_cost(compute: list[str], n: int, times: bool, keys: int | None = None) -> Cost:
    """The DCF path with `keys` keys (n unless msb_at shares one key among several outputs), 1
    round: P0 and P1 send each other x_j + r_j (and d_j - b_j) per key; the dealer sends both the
    keys' correction words. Draws: each of P0, P1 its mask part and seed (2 words) (and b's part);
    the dealer all of them."""
    p0, p1, d = compute
    k = n if keys is None else keys
    each = (2 if times else 1) * k
    mine = 3 * k + (k if times else 0)
    return Cost(1, {p0: each, p1: each, d: 2 * fss_msb.key_words(k, times)}, {p0: mine, p1: mine, d: 2 * mine})


# msb_at, msb_at_mul: the DCF path with one key per base element, or the circuit on y
_msb_at_cost = fss_msb.at_cost(_fss_cost, _msb_cost, False)
_msb_at_mul_cost = fss_msb.at_cost(_fss_cost, _msb_mul_cost, True)


def _a2b_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """6 rounds: P0 and P1 send 2n layer-0 words and 5n AND layers; the dealer 7n products."""
    p0, p1, d = compute
    return Cost(6, {p0: 7 * n, p1: 7 * n, d: 7 * n}, {p0: 15 * n, p1: 8 * n, d: 21 * n})


def _bitinject_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """1 round: P0 and P1 open the masked bit (packed); the dealer sends P1 its additive part."""
    p0, p1, d = compute
    w = words_for_bits(n)
    return Cost(1, {p0: w, p1: w, d: n}, {p0: n + w, p1: w, d: n + 2 * w})


# ---- the dealer ------------------------------------------------------------------------------

def _deal(ctx: Context, n: int, layers: list[Layer], bit: bool, times: bool = False) -> np.ndarray:
    """The dealer's one message to P1: its part of layer 0's products and of every layer's, and
    (msb) its additive part of the random bit r = r0 ^ r1, and (msb_mul) of r * b for d's mask b."""
    p0, p1, _ = _parties(ctx)
    a = [ctx.rand(p0, S_AX + j, (n,)) for j in range(2)]
    b = [ctx.rand(p1, S_BY + j, (n,)) for j in range(2)]
    g, p = cross(a, b)
    dealt = dealt_products(layers, [ctx.rand(p0, S_MASK + L.k, (n,)) for L in layers],
                           [ctx.rand(p1, S_MASK + L.k, (n,)) for L in layers])
    words = np.concatenate([g, p, dealt.reshape(-1)])
    out = [words ^ ctx.rand(p0, S_DEALT, (words.size,))]
    if bit:
        r = _random_bit(ctx, n)
        out.append(r - ctx.rand(p0, S_RA, (n,)))
        if times:
            mask = ctx.rand(p0, S_B0, (n,)) + ctx.rand(p1, S_B1, (n,))
            out.append(r * mask - ctx.rand(p0, S_RB, (n,)))
    return np.concatenate(out)


def _random_bit(ctx: Context, n: int) -> np.ndarray:
    p0, p1, _ = _parties(ctx)
    w = words_for_bits(n)
    return unpack_bits(ctx.rand(p0, S_R0, (w,)) ^ ctx.rand(p1, S_R1, (w,)), n)


# ---- the computing parties -------------------------------------------------------------------

def _carry(ctx: Context, m: np.ndarray, layers: list[Layer], extra: list[np.ndarray] | None = None) -> KernelGen:
    """P0 (holding M) or P1 (holding N): layer 0 in round 1, the AND layers in the next rounds.
    Returns my XOR share of G, the words the dealer appended for P1 (P0: None), and the arrays
    `extra` the other party sent alongside in round 1 (after its layer-0 words)."""
    extra = extra or []
    p0, p1, d = _parties(ctx)
    n = m.size
    first = ctx.index == 0
    mine = pair_words(m)
    masks = [ctx.rand(d, (S_AX if first else S_BY) + j, (n,)) for j in range(2)]
    total = (2 + slots(layers)) * n
    got = yield Exchange(send={(p1 if first else p0): [w ^ r for w, r in zip(mine, masks)] + extra},
                         expect={(p1 if first else p0): 2 + len(extra)} | ({} if first else {d: 1}))
    other = [np.asarray(v, dtype=U64) for v in got[p1 if first else p0]]
    other, theirs = other[:2], other[2:]
    if first:
        dealt, rest = ctx.rand(d, S_DEALT, (total,)), None
        g, p = cross(mine, other)
        p ^= local_p(mine)
    else:
        words = np.asarray(got[d][0], dtype=U64)
        dealt, rest = words[:total], words[total:]
        g, p = cross(other, masks)
        p ^= local_p(mine)
    g ^= dealt[:n]
    p ^= dealt[n:2 * n]
    products = dealt[2 * n:].reshape(slots(layers), n)
    peer = p1 if first else p0
    for L in layers:
        mask = ctx.rand(d, S_MASK + L.k, (n,))
        e = L.opened(g, p) ^ mask
        got = yield Exchange(send={peer: [e]}, expect={peer: 1})
        g, p = and_layer(L, g, p, e ^ got[peer][0], mask, products, first)
    return g, rest, theirs


def _idle(rounds: int) -> KernelGen:
    """The dealer's part after its one message: it takes part in the rounds, receiving nothing."""
    for _ in range(rounds):
        yield Exchange()


def _open_bit(ctx: Context, bits: np.ndarray, part: np.ndarray | None) -> KernelGen:
    """P0 and P1 open c = bit ^ r (packed); returns c and my additive part of r: r_A0 (P0's
    stream) or r_A1 (P1's, `part`, or from the dealer in this round if None)."""
    p0, p1, d = _parties(ctx)
    n = bits.size
    first = ctx.index == 0
    peer = p1 if first else p0
    mine = pack_bits(bits) ^ ctx.rand(d, S_R0 if first else S_R1, (words_for_bits(n),))
    got = yield Exchange(send={peer: [mine]}, expect={peer: 1} | ({} if first or part is not None else {d: 1}))
    c = unpack_bits(mine ^ got[peer][0], n)
    if first:
        return c, ctx.rand(d, S_RA, (n,))
    return c, part if part is not None else np.asarray(got[d][0], dtype=U64)


def _bit_share(ctx: Context, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """My additive share of the bit c ^ r: z0 = c + (1 - 2c) r_A0, z1 = (1 - 2c) r_A1."""
    z = _one_minus_2c(c) * r
    return z + c if ctx.index == 0 else z


# ---- msb and msb_mul through a DCF (n <= FSS_MAX): the dealer deals, P0 and P1 evaluate -------

def _fss(ctx: Context, x: np.ndarray, d: np.ndarray | None, at: fss_msb.At | None = None) -> KernelGen:
    """One round: Pj sends the other x_j + r_j (and d_j - b_j) for r = r0 + r1 and b = b0 + b1
    drawn with the dealer, who sends both the keys' correction words; each then holds its
    additive share of msb(x) (or msb(x) d)."""
    p0, p1, dealer = _parties(ctx)
    n = x.size
    if ctx.index == 2:
        r = ctx.rand(p0, S_FR, (n,)) + ctx.rand(p1, S_FR, (n,))
        seeds = [ctx.rand(q, S_FS, (2 * n,)).reshape(n, 2) for q in (p0, p1)]
        mask = None if d is None else ctx.rand(p0, S_B0, (n,)) + ctx.rand(p1, S_B1, (n,))
        words = fss_msb.deal(r, seeds[0], seeds[1], mask)
        yield Exchange(send={p0: [words], p1: [words]})
        return _zeros((n if at is None else at.n,))
    first = ctx.index == 0
    peer = p1 if first else p0
    head = [x + ctx.rand(dealer, S_FR, (n,))]
    seed = ctx.rand(dealer, S_FS, (2 * n,))
    part = None
    if d is not None:
        part = ctx.rand(dealer, S_B0 if first else S_B1, (n,))
        head.append(d - part)
    mine = np.concatenate(head)
    got = yield Exchange(send={peer: [mine]}, expect={peer: 1, dealer: 1})
    both = mine + np.asarray(got[peer][0], dtype=U64)
    f = None if d is None else both[n:]
    words = np.asarray(got[dealer][0], dtype=U64)
    if at is not None:                   # msb_at: one key per element of x, at its points
        return fss_msb.evaluate_at(0 if first else 1, seed, words, both[:n], at, f, part)
    return fss_msb.evaluate(0 if first else 1, seed, words, both[:n], f, part)


# ---- the kernels -----------------------------------------------------------------------------

@kernel(KERNELS, _msb_cost, counts=("comparisons",))
def msb(ctx: Context, x: np.ndarray) -> KernelGen:
    """The sign bit of a secret as a secret 0/1: 1 round up to FSS_MAX elements, else 7."""
    shape, flat = np.shape(x), np.ascontiguousarray(x, dtype=U64).reshape(-1)
    if fss_msb.use_fss(flat.size):
        return (yield from _fss(ctx, flat, None)).reshape(shape)
    if ctx.index == 2:
        yield Exchange(send={_parties(ctx)[1]: [_deal(ctx, flat.size, TREE, bit=True)]})
        yield from _idle(len(TREE) + 1)
        return _zeros(shape)
    g, rest, _ = yield from _carry(ctx, flat << ONE, TREE)  # carry into bit 63 = out of bit 63 of 2x
    c, r = yield from _open_bit(ctx, (flat >> TOP) ^ (g >> TOP), rest)
    return _bit_share(ctx, c, r).reshape(shape)


@kernel(KERNELS, _msb_mul_cost, counts=("comparisons", "multiplications"))
def msb_mul(ctx: Context, x: np.ndarray, d: np.ndarray, **_: Any) -> KernelGen:
    """msb(x) * d for a secret d of x's shape, in msb's rounds: the DCF path's, or the circuit's
    [msb d] = c d + (1 - 2c)[r d], with [r d] = f [r] + [r b] for f = d - b opened in round 1 (b
    dealt, so the dealer knows r b)."""
    p0, p1, dealer = _parties(ctx)
    shape, flat = np.shape(x), np.ascontiguousarray(x, dtype=U64).reshape(-1)
    if np.shape(d) != shape:
        raise ValueError(f"dealer2 msb_mul needs equal shapes, got {shape} and {np.shape(d)}")
    n, dflat = flat.size, np.ascontiguousarray(d, dtype=U64).reshape(-1)
    if fss_msb.use_fss(n):
        return (yield from _fss(ctx, flat, dflat)).reshape(shape)
    if ctx.index == 2:
        yield Exchange(send={p1: [_deal(ctx, n, TREE, bit=True, times=True)]})
        yield from _idle(len(TREE) + 1)
        return _zeros(shape)
    first = ctx.index == 0
    f_mine = dflat - ctx.rand(dealer, S_B0 if first else S_B1, (n,))
    g, rest, theirs = yield from _carry(ctx, flat << ONE, TREE, [f_mine])
    f = f_mine + theirs[0]
    c, r = yield from _open_bit(ctx, (flat >> TOP) ^ (g >> TOP), None if first else rest[:n])
    rb = ctx.rand(dealer, S_RB, (n,)) if first else rest[n:]
    return (c * dflat + _one_minus_2c(c) * (f * r + rb)).reshape(shape)


def _affine(ctx: Context, x: np.ndarray, shape: Any, sign: Any, offsets: Any) -> np.ndarray:
    """My share of sign * broadcast_to(x, shape) + offsets (P0 adds the offsets)."""
    y = np.ascontiguousarray(np.broadcast_to(fss_msb.signed(x, sign), tuple(int(s) for s in shape)))
    return y + np.asarray(offsets, dtype=U64) if ctx.index == 0 else y


@kernel(KERNELS, _msb_at_cost, counts=("comparisons",))
def msb_at(ctx: Context, x: np.ndarray, shape: Any, sign: Any, offsets: Any) -> KernelGen:
    """msb(sign * broadcast_to(x, shape) + offsets): one DCF key per element of x, evaluated at its
    points (1 round), while x has at most FSS_MAX elements; else msb of the whole y."""
    x = np.asarray(x, dtype=U64)
    if not fss_msb.use_fss(x.size):
        return (yield from msb(ctx, _affine(ctx, x, shape, sign, offsets)))
    at = fss_msb.At.of(np.shape(x), shape, offsets)
    out = yield from _fss(ctx, fss_msb.signed(x, sign).reshape(-1), None, at)
    return out.reshape(tuple(int(s) for s in shape))


@kernel(KERNELS, _msb_at_mul_cost, counts=("comparisons", "multiplications"))
def msb_at_mul(ctx: Context, x: np.ndarray, shape: Any, sign: Any, offsets: Any, dsign: Any,
               doffsets: Any) -> KernelGen:
    """msb_at(x) * (dsign * broadcast_to(x, shape) + doffsets) in msb_at's round: e = dsign x - b
    opened per base element alongside c."""
    x = np.asarray(x, dtype=U64)
    if not fss_msb.use_fss(x.size):
        y, d = _affine(ctx, x, shape, sign, offsets), _affine(ctx, x, shape, dsign, doffsets)
        return (yield from msb_mul(ctx, y, d))
    at = fss_msb.At.of(np.shape(x), shape, offsets, doffsets)
    flat = x.reshape(-1)
    out = yield from _fss(ctx, fss_msb.signed(flat, sign), fss_msb.signed(flat, dsign), at)
    return out.reshape(tuple(int(s) for s in shape))


@kernel(KERNELS, _a2b_cost)
def a2b(ctx: Context, x: np.ndarray) -> KernelGen:
    """The same 64-bit word as XOR shares of P0 and P1: 6 rounds (a Sklansky adder)."""
    p0, p1, _ = _parties(ctx)
    shape, flat = np.shape(x), np.ascontiguousarray(x, dtype=U64).reshape(-1)
    if ctx.index == 2:
        yield Exchange(send={p1: [_deal(ctx, flat.size, SKLANSKY, bit=False)]})
        yield from _idle(len(SKLANSKY))
        return _zeros(shape)
    g, _, _ = yield from _carry(ctx, flat, SKLANSKY)
    zeta = ctx.rand(p1 if ctx.index == 0 else p0, S_ZETA, (flat.size,))
    return (flat ^ (g << ONE) ^ zeta).reshape(shape)


@kernel(KERNELS, _bitinject_cost)
def bitinject(ctx: Context, x: np.ndarray, bit: int) -> KernelGen:
    """Bit `bit` of a boolean sharing as an additive 0/1: 1 round."""
    k = _check_bit(bit)
    shape, flat = np.shape(x), np.ascontiguousarray(x, dtype=U64).reshape(-1)
    if ctx.index == 2:
        yield Exchange(send={_parties(ctx)[1]: [_random_bit(ctx, flat.size) - ctx.rand(_parties(ctx)[0], S_RA,
                                                                                         (flat.size,))]})
        return _zeros(shape)
    c, r = yield from _open_bit(ctx, (flat >> U64(k)) & ONE, None)
    return _bit_share(ctx, c, r).reshape(shape)
