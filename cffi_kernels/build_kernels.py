"""cffi build script for the ring kernels (API mode, out of line); setup.py imports `ffibuilder`."""
from __future__ import annotations

import sys
from pathlib import Path

import cffi

_HERE = Path(__file__).resolve().parent

CDEF = """
int ring_matmul(const uint64_t *a, const uint64_t *b, uint64_t *c, size_t m, size_t k, size_t n);
int veil_aes_available(void);
int veil_aes128_expand(const uint8_t *key, uint8_t *round_keys);
int veil_aes128_ctr(const uint8_t *round_keys, const uint8_t *head, uint64_t nblocks, uint8_t *out);
"""


def _compile_args() -> list[str]:
    """Optimise hard but portably: the wheel must run on any CPU of its platform (no -march)."""
    if sys.platform == "win32":
        return ["/O2"]
    return ["-O3", "-std=c99", "-fno-strict-aliasing"]


ffibuilder = cffi.FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "veil.cffi_kernels._ring",
    "\n".join((_HERE / name).read_text(encoding="utf-8") for name in ("ring.c", "aes.c")),
    extra_compile_args=_compile_args(),
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(_HERE.parent / "build"), verbose=True)
