"""Cryptographic randomness for the protocols: AES-128-CTR streams under keys agreed per session.

Every party holds one 16-byte key per peer (the same key at both ends of the pair) and one private
key (under ``None``). A draw is addressed by (key, op, stream): the initial counter block is
``instr_id (32 bits) | instance (48 bits) | stream (16 bits) | block counter (32 bits)``, big
endian, so each (op, stream) is an independent keystream and both holders of a pairwise key get
the same words for the same address.

A draw's words are AES_key(counter block j) for j = 0, 1, ...: exactly AES-CTR's keystream, and the
same bytes whichever path computes them. Making a `cryptography` CTR cipher object costs ~10 us,
more than a small draw itself, so where the C kernels are built and the CPU has AES-NI, each key is
expanded once and a draw is one C call (`veil.cffi_kernels.aes`). Otherwise small draws encrypt
their counter blocks with one long-lived ECB encryptor per key (CTR is ECB on the counter blocks),
written into a reused scratch buffer, and large draws use CTR over a cached zero input.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from veil.cffi_kernels import aes as _aes
from veil.runtime.diagnostics import NetworkError
from veil.runtime.protocols.base import PRGSource

KEY_BYTES = 16
MAX_INSTR = 1 << 32
MAX_INSTANCE = 1 << 48
MAX_STREAM = 1 << 16
MAX_WORDS = (1 << 32) * 2  # 2^32 AES blocks of two uint64 words each: the block counter's range
_LE_U64 = np.dtype("<u8")
# Draws of at most this many AES blocks go through the ECB path (2 uint64 words per block).
SMALL_BLOCKS = 256
# CTR's all-zero plaintext is cached up to this many bytes; larger draws make a temporary one.
ZEROS_CACHE_BYTES = 1 << 26
_BLOCK_COUNTERS = np.arange(SMALL_BLOCKS, dtype=">u4").view(np.uint8).reshape(SMALL_BLOCKS, 4)


def counter_block(op: tuple[int, int], stream: int) -> bytes:
    """The initial CTR block for one (op, stream) address, with the block counter at 0."""
    return _block_int(op, stream).to_bytes(16, "big")


def _block_int(op: tuple[int, int], stream: int) -> int:
    """counter_block as an int, its address checked."""
    instr_id, instance = op
    if not 0 <= instr_id < MAX_INSTR:
        raise ValueError(f"instruction id {instr_id} outside [0, 2^32)")
    if not 0 <= instance < MAX_INSTANCE:
        raise ValueError(f"instance {instance} outside [0, 2^48)")
    if not 0 <= stream < MAX_STREAM:
        raise ValueError(f"stream {stream} outside [0, 2^16)")
    return (instr_id << 96) | (instance << 48) | (stream << 32)


@dataclass(frozen=True)
class _RowPlan:
    """Checked rows of a bulk draw: (peer, stream) each, the two ints that turn an address into
    their counter blocks, and (with AES-NI) the rows' key schedules."""

    rows: tuple[tuple[str | None, int], ...]
    spread: int
    offsets: int
    keys: _aes.KeyRows | None


