/* Ring kernels over Z_2^64: unsigned 64-bit arithmetic wraps modulo 2^64, which is exactly the
 * ring, so no reduction step is ever needed.  numpy's integer matmul does not use BLAS and is a
 * naive triple loop; these kernels are register- and cache-blocked so the compiler's
 * auto-vectoriser can do the work.  Only portable compiler flags are used; on x86-64 with GCC or
 * clang the hot loops are additionally cloned for AVX2 and picked at load time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#  define restrict __restrict
#endif

#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute) && !defined(__APPLE__)
#  if __has_attribute(target_clones)
#    define RING_CLONES __attribute__((target_clones("avx2", "default")))
#  endif
#endif
#ifndef RING_CLONES
#  define RING_CLONES
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__APPLE__)
#  include <immintrin.h>
#  define RING_AVX2 1
#endif

#define RING_MR 4      /* rows of C updated together: each loaded row of B is used RING_MR times */
#define RING_NB 256    /* columns of C per tile: RING_MR x RING_NB accumulators (8 KiB) stay in L1 */
#define RING_KB 128    /* depth per tile: a RING_KB x RING_NB panel of B (256 KiB) stays in L2 */
#define RING_DOT_N 8   /* below this many output columns the dot-product form is used */

/* c_r[0:nb] += a_r * bp[0:nb] for four distinct rows r of C (restrict lets it vectorise). */
static inline void ring_row4(uint64_t *restrict c0, uint64_t *restrict c1, uint64_t *restrict c2,
                             uint64_t *restrict c3, const uint64_t *restrict bp, uint64_t a0,
                             uint64_t a1, uint64_t a2, uint64_t a3, size_t nb)
{
    for (size_t j = 0; j < nb; j++) {
        const uint64_t bj = bp[j];
        c0[j] += a0 * bj;
        c1[j] += a1 * bj;
        c2[j] += a2 * bj;
        c3[j] += a3 * bj;
    }
}

/* C[0:mr, 0:nb] += A[0:mr, 0:kb] @ B[0:kb, 0:nb] for one tile (mr <= RING_MR). */
RING_CLONES
static void ring_tile(const uint64_t *a, size_t lda, const uint64_t *b, size_t ldb,
                      uint64_t *c, size_t ldc, size_t mr, size_t kb, size_t nb)
{
    if (mr == RING_MR) {
        for (size_t p = 0; p < kb; p++)
            ring_row4(c, c + ldc, c + 2 * ldc, c + 3 * ldc, b + p * ldb, a[p], a[lda + p],
                      a[2 * lda + p], a[3 * lda + p], nb);
        return;
    }
    for (size_t i = 0; i < mr; i++) {
        uint64_t *ci = c + i * ldc;
        for (size_t p = 0; p < kb; p++) {
            const uint64_t *bp = b + p * ldb;
            const uint64_t ai = a[i * lda + p];
            for (size_t j = 0; j < nb; j++)
                ci[j] += ai * bp[j];
        }
    }
}

#ifdef RING_AVX2
/* AVX2 has no 64-bit multiply, so a*b mod 2^64 is split as lo(a)lo(b) + 2^32 (hi(a)lo(b) + lo(a)hi(b)):
 * the first term is one widening 32x32->64 multiply per lane (vpmuludq); the cross terms matter only
 * modulo 2^32, so both come from ONE 8-lane 32-bit multiply (vpmulld) of a by b with its halves
 * swapped, and are summed over k in 32-bit lanes that wrap harmlessly.  Two multiplies per four
 * products instead of three, no shifts in the inner loop, and a 4x4 tile of C held in registers. */
#define RING_TM 4           /* rows of the register tile */
#define RING_TK 256         /* depth per pass: the k x 4 panel of B (8 KiB) stays in L1 */

__attribute__((target("avx2")))
static inline __m256i ring_fold(__m256i lo, __m256i cross)
{
    /* lo + 2^32 (cross_even + cross_odd): the pair's 32-bit sum is the low half of a 64-bit add. */
    const __m256i pair = _mm256_add_epi64(cross, _mm256_srli_epi64(cross, 32));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(pair, 32));
}

/* C[0:4, 0:4] += A[0:4, 0:kb] @ B[0:kb, 0:4] with the tile in registers. */
__attribute__((target("avx2")))
static void ring_avx2_tile(const uint64_t *a, size_t lda, const uint64_t *b, size_t ldb,
                           uint64_t *c, size_t ldc, size_t kb)
{
    __m256i lo0 = _mm256_setzero_si256(), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m256i x0 = lo0, x1 = lo0, x2 = lo0, x3 = lo0;
    const uint64_t *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    for (size_t p = 0; p < kb; p++) {
        const __m256i vb = _mm256_loadu_si256((const __m256i *)(b + p * ldb));
        const __m256i vs = _mm256_shuffle_epi32(vb, 0xB1); /* b with its 32-bit halves swapped */
        __m256i va = _mm256_set1_epi64x((long long)a0[p]);
        lo0 = _mm256_add_epi64(lo0, _mm256_mul_epu32(va, vb));
        x0 = _mm256_add_epi32(x0, _mm256_mullo_epi32(va, vs));
        va = _mm256_set1_epi64x((long long)a1[p]);
        lo1 = _mm256_add_epi64(lo1, _mm256_mul_epu32(va, vb));
        x1 = _mm256_add_epi32(x1, _mm256_mullo_epi32(va, vs));
        va = _mm256_set1_epi64x((long long)a2[p]);
        lo2 = _mm256_add_epi64(lo2, _mm256_mul_epu32(va, vb));
        x2 = _mm256_add_epi32(x2, _mm256_mullo_epi32(va, vs));
        va = _mm256_set1_epi64x((long long)a3[p]);
        lo3 = _mm256_add_epi64(lo3, _mm256_mul_epu32(va, vb));
        x3 = _mm256_add_epi32(x3, _mm256_mullo_epi32(va, vs));
    }
    __m256i *c0 = (__m256i *)c, *c1 = (__m256i *)(c + ldc), *c2 = (__m256i *)(c + 2 * ldc),
            *c3 = (__m256i *)(c + 3 * ldc);
    _mm256_storeu_si256(c0, _mm256_add_epi64(_mm256_loadu_si256(c0), ring_fold(lo0, x0)));
    _mm256_storeu_si256(c1, _mm256_add_epi64(_mm256_loadu_si256(c1), ring_fold(lo1, x1)));
    _mm256_storeu_si256(c2, _mm256_add_epi64(_mm256_loadu_si256(c2), ring_fold(lo2, x2)));
    _mm256_storeu_si256(c3, _mm256_add_epi64(_mm256_loadu_si256(c3), ring_fold(lo3, x3)));
}

