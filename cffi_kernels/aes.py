"""AES-128 counter-mode keystream through the C kernel's AES-NI path, for veil.runtime.prg: one
call per draw with the key schedule computed once, instead of a cipher object per draw."""
from __future__ import annotations

from typing import Any

import numpy as np

try:
    from veil.cffi_kernels._ring import ffi as _ffi, lib as _lib
except ImportError:  # built only when a C compiler was present at install time
    _ffi = _lib = None

def _available() -> bool:
    """AES-NI usable: the kernels are built (with the AES functions: a stale build lacks them)
    and this CPU has the instructions."""
    probe = getattr(_lib, "veil_aes_available", None) if _lib is not None else None
    return probe is not None and bool(probe())


def _has_rows() -> bool:
    """The bulk keystream function is built (a stale build lacks it)."""
    return _lib is not None and hasattr(_lib, "veil_aes128_ctr_rows")


HAVE_AESNI: bool = _available()
HAVE_ROWS: bool = HAVE_AESNI and _has_rows()
ROUND_KEY_BYTES = 176  # 11 round keys of 16 bytes
MAX_BLOCKS = 1 << 32
SHARED_BLOCK_BYTES = 1 << 20  # a bulk draw up to this size is one block, its rows views of it


class AesCtr:
    """The expanded round keys of one AES-128 key, and its CTR keystream on demand."""

    def __init__(self, key: bytes):
        if not HAVE_AESNI:
            raise RuntimeError("AES-NI kernel unavailable (not built, or this CPU lacks AES-NI)")
        if len(key) != 16:
            raise ValueError("AES-128 needs a 16-byte key")
        self._rk = _ffi.new("uint8_t[]", ROUND_KEY_BYTES)
        if _lib.veil_aes128_expand(_ffi.from_buffer(bytes(key)), self._rk) != 0:
            raise RuntimeError("AES-NI key expansion failed")

    def keystream_into(self, head: bytes, nblocks: int, out: np.ndarray) -> None:
        """Write AES_k(head + j) for j < nblocks into out's first 16 * nblocks bytes.

        `head` is a 16-byte big-endian counter block whose low 32 bits are zero."""
        if len(head) != 16 or not 0 <= nblocks <= MAX_BLOCKS:
            raise ValueError("a counter block is 16 bytes and a draw at most 2^32 blocks")
        if out.nbytes < 16 * nblocks:
            raise ValueError("keystream output buffer too small")
        # from_buffer refuses non-contiguous arrays; the typed form is the cheap one (~0.6 us).
        if nblocks and _lib.veil_aes128_ctr(self._rk, head, nblocks, _ffi.from_buffer("uint8_t[]", out)) != 0:
            raise RuntimeError("AES-NI keystream failed")

    @property
    def schedule(self) -> Any:
        """The round keys (cffi memory this object owns), for a key_table."""
        return self._rk


class KeyRows:
    """The key schedules of a bulk draw's rows (row r under ciphers[r]), as the table the C
    keystream reads; it keeps the ciphers, into which the table points, alive."""

    def __init__(self, ciphers: list[AesCtr]):
        self.ciphers = list(ciphers)
        self.k = len(self.ciphers)
        self._table = _ffi.new("uint8_t *[]", [c.schedule for c in self.ciphers])

    def keystream(self, heads: bytes, n: int) -> list[np.ndarray]:
        """Row r, n fresh uint64 words: the first n words of AES_{k_r}(head_r + j), j = 0, 1, ...,
        with head_r = heads[16r:16r+16], the same words as one keystream_into per row. Small draws
        share one block (one C call); rows of a large one are arrays of their own (one C call
        each), so no row keeps the others alive and none is over glibc's 32 MB mmap threshold (a
        page fault per 4 KiB on every call)."""
        nblocks = (n + 1) // 2
        if len(heads) != 16 * self.k or not 0 <= nblocks <= MAX_BLOCKS:
            raise ValueError("one 16-byte counter block per row, and a draw of at most 2^32 blocks")
        if self.k * nblocks * 16 <= SHARED_BLOCK_BYTES:
            block = np.empty((self.k, 2 * nblocks), dtype="<u8")
            self._fill(0, self.k, heads, nblocks, block)
            return list(block[:, :n])
        rows = [np.empty(2 * nblocks, dtype="<u8") for _ in range(self.k)]
        for r, row in enumerate(rows):
            self._fill(r, 1, heads[16 * r:16 * r + 16], nblocks, row)
        return rows if n == 2 * nblocks else [row[:n] for row in rows]

    def _fill(self, first: int, k: int, heads: bytes, nblocks: int, out: np.ndarray) -> None:
        """Rows first .. first + k - 1 into out (k rows of 16 * nblocks bytes, one after the other)."""
        if not (k and nblocks):
            return
        if not HAVE_ROWS:
            rows = out.reshape(k, -1)
            for r in range(k):
                self.ciphers[first + r].keystream_into(heads[16 * r:16 * r + 16], nblocks, rows[r])
        elif _lib.veil_aes128_ctr_rows(self._table + first, heads, k, nblocks,
                                       _ffi.from_buffer("uint8_t[]", out), 16 * nblocks) != 0:
            raise RuntimeError("AES-NI keystream failed")
