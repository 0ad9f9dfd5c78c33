"""rep3's boolean sharing and its conversions: msb, msb_mul, a2b, bitinject (registered in rep3.KERNELS).

A boolean-shared word is replicated like an arithmetic one: Pi holds (b_i, b_{i+1}) with
b = b0 ^ b1 ^ b2. For x = x0 + x1 + x2, P0 knows M = x0 + x1 and P1, P2 both know N = x2, so:

- round 1: P0 sends P2 its layer-0 words masked by randomness it shares with P1; P1 and P2 then
  hold XOR shares of the pairs' (G, P) (boolean.layer0 terms) without any AND;
- rounds 2..6: P1 and P2 run the AND layers (boolean.TREE or SKLANSKY), P0 dealing the masks from
  the streams it shares with each and sending P1 its part of the products once, in round 1;
- msb: a random bit r = alpha ^ beta ^ gamma (each part known to two parties, so to none whole)
  gets a replicated arithmetic sharing in rounds 1-2, alongside; round 7 opens c = msb ^ r to all
  three, and [msb] = c + (1 - 2c)[r] locally: 7 rounds;
- msb_mul: msb(x) * d for a secret d, in the same 7 rounds: [msb d] = c [d] + (1 - 2c)[r d], the
  product [r d] (a replicated multiplication) riding along round 3, once [r] is shared;
- a2b: round 7 turns P1 and P2's XOR shares into the replicated form;
- bitinject: P2 deals a random bit with XOR and additive shares to P0 and P1, who open the masked
  bit (round 1) and turn their additive shares into the replicated form (round 2).

msb and msb_mul of at most fss_msb.FSS_MAX elements skip the circuit: P2 deals the keys of a
distributed comparison function (fss_msb.py) and sends P0 x2 + r and P1 x0 + r for its private r
(round 1); P0 and P1 evaluate and re-share their additive outputs into the replicated form
(round 2): 2 rounds, ~1.5 KB (msb) or 2 KB (msb_mul) per element to each evaluator.

The security argument is in docs/security.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.protocols import fss_msb, rep3_trunc
from veil.runtime.protocols.base import Context, Cost, Exchange, KernelGen, kernel
from veil.runtime.protocols.boolean import (ONE, SKLANSKY, TOP, TREE, Layer, and_layer, cross, dealt_products,
                                            local_p, pack_bits, pair_words, rotl1, slots, unpack_bits,
                                            words_for_bits)
from veil.runtime.protocols.rep3 import KERNELS, U64, Share, _components, _cross, _roles, _shaped, _zero_share

# PRG stream numbers within one conversion kernel (each (key, stream) drawn once).
S_RHO = 10                 # P0-P1: the masks of P0's layer-0 words (2 streams)
S_MASK = 20                # P0-P1 and P0-P2: layer k's AND mask (20 + k)
S_DEALT = 30               # P0-P2: P2's part of the dealt products
S_KAPPA = 31               # a2b: the replicated output's parts b0 (P0-P2) and b1 (P0-P1)
S_ALPHA, S_BETA, S_GAMMA = 40, 41, 42  # msb: the random bit's parts (P0-P1, P1-P2, P2-P0)
S_SPART = 43               # msb: P1's sharing of alpha ^ beta (P0-P1)
S_ZERO = 44                # msb: the product's zero sharing
S_ZETA = 45                # msb: P1-P2 re-randomization of the opened bit's parts
S_RDZ = 46                 # msb_mul: the zero sharing re-randomizing the product r * d
S_R0, S_R1, S_RA = 50, 51, 52  # bitinject: the dealt bit's XOR parts, P0's additive part
S_Y0, S_Y2 = 53, 54        # bitinject: the replicated output's parts held with P2
S_FR = 60                  # DCF msb: P0's private mask r
S_FS = 61                  # DCF msb: the evaluator's DCF seed (P0-P1, P0-P2)
S_FT = 62                  # DCF msb: the replicated output's parts t1 (P0-P1) and t0 (P0-P2)
S_FB = 63                  # DCF msb_mul: the evaluator's part of d's mask b (P0-P1, P0-P2)


def _each(compute: list[str], *counts: int) -> dict[str, int]:
    return dict(zip(compute, counts))


def _msb_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """n <= FSS_MAX, 2 rounds: P2 sends each evaluator (P0, P1) c's mask and the DCF keys, they
    exchange the re-sharing. Otherwise 7 rounds: P0 sends 4n (layer-0 words, dealt products, the bit's
    product); P1 and P2 a word per AND layer, the bit's sharing and product, and the packed
    opened bit (2 ceil(n/64))."""
    if fss_msb.use_fss(n):
        return _fss_cost(compute, n, times=False)
    w = words_for_bits(n)
    return Cost(7, _each(compute, 4 * n, 7 * n + 2 * w, 6 * n + 2 * w),
                _each(compute, 16 * n + 2 * w, 10 * n + 3 * w, 8 * n + 3 * w))


def _msb_mul_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """n <= FSS_MAX: msb's 2 rounds, with d's mask and 2-word payloads. Otherwise msb's 7
    rounds; the product r * d rides along round 3: n more elements sent, 2n more drawn."""
    if fss_msb.use_fss(n):
        return _fss_cost(compute, n, times=True)
    m = _msb_cost(compute, n)
    return Cost(7, {p: e + n for p, e in m.sent.items()}, {p: k + 2 * n for p, k in m.draws.items()})


def _fss_cost(compute: list[str], n: int, times: bool, keys: int | None = None) -> Cost:
    """The DCF path with `keys` keys (n unless msb_at shares one key among several outputs): P2
    sends each evaluator c's mask (and f's) and the keys' correction words; P0 and P1 one word
    per output each in round 2. Draws: P2 r (private), both seeds (2 words each), both output
    parts (and b's two parts); an evaluator its seed and output part (and b's part)."""
    k = n if keys is None else keys
    head = (2 if times else 1) * k
    extra = k if times else 0
    return Cost(2, _each(compute, n, n, 2 * (head + fss_msb.key_words(k, times))),
                _each(compute, 2 * k + n + extra, 2 * k + n + extra, 5 * k + 2 * n + 2 * extra),
                rep3_trunc.dealt_links(compute))


# msb_at, msb_at_mul: the DCF path with one key per base element, or the circuit on y
_msb_at_cost = fss_msb.at_cost(_fss_cost, _msb_cost, False)
_msb_at_mul_cost = fss_msb.at_cost(_fss_cost, _msb_mul_cost, True)


def _a2b_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """7 rounds: P0 sends 2n words and 5n dealt products; P1 and P2 5 AND layers and 1 re-sharing."""
    return Cost(7, _each(compute, 7 * n, 6 * n, 6 * n), _each(compute, 19 * n, 8 * n, 11 * n))


def _bitinject_cost(compute: list[str], n: int, **_: Any) -> Cost:
    """2 rounds: P0 and P1 open the masked bit (packed) and re-share; P2 deals P1's additive part."""
    w = words_for_bits(n)
    return Cost(2, _each(compute, n + w, n + w, n), _each(compute, 2 * n + w, n + w, 3 * n + 2 * w))


