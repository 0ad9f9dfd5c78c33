"""rep3's truncations: floor(x / 2^m) (+0 or +1) of a secret, exact for |x| < 2^62, in 2 rounds.

P2 deals a mask r and the openers' additive parts of its top bit and shifted low bits; P0 and P1
learn c = x + 2^62 + r and form, between them, the one output component that depends on c (x1);
the output's other components x0 = t and x2 = q are drawn. Two ways in:

- from a 3-out-of-3 additive value z (a product share, a sum of them): every party opens its
  masked share in round 1 (trunc_additive, mul_trunc, matmul_trunc, trunc_add);
- from a rep3 sharing (trunc): P2 alone sends in round 1, x2 + r to P0 and x0 + r to P1, and each
  opener adds the pair it holds. Those are P2's own components, known before the value's last one
  when x comes from a kernel that draws x0 and x2 (every truncation, a DCF comparison): P2 runs
  ahead, and such a truncation waits on one round only (compiler/latency.py counts it so).

The security argument is in docs/security.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from veil.runtime.protocols import rep3_fused as fused
from veil.runtime.protocols import rep3_pending as pending
from veil.runtime.protocols.base import Context, Cost, Exchange, KernelGen, kernel, links
from veil.runtime.protocols.rep3 import (KERNELS, U64, Share, _check_bits, _components, _flat, _matmul_share,
                                         _factors, _roles, _shaped)

# PRG streams (within one kernel every independent draw under the same key has its own)
S_RC = 1             # trunc_additive: the dealer's mask on its own share (P2's private key)
S_RA, S_RB = 2, 3    # trunc_additive: P0's and P1's masks on their shares (P0<->P2, P1<->P2)
S_OPENER = 4         # trunc_additive: the first opener's parts of the mask's top bit and shifted low bits
S_T, S_Q = 6, 8      # trunc_additive: the output components x0 (P0<->P2) and x2 (P1<->P2)


def _halves(n: int) -> tuple[int, int, int]:
    """The truncation's split of n elements: the first h elements (P0 opens first, P1 gets the
    dealt words), the rest (the roles swapped), and the words per PRG row, 2 * (n - h) >= n."""
    h = n // 2
    return h, n - h, 2 * (n - h)


def _trunc_cost(compute: list[str], n: int, bits: int, keep: bool = False, **_: Any) -> Cost:
    """trunc_additive: 2 rounds (P2 sends in the first only); P0 and P1 send 2n each, P2 3n plus
    the packed f of each half (n/4 in all for bits <= 16), half to each opener; draws 3, 3 and 7 rows
    of 2 * ceil(n/2) words. `keep`: round 1 only, the output left pending (rep3_pending)."""
    p0, p1, p2 = compute
    h, rest, row = _halves(n)
    sent = 3 * n + fused.f_words(h, bits) + fused.f_words(rest, bits)
    first = ((p0, p1), (p1, p0), (p2, p0), (p2, p1))
    if keep:
        return Cost(1, {p0: n, p1: n, p2: sent}, {p0: 3 * row, p1: 3 * row, p2: 7 * row}, links(first))
    return Cost(2, {p0: 2 * n, p1: 2 * n, p2: sent}, {p0: 3 * row, p1: 3 * row, p2: 7 * row},
                links(first, ((p0, p1), (p1, p0))))


def trunc_additive(ctx: Context, z: np.ndarray, m: int) -> KernelGen:
    """A rep3 sharing (flat) of floor(z / 2^m) (+0 or +1) from a 3-out-of-3 additive sharing z.

    P2 deals a masked truncation pair; P0 and P1 open c = z + 2^62 + r to each other only, then
    form the one output component that depends on c between them. Valid for |z| < 2^62 (signed).
    2 rounds; P0 sends 2n, P1 2n, P2 about 3.25n (bits <= 16), half to each, in round 1 only
    (docs/security.md).
    """
    return (yield from _trunc(ctx, (_flat(z),), m))


def trunc_product(ctx: Context, x: Share, y: Share, m: int, keep: bool = False) -> KernelGen:
    """trunc_additive of my product share of x*y, the product computed inside the first pass."""
    *factors, _ = _factors(x, y)
    return (yield from _trunc(ctx, tuple(factors), m, keep))


def _trunc(ctx: Context, product: tuple[np.ndarray, ...], m: int, keep: bool = False) -> KernelGen:
    """The truncation at my role; `product` is (z,) or the operands (xa, xb, ya, yb) of z.

    Each party draws all its words in one call. Every share sent in round 1 carries a mask
    its receiver cannot compute, and the masks make up r: P0's rA (k02), P1's rB (k12) and P2's
    private rC. The output's components x0 = t (k02) and x2 = q (k12) are drawn; x1 = y - t - q,
    the one that depends on c, is summed by the two parties that know c, so P2 takes no part in
    round 2. Of y's two halves, the "first opener" draws its parts of r's top bit and low bits
    with the dealer (one row: both, one after the other) and the second gets them from the dealer
    (e, f): P0 is first on the first h elements and P1 on the rest, so the dealer's words go half
    to each and P0 and P1 do the same work."""
    m = _check_bits(m)
    i, _, _ = _roles(ctx)
    n = product[0].size
    if i < 2:
        return (yield from _trunc_opener(ctx, product, m, n, keep))
    return (yield from _trunc_p2(ctx, product, m, n, keep))


def _trunc_opener(ctx: Context, product: tuple[np.ndarray, ...], m: int, n: int, keep: bool) -> KernelGen:
    """P0 or P1: open c with the other opener, v = (my half of y) - my output mask, x1 = v + theirs."""
    p0, p1, p2 = ctx.compute
    i = ctx.index
    other = p1 if i == 0 else p0
    _, _, row = _halves(n)
    mask, out_mask, first = ctx.rand_many(p2, (S_RA if i == 0 else S_RB, S_T if i == 0 else S_Q, S_OPENER), row)
    mask, out_mask = mask[:n], out_mask[:n]  # rA or rB; t (x0) or q (x2)
    s = fused.open_mask(product, mask)  # z_i + my mask: the opened c is s + theirs + P2's + 2^62
    got = yield Exchange(send={other: [s]}, expect={other: 1, p2: 3})
    g, (z2, e, f) = got[other][0], got[p2]
    return (yield from _round2(ctx, (s, g, z2), e, f, first, out_mask, m, n, keep))


def _part(a: np.ndarray | None, part: slice) -> np.ndarray | None:
    return None if a is None else a[part]


def _round2(ctx: Context, opened: tuple[np.ndarray, np.ndarray, np.ndarray | None], e: np.ndarray,
            f: np.ndarray, first: np.ndarray, out_mask: np.ndarray, m: int, n: int,
            keep: bool = False) -> KernelGen:
    """An opener's round 2, from the terms of c (`opened`: c = their sum + 2^62) and the dealt words:
    v = (my half of y) - my output mask, x1 = v + theirs; `keep`: no round 2, the output pending."""
    p0, p1, _ = ctx.compute
    i = ctx.index
    other = p1 if i == 0 else p0
    h, rest, _ = _halves(n)
    k = h if i == 0 else rest  # how many elements I open first: their top-bit and low-bit parts
    s, g, z2 = opened
    v = np.empty(n, dtype=U64)  # my half of y minus my output mask, P0's first part on [0, h)
    mine, theirs = (slice(0, h), slice(h, n)) if i == 0 else (slice(h, n), slice(0, h))
    fused.trunc_p0(s[mine], g[mine], _part(z2, mine), first[:k], first[k:2 * k], out_mask[mine], m, out=v[mine])
    fused.trunc_p1(s[theirs], g[theirs], _part(z2, theirs), e, f, out_mask[theirs], m, out=v[theirs])
    if keep:
        return pending.opener_pending(opened, v, mine, out_mask, m)
    got = yield Exchange(send={other: [v]}, expect={other: 1})
    x1 = np.add(v, got[other][0], out=v)  # in place: every mesh has the bytes once send returns
    return (out_mask, x1) if i == 0 else (x1, out_mask)


def _trunc_p2(ctx: Context, product: tuple[np.ndarray, ...], m: int, n: int, keep: bool) -> KernelGen:
    p0, p1, p2 = ctx.compute
    h, rest, row = _halves(n)
    rc, ra, t, first0, rb, q, first1 = ctx.rand_rows(
        ((None, S_RC), (p0, S_RA), (p0, S_T), (p0, S_OPENER), (p1, S_RB), (p1, S_Q), (p1, S_OPENER)), row)
    rc, ra, t, rb, q = rc[:n], ra[:n], t[:n], rb[:n], q[:n]  # rows are 2 * ceil(n/2) words
    z = fused.open_mask(product, rc)  # z2 + rC
    # r = rA + rB + rC; each opener's words for the elements the other opens first
    e1, f1 = fused.trunc_deal(ra[:h], rb[:h], first0[:h], first0[h:2 * h], m, rc[:h])
    e0, f0 = fused.trunc_deal(ra[h:], rb[h:], first1[:rest], first1[rest:2 * rest], m, rc[h:])
    yield Exchange(send={p0: [z, e0, f0], p1: [z, e1, f1]})
    if keep:
        return pending.dealer_pending(ra + rb + rc, first0, first1, t, q, m)
    yield Exchange()  # round 2 is P0's and P1's alone: nothing to send or wait for
    return q, t


def dealt_links(compute: list[str]) -> tuple[frozenset[tuple[str, str]], ...]:
    """P2 sends to P0 and P1, then P0 and P1 exchange: trunc of a sharing, and the DCF comparisons."""
    p0, p1, p2 = compute
    return links(((p2, p0), (p2, p1)), ((p0, p1), (p1, p0)))


def _trunc_share_cost(compute: list[str], n: int, bits: int, keep: bool = False, **_: Any) -> Cost:
    """trunc of a rep3 sharing: 2 rounds, P2 alone sending in the first (its two components, masked,
    and the dealt words: 3n plus each half's packed f), P0 and P1 n each in the second; draws 2, 2
    and 5 rows of 2 * ceil(n/2) words. `keep`: round 1 only."""
    p0, p1, p2 = compute
    h, rest, row = _halves(n)
    sent = 3 * n + fused.f_words(h, bits) + fused.f_words(rest, bits)
    if keep:
        return Cost(1, {p0: 0, p1: 0, p2: sent}, {p0: 2 * row, p1: 2 * row, p2: 5 * row}, links(((p2, p0), (p2, p1))))
    return Cost(2, {p0: n, p1: n, p2: sent}, {p0: 2 * row, p1: 2 * row, p2: 5 * row}, dealt_links(compute))


@kernel(KERNELS, _trunc_share_cost, counts=("truncations",))
def trunc(ctx: Context, x: Share, bits: int, keep: bool = False) -> KernelGen:
    """Arithmetic shift right of a secret by `bits`, off by at most +1; needs |x| < 2^62.

    The openers add the pair they hold to what P2 sends (x2 + r to P0, x0 + r to P1), so in round 1
    nothing waits for the value's x1: only round 2 lies on the path after the kernel producing x."""
    a, b, shape = _components(x)
    m = _check_bits(bits)
    run = _trunc_share_opener if ctx.index < 2 else _trunc_share_p2
    return _out((yield from run(ctx, a, b, m, a.size, keep)), shape)


def _out(value: Any, shape: tuple[int, ...]) -> Any:
    """A truncation's output in its shape: a sharing, or a pending one (rep3_pending)."""
    if isinstance(value, pending.Pending):
        return pending.reshaped(value, shape)
    return _shaped(value, shape)


def _trunc_share_opener(ctx: Context, a: np.ndarray, b: np.ndarray, m: int, n: int, keep: bool) -> KernelGen:
    """P0 (x0, x1) or P1 (x1, x2): c = a + b + (what P2 sent) + 2^62, then round 2 as _trunc_opener."""
    p2, i = ctx.compute[2], ctx.index
    _, _, row = _halves(n)
    out_mask, first = ctx.rand_many(p2, (S_T if i == 0 else S_Q, S_OPENER), row)
    s = np.add(a, b)  # my part of x: never sent
    got = yield Exchange(expect={p2: 3})
    g, e, f = got[p2]
    return (yield from _round2(ctx, (s, g, None), e, f, first, out_mask[:n], m, n, keep))


def _trunc_share_p2(ctx: Context, a: np.ndarray, b: np.ndarray, m: int, n: int, keep: bool) -> KernelGen:
    """P2 (x2, x0): the mask r from its private key; x2 + r to P0, x0 + r to P1, each with its
    dealt words; nothing to receive in either round."""
    p0, p1, _ = ctx.compute
    h, rest, row = _halves(n)
    r, t, first0, q, first1 = ctx.rand_rows(
        ((None, S_RC), (p0, S_T), (p0, S_OPENER), (p1, S_Q), (p1, S_OPENER)), row)
    r, t, q = r[:n], t[:n], q[:n]
    zero = np.zeros(rest, dtype=U64)
    to0, to1 = fused.open_mask((a,), r), fused.open_mask((b,), r)
    e1, f1 = fused.trunc_deal(r[:h], zero[:h], first0[:h], first0[h:2 * h], m)
    e0, f0 = fused.trunc_deal(r[h:], zero, first1[:rest], first1[rest:2 * rest], m)
    yield Exchange(send={p0: [to0, e0, f0], p1: [to1, e1, f1]})
    if keep:
        return pending.dealer_pending(r, first0, first1, t, q, m)
    yield Exchange()  # round 2 is P0's and P1's alone
    return q, t


@kernel(KERNELS, _trunc_cost, counts=("multiplications", "truncations"))
def mul_trunc(ctx: Context, x: Share, y: Share, bits: int, keep: bool = False, **_: Any) -> KernelGen:
    """Elementwise product then truncation, fused into 2 rounds.

    The product share goes straight into trunc_additive, whose masks re-randomize every share it
    sends (as the zero sharing `mul` would add), so none is added here.
    """
    shape = np.shape(x[0])
    return _out((yield from trunc_product(ctx, x, y, bits, keep)), shape)


@kernel(KERNELS, _trunc_cost, counts=("multiplications", "truncations"))
def matmul_trunc(ctx: Context, x: Share, y: Share, bits: int, keep: bool = False, **_: Any) -> KernelGen:
    """Matrix product then truncation, fused into 2 rounds."""
    z, shape = _matmul_share(ctx, x, y)
    return _out((yield from _trunc(ctx, (_flat(z),), bits, keep)), shape)


@kernel(KERNELS, _trunc_cost, counts=("truncations",))
def trunc_add(ctx: Context, z: np.ndarray, bits: int, keep: bool = False) -> KernelGen:
    """Truncate a value held as additive shares (a sum of products) into a rep3 sharing: 2 rounds."""
    shape = np.shape(z)
    return _out((yield from _trunc(ctx, (_flat(z),), bits, keep)), shape)