/* C = A @ B on the rows [0, m4) and columns [0, n4) (multiples of 4); the edges go to the portable
 * path.  Each k x 4 panel of B is first copied contiguously: read in place its rows are n words
 * apart, and a stride that is a multiple of 4 KiB maps them onto a handful of L1 sets. */
__attribute__((target("avx2")))
static void ring_avx2_body(const uint64_t *a, const uint64_t *b, uint64_t *c,
                           size_t m4, size_t k, size_t n, size_t n4)
{
    uint64_t panel[RING_TK * 4];
    for (size_t p0 = 0; p0 < k; p0 += RING_TK) {
        const size_t kb = k - p0 < RING_TK ? k - p0 : RING_TK;
        for (size_t j0 = 0; j0 < n4; j0 += 4) {
            for (size_t p = 0; p < kb; p++)
                memcpy(panel + 4 * p, b + (p0 + p) * n + j0, 4 * sizeof(uint64_t));
            for (size_t i0 = 0; i0 < m4; i0 += RING_TM)
                ring_avx2_tile(a + i0 * k + p0, k, panel, 4, c + i0 * n + j0, n, kb);
        }
    }
}
#endif

/* sum_p x[p] * y[p] mod 2^64; the wrapping sum is associative, so it vectorises freely. */
RING_CLONES
static uint64_t ring_dot(const uint64_t *x, const uint64_t *y, size_t k)
{
    uint64_t s = 0;
    for (size_t p = 0; p < k; p++)
        s += x[p] * y[p];
    return s;
}

/* Narrow outputs (matrix-vector shapes): C[i, j] = dot(A[i, :], B[:, j]) with B transposed once. */
static int ring_matmul_dot(const uint64_t *a, const uint64_t *b, uint64_t *c,
                           size_t m, size_t k, size_t n)
{
    const uint64_t *bt = b;
    uint64_t *buf = NULL;
    if (n > 1) {
        buf = (uint64_t *)malloc(n * k * sizeof(uint64_t));
        if (buf == NULL)
            return -1;
        for (size_t p = 0; p < k; p++)
            for (size_t j = 0; j < n; j++)
                buf[j * k + p] = b[p * n + j];
        bt = buf;
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            c[i * n + j] = ring_dot(a + i * k, bt + j * k, k);
    free(buf);
    return 0;
}

/* C[i, j] += A[i, :] @ B[:, j] for rows [i0, m) x columns [j0, j1), by the portable tiles. */
static void ring_region(const uint64_t *a, const uint64_t *b, uint64_t *c, size_t m, size_t k,
                        size_t n, size_t i0, size_t j0, size_t j1)
{
    for (size_t jb = j0; jb < j1; jb += RING_NB) {
        const size_t nb = j1 - jb < RING_NB ? j1 - jb : RING_NB;
        for (size_t p0 = 0; p0 < k; p0 += RING_KB) {
            const size_t kb = k - p0 < RING_KB ? k - p0 : RING_KB;
            for (size_t i = i0; i < m; i += RING_MR) {
                const size_t mr = m - i < RING_MR ? m - i : RING_MR;
                ring_tile(a + i * k + p0, k, b + p0 * n + jb, n, c + i * n + jb, n, mr, kb, nb);
            }
        }
    }
}

/* C = A @ B mod 2^64 for row-major A (m x k), B (k x n), C (m x n); returns 0, or -1 when out of
 * memory (C is then unspecified). */
int ring_matmul(const uint64_t *a, const uint64_t *b, uint64_t *c, size_t m, size_t k, size_t n)
{
    if (m == 0 || n == 0)
        return 0;
    if (n < RING_DOT_N && k > 0)
        return ring_matmul_dot(a, b, c, m, k, n);
    memset(c, 0, m * n * sizeof(uint64_t));
#ifdef RING_AVX2
    if (__builtin_cpu_supports("avx2")) {
        const size_t m4 = m - m % RING_TM, n4 = n - n % 4;
        ring_avx2_body(a, b, c, m4, k, n, n4);
        ring_region(a, b, c, m, k, n, 0, n4, n);      /* the right edge, all rows */
        ring_region(a, b, c, m, k, n, m4, 0, n4);     /* the bottom edge, left of it */
        return 0;
    }
#endif
    ring_region(a, b, c, m, k, n, 0, 0, n);
    return 0;
}