def _check_bit(bit: Any) -> int:
    if not isinstance(bit, (int, np.integer)) or not 0 <= bit < 64:
        raise ValueError(f"bitinject of bit {bit!r}: must be an int in [0, 64)")
    return int(bit)


# ---- the carry, common to msb and a2b --------------------------------------------------------

def _carry_dealer(ctx: Context, m: np.ndarray, layers: list[Layer]) -> KernelGen:
    """P0: mask its layer-0 words for P2 (round 1) with P1's stream, deal the layers' masks and
    send P1 its part of the products; then idle through the AND layers."""
    _, p1, p2 = ctx.compute
    n = m.size
    rho = [ctx.rand(p1, S_RHO + j, (n,)) for j in range(2)]
    hats = [w ^ r for w, r in zip(pair_words(m), rho)]
    dealt = dealt_products(layers, [ctx.rand(p1, S_MASK + L.k, (n,)) for L in layers],
                           [ctx.rand(p2, S_MASK + L.k, (n,)) for L in layers]).reshape(-1)
    return hats, dealt ^ ctx.rand(p2, S_DEALT, (dealt.size,))


def _layer0_share(ctx: Context, v: np.ndarray, hats: list[np.ndarray] | None) -> tuple[np.ndarray, ...]:
    """P1 (hats None: it knows the masks) or P2 (the masked words): its XOR shares of layer 0's
    (G, P) and of M ^ N, from N (both know it)."""
    p0 = ctx.compute[0]
    y = pair_words(v)
    if hats is None:
        x = [ctx.rand(p0, S_RHO + j, (v.size,)) for j in range(2)]
        g, p = cross(x, y)
        return g, p ^ local_p(x), x[0]
    g, p = cross(hats, y)
    return g, p ^ local_p(hats) ^ local_p(y), hats[0] ^ v