class PRG(PRGSource):
    """AES-128-CTR keystreams, one key per peer (shared with it) and one private key (None)."""

    def __init__(self, keys: dict[str | None, bytes], native: bool | None = None):
        """`native`: use the AES-NI kernel (default: where available; False forces `cryptography`)."""
        if native is None:
            native = _aes.HAVE_AESNI
        elif native and not _aes.HAVE_AESNI:
            raise ValueError("the AES-NI kernel is not available here")
        self._ciphers: dict[str | None, algorithms.AES] = {}
        self._ecb: dict[str | None, Any] = {}
        self._native: dict[str | None, _aes.AesCtr] = {}
        for peer, key in keys.items():
            if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
                raise ValueError(f"the key for {peer!r} must be {KEY_BYTES} bytes")
            self._ciphers[peer] = algorithms.AES(bytes(key))
            self._ecb[peer] = Cipher(self._ciphers[peer], modes.ECB()).encryptor()
            if native:
                self._native[peer] = _aes.AesCtr(bytes(key))
        # Counter blocks for small draws: bytes 12..15 hold j (big endian), 0..11 the address.
        self._blocks = np.zeros((SMALL_BLOCKS, 16), dtype=np.uint8)
        self._blocks[:, 12:] = _BLOCK_COUNTERS
        self._zeros = np.zeros(0, dtype=np.uint8)  # CTR's plaintext, grown on demand, never written
        self._plans: dict[tuple, _RowPlan] = {}  # draw_many's and draw_rows' checked rows

    @property
    def peers(self) -> set[str | None]:
        """Whom I share a key with (None: the private key)."""
        return set(self._ciphers)

    def draw(self, peer: str | None, op: tuple[int, int], stream: int, shape: tuple[int, ...]) -> np.ndarray:
        """uint64 words of the keystream at (peer's key, op, stream), shaped `shape`."""
        if peer not in self._ciphers:
            raise ValueError(f"no randomness key shared with {peer!r}")
        if len(shape) == 1:  # the kernels' usual flat draw: no generator, no prod
            n = int(shape[0])
            shape = (n,)
        else:
            shape = tuple(int(d) for d in shape)
            n = math.prod(shape)
        if n < 0 or n > MAX_WORDS:
            raise ValueError(f"cannot draw {n} words from one stream")
        block = counter_block(op, stream)
        nblocks = (n + 1) // 2
        out = np.empty(2 * nblocks + 2, dtype=_LE_U64)  # update_into wants block_size - 1 bytes of slack
        if nblocks == 0:
            pass
        elif self._native:
            self._native[peer].keystream_into(block, nblocks, out)
            return out[:n] if len(shape) == 1 else out[:n].reshape(shape)
        elif nblocks <= SMALL_BLOCKS:
            self._ecb_blocks(peer, block, nblocks, out)
        else:
            self._ctr_blocks(peer, block, nblocks, out)
        return out[:n].reshape(shape)

    def draw_many(self, peer: str | None, op: tuple[int, int], streams: tuple[int, ...], n: int) -> list[np.ndarray]:
        """Row r is exactly draw(peer, op, streams[r], (n,)); with AES-NI, in one call."""
        key = (peer, streams if isinstance(streams, tuple) else tuple(streams))
        return self._draw_planned(self._plan(key, lambda: tuple((peer, s) for s in key[1])), op, n)

    def draw_rows(self, op: tuple[int, int], rows: tuple[tuple[str | None, int], ...], n: int) -> list[np.ndarray]:
        """Row r is exactly draw(*rows[r], op, (n,)) for rows of (peer, stream), under several keys;
        with AES-NI, in one call (aes.KeyRows.keystream)."""
        key = rows if isinstance(rows, tuple) else tuple(tuple(r) for r in rows)
        return self._draw_planned(self._plan(key, lambda: key), op, n)

    def _draw_planned(self, plan: "_RowPlan", op: tuple[int, int], n: int) -> list[np.ndarray]:
        """The rows of a checked plan at one address."""
        if not self._native or not plan.rows or n <= 0:
            return super().draw_rows(op, plan.rows, n)
        if n > MAX_WORDS:
            raise ValueError(f"cannot draw {n} words from one stream")
        # Every row's counter block is _block_int(op, 0) | stream << 32 (disjoint bits, so a sum):
        # all of them at once are one int's bytes, the address repeated by `spread` plus `offsets`.
        heads = (_block_int(op, 0) * plan.spread + plan.offsets).to_bytes(16 * len(plan.rows), "big")
        return plan.keys.keystream(heads, n)

    def _plan(self, key: tuple, rows_of: Any) -> "_RowPlan":
        """The checked rows for `key` with what turns an address into their counter blocks; kernels
        pass the same few constant keys every trip, so each is checked once and remembered."""
        known = self._plans.get(key)
        if known is not None:
            return known
        rows = tuple((peer, int(s)) for peer, s in rows_of())
        if len(set(rows)) != len(rows):
            raise ValueError(f"rows {rows} repeat: two rows would be the same words")
        for peer, s in rows:
            if peer not in self._ciphers:
                raise ValueError(f"no randomness key shared with {peer!r}")
            if not 0 <= s < MAX_STREAM:
                raise ValueError(f"stream {s} outside [0, 2^16)")
        last = len(rows) - 1
        spread = sum(1 << (128 * (last - r)) for r in range(len(rows)))
        offsets = sum((s << 32) << (128 * (last - r)) for r, (_, s) in enumerate(rows))
        keys = _aes.KeyRows([self._native[peer] for peer, _ in rows]) if self._native else None
        known = _RowPlan(rows, spread, offsets, keys)
        if len(self._plans) < 1024:  # bounded: callers pass constants, but never grow without end
            self._plans[key] = known
        return known

    def _ecb_blocks(self, peer: str | None, block: bytes, nblocks: int, out: np.ndarray) -> None:
        """AES of counter blocks 0..nblocks-1 of `block`, one ECB call on the scratch buffer."""
        blocks = self._blocks[:nblocks]
        blocks[:, :12] = np.frombuffer(block, dtype=np.uint8, count=12)
        self._ecb[peer].update_into(blocks.reshape(-1), out.view(np.uint8))

    def _ctr_blocks(self, peer: str | None, block: bytes, nblocks: int, out: np.ndarray) -> None:
        """The CTR keystream from `block` (a fresh cipher object: cheap next to a large draw)."""
        size = 16 * nblocks
        if size > ZEROS_CACHE_BYTES:
            zeros = np.zeros(size, dtype=np.uint8)
        else:
            if self._zeros.size < size:
                self._zeros = np.zeros(size, dtype=np.uint8)
                self._zeros.flags.writeable = False
            zeros = self._zeros[:size]
        enc = Cipher(self._ciphers[peer], modes.CTR(block)).encryptor()
        enc.update_into(zeros, out.view(np.uint8))


