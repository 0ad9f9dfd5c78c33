"""Boolean (XOR) sharing on packed words: the carry circuits the share conversions run (msb, a2b).

A boolean-shared element is one uint64 word, bit j of the element in bit j of the word, and its
shares XOR to it. Every function here works on whole flat tensors of words at once.

The conversions add two words, M + N, held by two different parties, with a parallel-prefix
carry computation on the (generate, propagate) pairs g = M & N, p = M ^ N, all in place in the
word: after layer k, a group's (G, P) sits at the group's top bit. Layer 0 (pairs of bits) is a
sum of products of a word of M's and a word of N's (`layer0`), so it is computed in the round in
which M and N are masked and opened; layers 1..5 are secure ANDs of XOR shares held by a
computing pair with masks and products dealt by a third party (Beaver's trick over GF(2)):

- `TREE`: only the carry out of the top bit, one AND pair per group (msb);
- `SKLANSKY`: the carry into every bit (a2b), the top of each lower half fanned out to the upper.

Each layer opens ONE masked word per element and needs one dealt product word (`Layer.pack`);
the tree's five layers' products fit together in one word. The security argument is in
docs/security.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

U64 = np.uint64
ODD = U64(0xAAAA_AAAA_AAAA_AAAA)
EVEN = U64(0x5555_5555_5555_5555)
ONE = U64(1)
TOP = U64(63)


def words_for_bits(n: int) -> int:
    """Words needed to pack n one-bit values."""
    return (int(n) + 63) // 64


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """n values in {0, 1} (uint64) as ceil(n/64) words, element i at bit i % 64 of word i // 64."""
    n = bits.size
    padded = np.zeros(words_for_bits(n) * 64, dtype=np.uint8)
    padded[:n] = bits & ONE
    return np.packbits(padded, bitorder="little").view("<u8").astype(U64)


def unpack_bits(words: np.ndarray, n: int) -> np.ndarray:
    """The first n one-bit values of packed words, as uint64 0/1."""
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(U64)


def rotl1(x: np.ndarray) -> np.ndarray:
    """Rotate left by one bit (bit 63 to bit 0)."""
    return (x << ONE) | (x >> TOP)


# ---- layer 0: pairs of bits, as products of an M-word and an N-word ----------------------------
#
# For the pair (odd bit i, even bit i-1), with p = M ^ N and g = M & N:
#   G_i = g_i ^ p_i g_{i-1} = M_i N_i ^ (M_i M_{i-1}) N_{i-1} ^ M_{i-1} (N_i N_{i-1})
#   P_i = p_i p_{i-1}      = M_i M_{i-1} ^ M_i N_{i-1} ^ M_{i-1} N_i ^ N_i N_{i-1}
# and an even bit keeps its own (g, p). The M-holder's words are X = (M, M_i M_{i-1} at odd i),
# the N-holder's Y likewise; every product is (linear map of X) & (linear map of Y).

def pair_words(w: np.ndarray) -> list[np.ndarray]:
    """A holder's words for layer 0: the word and its pairs' products (at odd bits)."""
    return [w, w & (w << ONE) & ODD]