def _layer_round(ctx: Context, L: Layer, g: np.ndarray, p: np.ndarray, dealt: np.ndarray,
                 send: dict[str, list[np.ndarray]] | None = None, expect: dict[str, int] | None = None) -> KernelGen:
    """One AND layer between P1 (first) and P2, with other arrays of the same round riding along
    (`send`, `expect`: after the layer's word); returns the new (G, P) and what arrived."""
    _, p1, p2 = ctx.compute
    peer = p2 if ctx.index == 1 else p1
    mask = ctx.rand(ctx.compute[0], S_MASK + L.k, (g.size,))
    e = L.opened(g, p) ^ mask
    out = {peer: [e]}
    for q, arrays in (send or {}).items():
        out[q] = out.get(q, []) + list(arrays)
    want = {peer: 1}
    for q, k in (expect or {}).items():
        want[q] = want.get(q, 0) + k
    got = yield Exchange(send=out, expect=want)
    g, p = and_layer(L, g, p, e ^ got[peer][0], mask, dealt, ctx.index == 1)
    return g, p, got


def _layers(ctx: Context, layers: list[Layer], g: np.ndarray, p: np.ndarray, dealt: np.ndarray) -> KernelGen:
    for L in layers:
        g, p, _ = yield from _layer_round(ctx, L, g, p, dealt)
    return g, p


def _dealt_share(ctx: Context, got: dict[str, list[np.ndarray]] | None, layers: list[Layer], n: int) -> np.ndarray:
    """My part of the dealt products: P1 receives it, P2 draws it."""
    if ctx.index == 1:
        return np.asarray(got[ctx.compute[0]][-1], dtype=U64).reshape(slots(layers), n)
    return ctx.rand(ctx.compute[0], S_DEALT, (slots(layers) * n,)).reshape(slots(layers), n)


# ---- msb, and msb times a secret ------------------------------------------------------------

@kernel(KERNELS, _msb_cost, counts=("comparisons",))
def msb(ctx: Context, x: Share) -> KernelGen:
    """The sign bit of a secret as a secret 0/1: 2 rounds up to FSS_MAX elements, else 7."""
    a, b, shape = _components(x)
    run = (_fss_p0, _fss_p1, _fss_p2) if fss_msb.use_fss(a.size) else (_msb_p0, _msb_p1, _msb_p2)
    return _shaped((yield from run[ctx.index](ctx, a, b, None)), shape)


@kernel(KERNELS, _msb_mul_cost, counts=("comparisons", "multiplications"))
def msb_mul(ctx: Context, x: Share, d: Share, **_: Any) -> KernelGen:
    """msb(x) * d for a secret d of x's shape, in msb's rounds: the DCF path's (f = d - b opened
    alongside c), or the circuit's [msb d] = c d + (1 - 2c)[r d], [r d] computed in round 3."""
    a, b, shape = _components(x)
    da, db, dshape = _components(d)
    if dshape != shape:
        raise ValueError(f"rep3 msb_mul needs equal shapes, got {shape} and {dshape}")
    run = (_fss_p0, _fss_p1, _fss_p2) if fss_msb.use_fss(a.size) else (_msb_p0, _msb_p1, _msb_p2)
    return _shaped((yield from run[ctx.index](ctx, a, b, (da, db))), shape)