READY = np.zeros(0, np.uint8)  # the ready message: the receiver of a pair's key says it is here


async def agree_keys(me: str, peers: list[str], mesh: Any) -> PRG:
    """One fresh key per pair (made by the party whose name sorts first) plus a private key. Every
    party hears from every peer (the key, or an empty ready message from the party that receives
    the key), so the exchange is also a start barrier: no VM starts before all parties are
    connected, and a party that connected first does not count the others' start-up as its run."""
    others = sorted(p for p in set(peers) if p != me)
    keys: dict[str | None, bytes] = {None: secrets.token_bytes(KEY_BYTES)}
    for peer in others:  # send before waiting, so no pair waits on another
        if me < peer:
            keys[peer] = secrets.token_bytes(KEY_BYTES)
            await mesh.send(peer, [np.frombuffer(keys[peer], np.uint8)])
        else:
            await mesh.send(peer, [READY])
    for peer in others:
        if me > peer:
            keys[peer] = _received(peer, await mesh.recv(peer), KEY_BYTES, "randomness key")
        else:
            _received(peer, await mesh.recv(peer), 0, "ready message")
    return PRG(keys)


def _received(peer: str, arrays: list[np.ndarray], nbytes: int, what: str) -> bytes:
    """The bytes of a peer's setup message (a key, or the empty ready message), checked for size,
    so a confused peer fails loudly."""
    if len(arrays) != 1 or np.asarray(arrays[0]).nbytes != nbytes:
        raise NetworkError(f"party {peer!r} sent a malformed {what} during setup")
    return np.ascontiguousarray(arrays[0]).view(np.uint8).tobytes()
