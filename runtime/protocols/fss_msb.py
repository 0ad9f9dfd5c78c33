"""msb and msb_mul through a distributed comparison function (dcf.py): 2 rounds in rep3, 1 in dealer2.

A dealer (rep3: P2, which deals the truncations too; dealer2: the dealer) masks x with a random
r it knows and deals DCF keys for alpha = r mod 2^63; two evaluators learn c = x + r and, writing
c = c63 2^63 + c_low and likewise r,

    msb(x) = c63 ^ r63 ^ [c_low < r_low]      (the borrow out of the low 63 bits of c - r).

The dealer knows r63, so it folds it in: payload beta = 1 - 2 r63 and offset r63 give additive
shares of t = r63 ^ borrow = r63 + (1 - 2 r63) borrow, and msb = c63 + (1 - 2 c63) t is linear
for the evaluators, who know c63. msb_mul(x, d) also opens f = d - b for a dealt mask b = b_1 + b_2
(one part from the stream the dealer shares with each evaluator) and widens the payload to
(1 - 2 r63, (1 - 2 r63) b) with offsets (r63, r63 b), so the evaluators hold shares of t and t b:

    msb d = f msb + msb b,    msb b = c63 b + (1 - 2 c63) t b.

Kernels use this path for n <= FSS_MAX elements: the keys cost `key_words` ring words per element
(about 1.5 KB for msb, 2 KB for msb_mul) to each evaluator, so large vectors keep the carry circuit
(7 rounds, ~100 bytes per element). The security argument is in docs/security.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from veil.runtime.protocols import dcf

U64 = np.uint64
ONE = U64(1)
TOP = U64(63)
LOW = U64((1 << 63) - 1)
N_BITS = 63               # the DCF compares the low 63 bits
FSS_MAX = 1024            # kernels of at most this many elements take the DCF path: above ~1000 its
                          # keys cost more than the 5 rounds they save, on this machine's loopback and
                          # nearly so at 352 Mbit/s (docs/perf.md, "The FSS_MAX trade-off")


def use_fss(n: int) -> bool:
    """Whether an n-element comparison takes the DCF path (the kernels and their costs agree)."""
    return n <= FSS_MAX


def at_cost(fss: Callable[..., Any], circuit: Callable[..., Any], times: bool) -> Callable[..., Any]:
    """A protocol's msb_at (times: msb_at_mul) cost from its two paths' costs: `fss(compute, n,
    times, keys)` with one key per base element (`sizes[0]`) while the base has at most FSS_MAX,
    else `circuit(compute, n)` on all n outputs (the kernels choose alike)."""
    def cost(compute: list[str], n: int, sizes: list[int] | None = None, **_: Any) -> Any:
        keys = sizes[0] if sizes else n
        return fss(compute, n, times, keys) if use_fss(keys) else circuit(compute, n)
    return cost


def width(times: bool) -> int:
    """Payload words: t alone (msb), or t and t b (msb_mul)."""
    return 2 if times else 1


def key_words(n: int, times: bool) -> int:
    """Ring words of the correction words the dealer sends each evaluator for n comparisons."""
    return dcf.cw_words(n, N_BITS, width(times))


def deal(r: np.ndarray, seed0: np.ndarray, seed1: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The dealer's correction words (packed) for mask r, the evaluators' seeds (n, 2), and
    (msb_mul) d's mask b: payloads (1 - 2 r63[, (1 - 2 r63) b]), offsets (r63[, r63 b])."""
    r63 = r >> TOP
    k = ONE - U64(2) * r63
    if b is None:
        beta, offset = k[:, None], r63[:, None]
    else:
        beta, offset = np.stack([k, k * b], axis=1), np.stack([r63, r63 * b], axis=1)
    return dcf.gen_packed(r & LOW, beta, seed0, seed1, N_BITS, offset)