def _affine(ctx: Context, x: Share, shape: Any, sign: Any, offsets: Any) -> Share:
    """My pair of sign * broadcast_to(x, shape) + offsets (offsets join x0, as add_public does)."""
    shape = tuple(int(s) for s in shape)
    a, b = (np.ascontiguousarray(np.broadcast_to(fss_msb.signed(v, sign), shape)) for v in x)
    off = np.asarray(offsets, dtype=U64)
    if ctx.index == 0:
        a = a + off
    elif ctx.index == 2:
        b = b + off
    return a, b


@kernel(KERNELS, _msb_at_cost, counts=("comparisons",))
def msb_at(ctx: Context, x: Share, shape: Any, sign: Any, offsets: Any) -> KernelGen:
    """msb(sign * broadcast_to(x, shape) + offsets): one DCF key per element of x, evaluated at its
    points (2 rounds), while x has at most FSS_MAX elements; else msb of the whole y."""
    a, b, base = _components(x)
    if not fss_msb.use_fss(a.size):
        return (yield from msb(ctx, _affine(ctx, x, shape, sign, offsets)))
    at = fss_msb.At.of(base, shape, offsets)
    a, b = fss_msb.signed(a, sign), fss_msb.signed(b, sign)
    return _shaped((yield from (_fss_p0, _fss_p1, _fss_p2)[ctx.index](ctx, a, b, None, at)), tuple(shape))


@kernel(KERNELS, _msb_at_mul_cost, counts=("comparisons", "multiplications"))
def msb_at_mul(ctx: Context, x: Share, shape: Any, sign: Any, offsets: Any, dsign: Any, doffsets: Any) -> KernelGen:
    """msb_at(x) * (dsign * broadcast_to(x, shape) + doffsets) in msb_at's rounds: e = dsign x - b
    opened per base element alongside c."""
    a, b, base = _components(x)
    if not fss_msb.use_fss(a.size):
        y, d = _affine(ctx, x, shape, sign, offsets), _affine(ctx, x, shape, dsign, doffsets)
        return (yield from msb_mul(ctx, y, d))
    at = fss_msb.At.of(base, shape, offsets, doffsets)
    d = fss_msb.signed(a, dsign), fss_msb.signed(b, dsign)
    a, b = fss_msb.signed(a, sign), fss_msb.signed(b, sign)
    return _shaped((yield from (_fss_p0, _fss_p1, _fss_p2)[ctx.index](ctx, a, b, d, at)), tuple(shape))


def _one_minus_2c(c: np.ndarray) -> np.ndarray:
    return U64(1) - U64(2) * c


def _rd_share(ctx: Context, r: Share, d: Share | None) -> tuple[dict[str, list[np.ndarray]], dict[str, int]]:
    """Round 3's extra traffic: my re-randomized additive share of r * d, to my predecessor."""
    if d is None:
        return {}, {}
    _, nxt, prv = _roles(ctx)
    z = _cross(r, d, np.multiply) + _zero_share(ctx, S_RDZ, d[0].size)
    return {prv: [z]}, {nxt: 1}


def _finish(ctx: Context, c: np.ndarray, r: Share, d: Share | None, rd: Share | None) -> Share:
    """[msb] = c + (1 - 2c)[r] (c joins x0), or [msb d] = c [d] + (1 - 2c)[r d]."""
    k = _one_minus_2c(c)
    if d is not None:
        return c * d[0] + k * rd[0], c * d[1] + k * rd[1]
    first, second = k * r[0], k * r[1]
    if ctx.index == 0:
        first = first + c
    elif ctx.index == 2:
        second = second + c
    return first, second


def _rd_received(ctx: Context, sent: dict[str, list[np.ndarray]], got: dict[str, list[np.ndarray]],
                 at: int) -> Share | None:
    """My replicated pair of r * d: what I sent and array `at` from my successor."""
    if not sent:
        return None
    _, nxt, prv = _roles(ctx)
    return sent[prv][0], np.asarray(got[nxt][at], dtype=U64)