def _g_maps_x(x: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    m, mm = x
    return m, mm, m << ONE


def _g_maps_y(y: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    n, nn = y
    return n, n << ONE, nn


def _p_maps_x(x: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    m, _ = x
    return m & ODD, m << ONE


def _p_maps_y(y: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    n, _ = y
    return n << ONE, n & ODD


def _dot(xs: tuple[np.ndarray, ...], ys: tuple[np.ndarray, ...]) -> np.ndarray:
    out = xs[0] & ys[0]
    for a, b in zip(xs[1:], ys[1:]):
        out ^= a & b
    return out


def cross(x: list[np.ndarray], y: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The product terms of layer 0's (G, P): bilinear in (X, Y), so XOR shares of either side
    give XOR shares of the result."""
    return _dot(_g_maps_x(x), _g_maps_y(y)), _dot(_p_maps_x(x), _p_maps_y(y))


def local_p(w: list[np.ndarray]) -> np.ndarray:
    """The terms of layer 0's P that one holder computes alone: p at even bits, M_i M_{i-1}."""
    return (w[0] & EVEN) ^ w[1]


# ---- layers 1..5: ANDs of XOR shares held by a computing pair ---------------------------------

@dataclass(frozen=True)
class Layer:
    """One AND layer: groups at `hi` bits absorb the group whose top is at `src` (fanned out)."""

    k: int
    hi: U64           # bits whose group is extended
    src: U64          # tops of the groups they absorb
    fan: U64 | None   # Sklansky: multiplier spreading a src bit over the 2^k bits above it
    slot: int         # which dealt product word holds this layer's products
    shift: int        # where in that word (tree layers share one word)

    def _spread(self, w: np.ndarray) -> np.ndarray:
        if self.fan is None:
            return w << U64(1 << self.k)
        return w * self.fan  # isolated bits times a run of ones: disjoint copies, GF(2)-linear

    def opened(self, g: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The one word this layer opens (masked): P at hi and src, G at src, P at src - 1."""
        return (p & self.hi) | (g & self.src) | ((p & self.src) >> ONE)

    def operands(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From an opened word (or a mask): P_hi and, moved to hi, G_src and P_src. Linear."""
        return w & self.hi, self._spread(w & self.src), self._spread((w << ONE) & self.src)

    def pack(self, t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
        """The two products (bits at hi) in this layer's bits of its dealt word."""
        if self.fan is None:
            return (t1 | (t2 >> ONE)) >> U64(self.shift)
        return t1 | (t2 >> U64(1 << self.k))

    def unpack(self, word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fan is None:
            w = word << U64(self.shift)
            return w & self.hi, (w << ONE) & self.hi
        return word & self.hi, (word << U64(1 << self.k)) & self.hi

    def bits(self) -> int:
        """This layer's bits in its dealt word, as a mask (for checking the packing)."""
        ones = np.full(1, ~U64(0), dtype=U64)
        return int(self.pack(ones & self.hi, ones & self.hi)[0])


def _mask(pred) -> U64:
    return U64(sum(1 << i for i in range(64) if pred(i)))


def _tree(k: int) -> Layer:
    d = 1 << k
    return Layer(k, _mask(lambda i: i % (2 * d) == 2 * d - 1), _mask(lambda i: i % (2 * d) == d - 1), None,
                 0, 0 if k == 1 else d + 2)


def _sklansky(k: int) -> Layer:
    d = 1 << k
    return Layer(k, _mask(lambda i: (i >> k) & 1 == 1), _mask(lambda i: i % (2 * d) == d - 1),
                 U64(((1 << d) - 1) << 1), k - 1, 0)


TREE = [_tree(k) for k in range(1, 6)]
SKLANSKY = [_sklansky(k) for k in range(1, 6)]


def slots(layers: list[Layer]) -> int:
    """Dealt product words per element for these layers."""
    return max(L.slot for L in layers) + 1


def _check_packing(layers: list[Layer]) -> None:
    """Layers sharing a dealt word use disjoint bits of it (checked once, at import)."""
    used: dict[int, int] = {}
    for L in layers:
        b = L.bits()
        assert b and not used.get(L.slot, 0) & b, f"layer {L.k}'s dealt bits overlap"
        used[L.slot] = used.get(L.slot, 0) | b


_check_packing(TREE)
_check_packing(SKLANSKY)


def dealt_products(layers: list[Layer], masks_a: list[np.ndarray], masks_b: list[np.ndarray]) -> np.ndarray:
    """The dealer's product words (slots, n): for each layer, X(a) & Y(a) for a = a_A ^ a_B."""
    n = masks_a[0].size if masks_a else 0
    out = np.zeros((slots(layers), n), dtype=U64)
    for L, ma, mb in zip(layers, masks_a, masks_b):
        x, y1, y2 = L.operands(ma ^ mb)
        out[L.slot] ^= L.pack(x & y1, x & y2)
    return out


def and_layer(L: Layer, g: np.ndarray, p: np.ndarray, opened: np.ndarray, mask: np.ndarray,
              dealt: np.ndarray, first: bool) -> tuple[np.ndarray, np.ndarray]:
    """My shares of (G, P) after layer L, from the opened word E = w ^ a, my mask share and my
    share of the dealt products: x & y = X(E)&Y(E) [first only] ^ X(E)&Y(a_i) ^ X(a_i)&Y(E) ^ c_i."""
    xe, y1e, y2e = L.operands(opened)
    xa, y1a, y2a = L.operands(mask)
    c1, c2 = L.unpack(dealt[L.slot])
    t1 = (xe & y1a) ^ (xa & y1e) ^ c1
    t2 = (xe & y2a) ^ (xa & y2e) ^ c2
    if first:
        t1 ^= xe & y1e
        t2 ^= xe & y2e
    return g ^ t1, (p & ~L.hi) | t2
