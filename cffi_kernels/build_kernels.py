"""cffi build script for the ring kernels (API mode, out of line); setup.py imports `ffibuilder`."""
from __future__ import annotations

import sys
from pathlib import Path

import cffi

_HERE = Path(__file__).resolve().parent

CDEF = """
int ring_matmul(const uint64_t *a, const uint64_t *b, uint64_t *c, size_t m, size_t k, size_t n);
int ring_matmul2(const uint64_t *a1, const uint64_t *b1, const uint64_t *b1x, const uint64_t *a2,
                 const uint64_t *b2, const uint64_t *b2x, const int64_t *strides, uint64_t *c,
                 size_t m, size_t k, size_t n);
int ring_avx2(int on);
int veil_aes_available(void);
int veil_aes128_expand(const uint8_t *key, uint8_t *round_keys);
int veil_aes128_ctr(const uint8_t *round_keys, const uint8_t *head, uint64_t nblocks, uint8_t *out);
int veil_aes128_ctr_rows(const uint8_t *const *round_keys, const uint8_t *heads, uint64_t k, uint64_t nblocks,
                         uint8_t *out, uint64_t stride);
int veil_trunc_abi(void);
void veil_rep3_open_mask(const uint64_t *xa, const uint64_t *xb, const uint64_t *ya, const uint64_t *yb,
                         const uint64_t *z0, const uint64_t *r, uint64_t *out, size_t n);
void veil_rep3_trunc_deal(const uint64_t *ra, const uint64_t *rb, const uint64_t *rc, const uint64_t *r63a,
                          const uint64_t *rla, unsigned m, uint64_t *e, void *f, unsigned fbytes, size_t n);
void veil_rep3_trunc_p0(const uint64_t *s, const uint64_t *g1, const uint64_t *g2, const uint64_t *r63a,
                        const uint64_t *rla, const uint64_t *t, unsigned m, uint64_t *out, size_t n);
void veil_rep3_trunc_p1(const uint64_t *s, const uint64_t *g0, const uint64_t *z2, const uint64_t *e,
                        const void *f, unsigned fbytes, const uint64_t *q, unsigned m, uint64_t *out, size_t n);
int veil_dcf_gen(const uint64_t *alpha, const uint64_t *beta, const uint64_t *offset, const uint64_t *seed0,
                 const uint64_t *seed1, size_t n, unsigned n_bits, unsigned w, uint64_t *words);
int veil_dcf_eval(int b, const uint64_t *seed, const uint64_t *words, const uint64_t *x, size_t n, unsigned n_bits,
                  unsigned w, uint64_t *out);
int veil_dcf_eval_at(int b, const uint64_t *seed, const uint64_t *words, const uint64_t *x, size_t n, size_t k,
                     unsigned n_bits, unsigned w, uint64_t *out);
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
    "\n".join((_HERE / name).read_text(encoding="utf-8") for name in ("ring.c", "aes.c", "trunc.c", "dcf.c")),
    extra_compile_args=_compile_args(),
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(_HERE.parent / "build"), verbose=True)