def _msb_p0(ctx: Context, a: np.ndarray, b: np.ndarray, d: Share | None) -> KernelGen:
    _, p1, p2 = ctx.compute
    n, w = a.size, words_for_bits(a.size)
    hats, corr = _carry_dealer(ctx, rotl1(a + b), TREE)  # bit 0 carries M's top bit to P1, P2
    gamma = unpack_bits(ctx.rand(p2, S_GAMMA, (w,)), n)
    ctx.rand(p1, S_ALPHA, (w,))  # unused here; both holders of a key draw alike (the audit's rule)
    s1 = ctx.rand(p1, S_SPART, (n,))
    yield Exchange(send={p2: hats, p1: [corr]})
    z = s1 * gamma + _zero_share(ctx, S_ZERO, n)       # [s]=(0, s1), [gamma]=(gamma, 0)
    got = yield Exchange(send={p2: [z]}, expect={p1: 1})
    sg = (z, np.asarray(got[p1][0], dtype=U64))
    r = (gamma - U64(2) * sg[0], s1 - U64(2) * sg[1])
    send, expect = _rd_share(ctx, r, d)
    got = yield Exchange(send=send, expect=expect)
    rd = _rd_received(ctx, send, got, 0)
    for _ in TREE[2:]:
        yield Exchange()
    got = yield Exchange(expect={p1: 1, p2: 1})
    c = unpack_bits(got[p1][0] ^ got[p2][0], n)
    return _finish(ctx, c, r, d, rd)


def _msb_p1(ctx: Context, a: np.ndarray, b: np.ndarray, d: Share | None) -> KernelGen:
    p0, _, p2 = ctx.compute
    n, w = a.size, words_for_bits(a.size)
    g, p, _ = _layer0_share(ctx, b << ONE, None)
    s_bit = p & ONE
    alpha, beta = ctx.rand(p0, S_ALPHA, (w,)), ctx.rand(p2, S_BETA, (w,))
    s1 = ctx.rand(p0, S_SPART, (n,))
    s2 = unpack_bits(alpha ^ beta, n) - s1
    got = yield Exchange(send={p2: [s2]}, expect={p0: 1})
    dealt = _dealt_share(ctx, got, TREE, n)
    z = _zero_share(ctx, S_ZERO, n)                    # P1's product term is 0
    g, p, got = yield from _layer_round(ctx, TREE[0], g, p, dealt, send={p0: [z]}, expect={p2: 1})
    sg = (z, np.asarray(got[p2][1], dtype=U64))
    r = (s1 - U64(2) * sg[0], s2 - U64(2) * sg[1])
    send, expect = _rd_share(ctx, r, d)
    g, p, got = yield from _layer_round(ctx, TREE[1], g, p, dealt, send=send, expect=expect)
    rd = _rd_received(ctx, send, got, 1)
    g, _ = yield from _layers(ctx, TREE[2:], g, p, dealt)
    u = pack_bits(s_bit ^ (g >> TOP)) ^ alpha ^ ctx.rand(p2, S_ZETA, (w,))
    got = yield Exchange(send={p0: [u], p2: [u]}, expect={p2: 1})
    c = unpack_bits(u ^ got[p2][0], n)
    return _finish(ctx, c, r, d, rd)


