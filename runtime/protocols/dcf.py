"""A distributed comparison function (DCF), vectorized over n keys: the one-round comparisons' core.

f_{alpha, beta}(x) = beta if x < alpha else 0, for n_bits-bit unsigned x and alpha and a payload
beta of w words in Z_{2^64}; Gen splits f into two keys whose evaluations at any x sum to f(x)
mod 2^64, each key alone pseudorandom. The construction is the DCF of Boyle, Chandran, Gilboa,
Gupta, Ishai, Kumar and Rathee, "Function secret sharing for mixed-mode and fixed-point secure
computation" (Eurocrypt 2021, Fig. 1), walked most significant bit first, with one extension:
`offset`, a constant added to f everywhere (folded into the first level's value correction, so a
dealt additive sharing of it costs no words of its own; see `gen`).

The PRG G expands a 128-bit seed with fixed-key AES-128 in Matyas-Meyer-Oseas form,
H(z) = AES_K(z) ^ z for a public constant K, on tweaked seeds s ^ j: side L's seed and value
blocks use the even tweaks, side R's the odd ones, so an evaluation expands only the side its input
bit takes. A seed block's low bit is the control bit t (cleared in the seed). Keys travel as ring
words: `CorrectionWords.pack` and `cw_words`.

Two paths compute the same words: cffi_kernels/dcf.c (AES-NI, VAES where present; ~60 ns per key
and level for Gen, ~25 ns for Eval) whenever the C kernels are built, and numpy here (one ECB call
per level over all n keys; ~100x slower at small n) as the fallback; tests check they agree.
`evaluate_at_packed` reads each key at k points; the C path walks a key's sorted points once per
node of their trie (nearby points share their top levels), numpy evaluates k times.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from veil.runtime.protocols.boolean import pack_bits, unpack_bits, words_for_bits

try:
    from veil.cffi_kernels._ring import ffi as _ffi, lib as _lib
except ImportError:  # built only when a C compiler was present at install time
    _ffi = _lib = None

U64 = np.uint64
ONE = U64(1)
NOT_ONE = ~U64(1)
# The public fixed key of the PRG (any constant works; it is not a secret).
FIXED_KEY = bytes.fromhex("7665696c2d6463662d6669786564214b")
CONV_TWEAK = 64            # tweaks of the final seed's conversion to group elements
MAX_NATIVE_W = 4           # payload words the C kernel supports (cffi_kernels/dcf.c)
_local = threading.local()


def _native_available(name: str = "veil_dcf_gen") -> bool:
    """The C kernel `name` is built (a stale build lacks it) and this CPU has AES-NI."""
    return _lib is not None and hasattr(_lib, name) and bool(_lib.veil_aes_available())


HAVE_NATIVE: bool = _native_available()
HAVE_NATIVE_AT: bool = HAVE_NATIVE and _native_available("veil_dcf_eval_at")


def _use_native(native: bool | None, w: int, have: bool | None = None) -> bool:
    have = HAVE_NATIVE if have is None else have
    if native is None:
        return have and w <= MAX_NATIVE_W
    if native and not (have and w <= MAX_NATIVE_W):
        raise ValueError("the C DCF kernel is not available here (or not for this payload width)")
    return native


def _ptr(a: np.ndarray):
    return _ffi.from_buffer("uint64_t[]", a)


def _encryptor():
    """This thread's ECB encryptor under the fixed key (ECB keeps no state between calls)."""
    enc = getattr(_local, "enc", None)
    if enc is None:
        enc = _local.enc = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor()
    return enc


def mmo(blocks: np.ndarray) -> np.ndarray:
    """H(z) = AES_K(z) ^ z for every 128-bit block of a (..., 2) uint64 array, in one ECB call."""
    z = np.ascontiguousarray(blocks, dtype="<u8")
    out = np.empty(z.size + 2, dtype="<u8")  # update_into wants block_size - 1 bytes of slack
    _encryptor().update_into(z.view(np.uint8).reshape(-1), out.view(np.uint8))
    res = out[:z.size].reshape(z.shape)
    res ^= z
    return res.astype(U64, copy=False)


def _blocks_per_side(w: int) -> int:
    """Blocks one side of an expansion takes: its seed and ceil(w/2) blocks of values."""
    return 1 + (w + 1) // 2