def evaluate(party: int, seed: np.ndarray, words: np.ndarray, c: np.ndarray,
             f: np.ndarray | None = None, b_part: np.ndarray | None = None) -> np.ndarray:
    """Evaluator `party` (0 or 1): its additive share of msb(x) (f None) or of msb(x) d, from the
    opened c = x + r, f = d - b and its part of b."""
    n = c.size
    shares = dcf.evaluate_packed(party, seed.reshape(n, 2), words, c & LOW, N_BITS, width(f is not None))
    return _finish(party, c, shares, f, b_part)


def _finish(party: int, c: np.ndarray, shares: np.ndarray, f: np.ndarray | None,
            b_part: np.ndarray | None) -> np.ndarray:
    """The evaluators' linear step from the DCF shares (c.shape + (w,)) to msb or msb d shares."""
    c63 = c >> TOP
    k = ONE - U64(2) * c63
    if f is None:
        u = k * shares[..., 0]
        return u + c63 if party == 0 else u
    u = k * (f * shares[..., 0] + shares[..., 1]) + c63 * b_part
    return u + f * c63 if party == 0 else u


# ---- one key per secret element, many public offsets (msb_at, msb_at_mul) -----------------------
#
# msb(y_j) for y_j = z[idx_j] + off_j (z secret, off public) needs one mask r per element of z:
# the evaluators open c = z + r once, and c_j = c[idx_j] + off_j = y_j + r[idx_j] is a public
# function of c, so key idx_j evaluated at c_j gives msb(y_j). msb_at_mul's multiplicand
# d_j = w[idx_j] + doff_j (w = dsign z) is opened once as e = w - b, and f_j = e[idx_j] + doff_j
# plays f's part with b[idx_j]: the same evaluate, each key read at its k points (evaluate_at).

@dataclass(frozen=True)
class At:
    """Where an msb_at kernel evaluates: the base element of each output point and its offsets."""

    order: np.ndarray               # (n_a, k): the output positions of base element i, in order
    off: np.ndarray                 # (n,) the comparison's public offsets
    doff: np.ndarray | None = None  # (n,) msb_at_mul: the multiplicand's

    @classmethod
    def of(cls, base_shape: tuple[int, ...], shape: Any, offsets: Any, doffsets: Any = None) -> "At":
        shape = tuple(int(s) for s in shape)
        n_a = int(np.prod(base_shape, dtype=np.int64))
        idx = np.broadcast_to(np.arange(n_a, dtype=np.intp).reshape(base_shape), shape).reshape(-1)
        order = np.argsort(idx, kind="stable").reshape(n_a, -1)  # a broadcast repeats each alike
        flat = lambda o: np.ascontiguousarray(np.broadcast_to(np.asarray(o, dtype=U64), shape).reshape(-1))
        return cls(order, flat(offsets), None if doffsets is None else flat(doffsets))

    @property
    def n(self) -> int:
        return int(self.order.size)


def signed(x: np.ndarray, sign: Any) -> np.ndarray:
    """sign * x in the ring (sign is +1 or -1)."""
    if int(sign) not in (1, -1):
        raise ValueError(f"msb_at sign {sign!r}: must be +1 or -1")
    return np.asarray(x, dtype=U64) if int(sign) > 0 else U64(0) - np.asarray(x, dtype=U64)


def evaluate_at(party: int, seed: np.ndarray, words: np.ndarray, c: np.ndarray, at: At,
                f: np.ndarray | None = None, b_part: np.ndarray | None = None) -> np.ndarray:
    """evaluate for n_a keys (opened c = z + r, f = w - b per base element) at the points of `at`:
    a broadcast repeats every base element k = n / n_a times, so each key is read at its k points
    in one `dcf.evaluate_at_packed` call, which walks their shared top levels once."""
    n_a = c.size
    cj = c.reshape(n_a, 1) + at.off[at.order]                 # (n_a, k): key i's points
    shares = dcf.evaluate_at_packed(party, seed.reshape(n_a, 2), words, cj & LOW, N_BITS, width(f is not None))
    fj = None if f is None else f.reshape(n_a, 1) + at.doff[at.order]
    bj = None if b_part is None else b_part.reshape(n_a, 1)
    out = np.empty(at.n, dtype=U64)
    out[at.order] = _finish(party, cj, shares, fj, bj)
    return out