def _msb_p2(ctx: Context, a: np.ndarray, b: np.ndarray, d: Share | None) -> KernelGen:
    p0, p1, _ = ctx.compute
    n, w = a.size, words_for_bits(a.size)
    beta, gamma = ctx.rand(p1, S_BETA, (w,)), ctx.rand(p0, S_GAMMA, (w,))
    got = yield Exchange(expect={p0: 2, p1: 1})
    g, p, _ = _layer0_share(ctx, a << ONE, [np.asarray(h, dtype=U64) for h in got[p0]])
    s_bit = (p & ONE) ^ (a >> TOP)
    s2 = np.asarray(got[p1][0], dtype=U64)
    dealt = _dealt_share(ctx, None, TREE, n)
    gbits = unpack_bits(gamma, n)
    z = s2 * gbits + _zero_share(ctx, S_ZERO, n)       # [s]=(s2, 0), [gamma]=(0, gamma)
    g, p, got = yield from _layer_round(ctx, TREE[0], g, p, dealt, send={p1: [z]}, expect={p0: 1})
    sg = (z, np.asarray(got[p0][0], dtype=U64))
    r = (s2 - U64(2) * sg[0], gbits - U64(2) * sg[1])
    send, expect = _rd_share(ctx, r, d)
    g, p, got = yield from _layer_round(ctx, TREE[1], g, p, dealt, send=send, expect=expect)
    rd = _rd_received(ctx, send, got, 0)
    g, _ = yield from _layers(ctx, TREE[2:], g, p, dealt)
    u = pack_bits(s_bit ^ (g >> TOP)) ^ beta ^ gamma ^ ctx.rand(p1, S_ZETA, (w,))
    got = yield Exchange(send={p0: [u], p1: [u]}, expect={p1: 1})
    c = unpack_bits(u ^ got[p1][0], n)
    return _finish(ctx, c, r, d, rd)


# ---- msb and msb_mul through a DCF (n <= FSS_MAX): P2 deals, P0 and P1 evaluate ---------------
# P2 deals as it does for the truncations: what it sends depends only on its own components (x2,
# x0), which every truncation and DCF output draws, so P2 runs ahead and a comparison after them
# waits on its round 2 alone (compiler/latency.py).

def _fss_dealer(ctx: Context, a: np.ndarray, b: np.ndarray, d: Share | None, at: fss_msb.At | None = None) -> KernelGen:
    """P2 (x2, x0): round 1 sends P0 x2 + r, P1 x0 + r (and d2 - m, d0 - m for d's mask m) and
    both the keys' correction words; it holds (t2, t0) of the output (at.n elements for msb_at),
    drawn with P1 and P0."""
    p0, p1, _ = ctx.compute
    n = a.size
    r = ctx.rand(None, S_FR, (n,))
    seeds = [ctx.rand(q, S_FS, (2 * n,)).reshape(n, 2) for q in (p0, p1)]
    heads = [[a + r], [b + r]]
    mask = None
    if d is not None:
        mask = ctx.rand(p0, S_FB, (n,)) + ctx.rand(p1, S_FB, (n,))
        heads = [[a + r, d[0] - mask], [b + r, d[1] - mask]]
    words = fss_msb.deal(r, seeds[0], seeds[1], mask)
    yield Exchange(send={p0: [np.concatenate(heads[0]), words], p1: [np.concatenate(heads[1]), words]})
    yield Exchange()
    n = n if at is None else at.n
    return ctx.rand(p1, S_FT, (n,)), ctx.rand(p0, S_FT, (n,))


def _fss_eval(ctx: Context, a: np.ndarray, b: np.ndarray, d: Share | None, at: fss_msb.At | None = None) -> KernelGen:
    """P0 (x0, x1; evaluator 0) or P1 (x1, x2; evaluator 1): c = x + r and f = d - m from P2's
    words and its own pair, its additive share u of the output, then round 2's re-sharing:
    x1 = (u0 - t0) + (u1 - t2)."""
    p0, p1, p2 = ctx.compute
    n, first = a.size, ctx.index == 0
    seed = ctx.rand(p2, S_FS, (2 * n,))
    got = yield Exchange(expect={p2: 2})
    head, words = (np.asarray(v, dtype=U64) for v in got[p2])
    c = head[:n] + a + b
    f = part = None
    if d is not None:
        f = head[n:] + d[0] + d[1]
        part = ctx.rand(p2, S_FB, (n,))
    if at is None:
        u = fss_msb.evaluate(0 if first else 1, seed, words, c, f, part)
    else:                                     # msb_at: one key per element of x, at its points
        u = fss_msb.evaluate_at(0 if first else 1, seed, words, c, at, f, part)
        n = at.n
    drawn = ctx.rand(p2, S_FT, (n,))          # t0 (P0) or t2 (P1)
    mine = u - drawn
    peer = p1 if first else p0
    got = yield Exchange(send={peer: [mine]}, expect={peer: 1})
    x1 = mine + np.asarray(got[peer][0], dtype=U64)
    return (drawn, x1) if first else (x1, drawn)