@functools.lru_cache(maxsize=8)
def _tweak_table(w: int) -> np.ndarray:
    """(2 sides, k, 2) tweaks: block j of side `side` is z ^ (2j + side) in the low word."""
    k = _blocks_per_side(w)
    tw = np.zeros((2, k, 2), dtype=U64)
    tw[:, :, 0] = U64(2) * np.arange(k, dtype=U64)[None, :] + np.arange(2, dtype=U64)[:, None]
    tw.flags.writeable = False
    return tw


def _split(out: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An expansion's (..., k, 2) blocks as (child seed (..., 2), control bit (...,), values (..., w))."""
    child = out[..., 0, :].copy()
    t = child[..., 0] & ONE
    child[..., 0] &= NOT_ONE
    v = out[..., 1:, :].reshape(out.shape[:-2] + (2 * (out.shape[-2] - 1),))[..., :w]
    return child, t, v


def expand(seeds: np.ndarray, side: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """G(s) restricted to one side per key: (child seed (n, 2), control bit (n,), values (n, w))."""
    return _split(mmo(seeds[:, None, :] ^ _tweak_table(w)[side.astype(np.intp)]), w)


def expand_both(seeds: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """G(s) on both sides, in one AES call: seeds (m, 2 sides, 2), bits (m, 2), values (m, 2, w)."""
    return _split(mmo(seeds[:, None, None, :] ^ _tweak_table(w)[None]), w)


def convert(seeds: np.ndarray, w: int) -> np.ndarray:
    """The final seeds as w group elements each (n, w): further blocks of H."""
    k = (w + 1) // 2
    tw = np.zeros((k, 2), dtype=U64)
    tw[:, 0] = U64(CONV_TWEAK) + np.arange(k, dtype=U64)
    return mmo(seeds[:, None, :] ^ tw[None]).reshape(seeds.shape[0], 2 * k)[:, :w]


def _sign(t: np.ndarray) -> np.ndarray:
    """(-1)^t in Z_{2^64} for 0/1 words, as a column for broadcasting over payload words."""
    return (ONE - U64(2) * t)[:, None]


@dataclass
class CorrectionWords:
    """The part common to both keys: per level (MSB first) s_CW, V_CW, t_CW^L and t_CW^R, then
    the final correction."""

    s: np.ndarray      # (n_bits, n, 2)
    v: np.ndarray      # (n_bits, n, w)
    t: np.ndarray      # (n_bits, 2, n) 0/1: t_CW^L, t_CW^R
    final: np.ndarray  # (n, w)

    def pack(self) -> np.ndarray:
        """One flat uint64 array: the seeds (t_CW^L in the low bit of s_CW, which a seed's control
        bit leaves free), the values, the final words, then t_CW^R packed."""
        s = self.s.copy()
        s[..., 0] |= self.t[:, 0, :]
        return np.concatenate([s.reshape(-1), self.v.reshape(-1), self.final.reshape(-1),
                               pack_bits(self.t[:, 1, :].reshape(-1))])

    @classmethod
    def unpack(cls, words: np.ndarray, n: int, n_bits: int, w: int) -> "CorrectionWords":
        """The inverse of pack, for n keys of n_bits levels and w-word payloads."""
        words = np.asarray(words, dtype=U64)
        if words.size != cw_words(n, n_bits, w):
            raise ValueError(f"DCF correction words: {words.size} words for n={n}, n_bits={n_bits}, w={w}")
        a, b, c = n_bits * n * 2, n_bits * n * w, n * w
        s = words[:a].reshape(n_bits, n, 2).copy()
        t = np.empty((n_bits, 2, n), dtype=U64)
        t[:, 0, :] = s[..., 0] & ONE
        s[..., 0] &= NOT_ONE
        t[:, 1, :] = unpack_bits(words[a + b + c:], n_bits * n).reshape(n_bits, n)
        v = words[a:a + b].reshape(n_bits, n, w)
        final = words[a + b:a + b + c].reshape(n, w)
        return cls(s, v, t, final)


def cw_words(n: int, n_bits: int, w: int) -> int:
    """Ring words of n keys' correction words: per level 2 for the 128-bit seed (carrying t_CW^L)
    and w for the value, w for the final correction, and t_CW^R packed 64 to a word."""
    return n * (n_bits * (2 + w) + w) + words_for_bits(n_bits * n)


def _check(n_bits: int, w: int) -> None:
    if not 1 <= n_bits <= 64:
        raise ValueError(f"a DCF compares 1..64-bit inputs, not {n_bits}")
    if w < 1:
        raise ValueError(f"a DCF payload has at least one word, not {w}")


def gen(alpha: np.ndarray, beta: np.ndarray, seed0: np.ndarray, seed1: np.ndarray, n_bits: int,
        offset: np.ndarray | None = None, native: bool | None = None) -> CorrectionWords:
    """The correction words for keys (seed0, CW) and (seed1, CW) of f(x) = offset + beta [x < alpha].

    alpha (n,) < 2^n_bits; beta and offset (n, w); seeds (n, 2) uniform. The offset is subtracted
    from the first level's V_CW after V_alpha has absorbed the true V_CW: party 1's control bit is
    1 at the root, so it adds -(V_CW) there on every path, and later levels, which cancel only
    V_alpha, leave the shift in place."""
    alpha = np.asarray(alpha, dtype=U64).reshape(-1)
    beta = np.asarray(beta, dtype=U64)
    n, w = beta.shape
    _check(n_bits, w)
    if _use_native(native, w):
        return CorrectionWords.unpack(_gen_native(alpha, beta, seed0, seed1, n_bits, offset), n, n_bits, w)
    s = [np.asarray(seed0, dtype=U64).reshape(n, 2), np.asarray(seed1, dtype=U64).reshape(n, 2)]
    t = [np.zeros(n, dtype=U64), np.ones(n, dtype=U64)]
    v_alpha = np.zeros((n, w), dtype=U64)
    cw = CorrectionWords(np.empty((n_bits, n, 2), U64), np.empty((n_bits, n, w), U64),
                         np.empty((n_bits, 2, n), U64), np.empty((n, w), U64))
    rows = np.arange(2 * n)
    for level in range(n_bits):
        a = (alpha >> U64(n_bits - 1 - level)) & ONE
        keep = np.concatenate([a, a]).astype(np.intp)
        lose = 1 - keep
        seeds, bits, vals = expand_both(np.concatenate(s), w)
        s_keep, s_lose = seeds[rows, keep], seeds[rows, lose]
        v_keep, v_lose = vals[rows, keep], vals[rows, lose]
        sign = _sign(t[1])
        s_cw = s_lose[:n] ^ s_lose[n:]
        v_cw = sign * (v_lose[n:] - v_lose[:n] - v_alpha + beta * a[:, None])  # Lose = L iff a = 1
        v_alpha = v_alpha - v_keep[n:] + v_keep[:n] + sign * v_cw
        t_lr = bits[:n] ^ bits[n:]                     # (n, 2): t_0^L ^ t_1^L, t_0^R ^ t_1^R
        t_lr[:, 0] ^= a ^ ONE
        t_lr[:, 1] ^= a
        t_keep_cw = t_lr[rows[:n], keep[:n]]
        t_keep = bits[rows, keep]
        for b in (0, 1):
            part = slice(b * n, (b + 1) * n)
            s[b] = s_keep[part] ^ (s_cw & (U64(0) - t[b])[:, None])
            t[b] = t_keep[part] ^ (t[b] & t_keep_cw)
        if level == 0 and offset is not None:
            v_cw = v_cw - np.asarray(offset, dtype=U64).reshape(n, w)
        cw.s[level], cw.v[level], cw.t[level] = s_cw, v_cw, t_lr.T
    cw.final[:] = _sign(t[1]) * (convert(s[1], w) - convert(s[0], w) - v_alpha)
    return cw


def evaluate(b: int, seed: np.ndarray, cw: CorrectionWords, x: np.ndarray, n_bits: int,
             native: bool | None = None) -> np.ndarray:
    """Party b's (0 or 1) share (n, w) of f(x) for its keys (seed, cw) at the n inputs x."""
    x = np.asarray(x, dtype=U64).reshape(-1)
    n, w = cw.final.shape
    _check(n_bits, w)
    if _use_native(native, w):
        return _evaluate_native(b, seed, cw.pack(), x, n_bits, w)
    s = np.asarray(seed, dtype=U64).reshape(n, 2)
    t = np.full(n, b, dtype=U64)
    acc = np.zeros((n, w), dtype=U64)
    idx = np.arange(n)
    for level in range(n_bits):
        side = (x >> U64(n_bits - 1 - level)) & ONE
        child, tc, v = expand(s, side, w)
        mask = U64(0) - t
        child ^= cw.s[level] & mask[:, None]
        tc ^= t & cw.t[level, side.astype(np.intp), idx]
        acc += v + cw.v[level] * t[:, None]
        s, t = child, tc
    acc += convert(s, w) + cw.final * t[:, None]
    return acc if b == 0 else U64(0) - acc


def _contiguous(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=U64).reshape(shape))


def _gen_native(alpha: np.ndarray, beta: np.ndarray, seed0: np.ndarray, seed1: np.ndarray, n_bits: int,
                offset: np.ndarray | None) -> np.ndarray:
    """gen through cffi_kernels/dcf.c, straight into CorrectionWords.pack's layout."""
    n, w = beta.shape
    words = np.empty(cw_words(n, n_bits, w), dtype=U64)
    if n == 0:
        return words
    off = _ffi.NULL if offset is None else _ptr(_contiguous(offset, (n, w)))
    rc = _lib.veil_dcf_gen(_ptr(_contiguous(alpha, (n,))), _ptr(_contiguous(beta, (n, w))), off,
                           _ptr(_contiguous(seed0, (n, 2))), _ptr(_contiguous(seed1, (n, 2))), n, n_bits, w,
                           _ptr(words))
    if rc != 0:
        raise RuntimeError("the C DCF kernel failed")
    return words


def _evaluate_native(b: int, seed: np.ndarray, words: np.ndarray, x: np.ndarray, n_bits: int, w: int) -> np.ndarray:
    """evaluate through cffi_kernels/dcf.c, reading the packed correction words in place."""
    n = x.size
    words = np.ascontiguousarray(words, dtype=U64)
    if words.size != cw_words(n, n_bits, w):
        raise ValueError(f"DCF correction words: {words.size} words for n={n}, n_bits={n_bits}, w={w}")
    out = np.empty((n, w), dtype=U64)
    if n == 0:
        return out
    rc = _lib.veil_dcf_eval(int(b), _ptr(_contiguous(seed, (n, 2))), _ptr(words), _ptr(_contiguous(x, (n,))), n,
                            n_bits, w, _ptr(out))
    if rc != 0:
        raise RuntimeError("the C DCF kernel failed")
    return out


def gen_packed(alpha: np.ndarray, beta: np.ndarray, seed0: np.ndarray, seed1: np.ndarray, n_bits: int,
               offset: np.ndarray | None = None, native: bool | None = None) -> np.ndarray:
    """gen(...).pack(), written directly by the C kernel where it is available."""
    beta = np.asarray(beta, dtype=U64)
    _check(n_bits, beta.shape[1])
    if _use_native(native, beta.shape[1]):
        return _gen_native(np.asarray(alpha, dtype=U64).reshape(-1), beta, seed0, seed1, n_bits, offset)
    return gen(alpha, beta, seed0, seed1, n_bits, offset, native=False).pack()


def evaluate_packed(b: int, seed: np.ndarray, words: np.ndarray, x: np.ndarray, n_bits: int, w: int,
                    native: bool | None = None) -> np.ndarray:
    """evaluate on packed correction words (no unpacking copy in the C kernel)."""
    x = np.asarray(x, dtype=U64).reshape(-1)
    _check(n_bits, w)
    if _use_native(native, w):
        return _evaluate_native(b, seed, words, x, n_bits, w)
    return evaluate(b, seed, CorrectionWords.unpack(words, x.size, n_bits, w), x, n_bits, native=False)


def evaluate_at_packed(b: int, seed: np.ndarray, words: np.ndarray, x: np.ndarray, n_bits: int, w: int,
                       native: bool | None = None) -> np.ndarray:
    """Party b's shares (n, k, w) of f at the points x (n, k), key i at row i in any order: the
    words of k `evaluate_packed` calls, with the C path sharing each key's common path prefixes."""
    x, words = np.asarray(x, dtype=U64), np.ascontiguousarray(words, dtype=U64)
    if x.ndim != 2:
        raise ValueError(f"DCF points: an (n, k) array, not shape {x.shape}")
    n, k = x.shape
    _check(n_bits, w)
    if words.size != cw_words(n, n_bits, w):
        raise ValueError(f"DCF correction words: {words.size} words for n={n}, n_bits={n_bits}, w={w}")
    out = np.empty((n, k, w), dtype=U64)
    if n == 0 or k == 0:
        return out
    if not _use_native(native, w, HAVE_NATIVE_AT):
        cw = CorrectionWords.unpack(words, n, n_bits, w)
        for j in range(k):
            out[:, j] = evaluate(b, seed, cw, x[:, j], n_bits, native=False)
        return out
    rc = _lib.veil_dcf_eval_at(int(b), _ptr(_contiguous(seed, (n, 2))), _ptr(words),
                               _ptr(np.ascontiguousarray(x)), n, k, n_bits, w, _ptr(out))
    if rc != 0:
        raise RuntimeError("the C DCF kernel failed")
    return out