_fss_p0 = _fss_p1 = _fss_eval
_fss_p2 = _fss_dealer


# ---- a2b -------------------------------------------------------------------------------------

@kernel(KERNELS, _a2b_cost)
def a2b(ctx: Context, x: Share) -> KernelGen:
    """The same 64-bit word as a replicated boolean sharing: 7 rounds (a Sklansky adder)."""
    a, b, shape = _components(x)
    p0, p1, p2 = ctx.compute
    n = a.size
    if ctx.index == 0:
        hats, corr = _carry_dealer(ctx, a + b, SKLANSKY)
        yield Exchange(send={p2: hats, p1: [corr]})
        for _ in range(len(SKLANSKY) + 1):  # the AND layers and the re-sharing
            yield Exchange()
        return _shaped((ctx.rand(p2, S_KAPPA, (n,)), ctx.rand(p1, S_KAPPA, (n,))), shape)
    if ctx.index == 1:
        g, p, half = _layer0_share(ctx, b, None)
        got = yield Exchange(expect={p0: 1})
    else:
        got = yield Exchange(expect={p0: 2})
        g, p, half = _layer0_share(ctx, a, [np.asarray(h, dtype=U64) for h in got[p0]])
    g, _ = yield from _layers(ctx, SKLANSKY, g, p, _dealt_share(ctx, got, SKLANSKY, n))
    peer = p2 if ctx.index == 1 else p1
    kappa = ctx.rand(p0, S_KAPPA, (n,))              # b1 (P1's) or b0 (P2's)
    mine = half ^ (g << ONE) ^ kappa                 # sum bits = M ^ N ^ carries
    got = yield Exchange(send={peer: [mine]}, expect={peer: 1})
    b2 = mine ^ got[peer][0]
    return _shaped((kappa, b2) if ctx.index == 1 else (b2, kappa), shape)


# ---- bitinject -------------------------------------------------------------------------------

@kernel(KERNELS, _bitinject_cost)
def bitinject(ctx: Context, x: Share, bit: int) -> KernelGen:
    """Bit `bit` of a replicated boolean sharing as a replicated arithmetic 0/1: 2 rounds."""
    k = _check_bit(bit)
    a, b, shape = _components(x)
    p0, p1, p2 = ctx.compute
    n, w = a.size, words_for_bits(a.size)
    if ctx.index == 2:
        r = unpack_bits(ctx.rand(p0, S_R0, (w,)) ^ ctx.rand(p1, S_R1, (w,)), n)
        yield Exchange(send={p1: [r - ctx.rand(p0, S_RA, (n,))]})
        yield Exchange()
        return _shaped((ctx.rand(p1, S_Y2, (n,)), ctx.rand(p0, S_Y0, (n,))), shape)
    if ctx.index == 0:  # P0's XOR part is b0, P1's is b1 ^ b2
        mine = pack_bits((a >> U64(k)) & ONE) ^ ctx.rand(p2, S_R0, (w,))
        got = yield Exchange(send={p1: [mine]}, expect={p1: 1})
        c = unpack_bits(mine ^ got[p1][0], n)
        y0 = ctx.rand(p2, S_Y0, (n,))
        z = c + _one_minus_2c(c) * ctx.rand(p2, S_RA, (n,)) - y0   # my additive part, minus y0
        got = yield Exchange(send={p1: [z]}, expect={p1: 1})
        return _shaped((y0, z + got[p1][0]), shape)
    mine = pack_bits(((a ^ b) >> U64(k)) & ONE) ^ ctx.rand(p2, S_R1, (w,))
    got = yield Exchange(send={p0: [mine]}, expect={p0: 1, p2: 1})
    c = unpack_bits(mine ^ got[p0][0], n)
    y2 = ctx.rand(p2, S_Y2, (n,))
    z = _one_minus_2c(c) * np.asarray(got[p2][0], dtype=U64) - y2
    got = yield Exchange(send={p0: [z]}, expect={p0: 1})
    return _shaped((z + got[p0][0], y2), shape)
