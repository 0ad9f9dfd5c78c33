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

/* C = A @ B mod 2^64 for row-major A (m x k), B (k x n), C (m x n); returns 0, or -1 when out of
 * memory (C is then unspecified). */
int ring_matmul(const uint64_t *a, const uint64_t *b, uint64_t *c, size_t m, size_t k, size_t n)
{
    if (m == 0 || n == 0)
        return 0;
    if (n < RING_DOT_N && k > 0)
        return ring_matmul_dot(a, b, c, m, k, n);
    memset(c, 0, m * n * sizeof(uint64_t));
    for (size_t j0 = 0; j0 < n; j0 += RING_NB) {
        const size_t nb = n - j0 < RING_NB ? n - j0 : RING_NB;
        for (size_t p0 = 0; p0 < k; p0 += RING_KB) {
            const size_t kb = k - p0 < RING_KB ? k - p0 : RING_KB;
            for (size_t i0 = 0; i0 < m; i0 += RING_MR) {
                const size_t mr = m - i0 < RING_MR ? m - i0 : RING_MR;
                ring_tile(a + i0 * k + p0, k, b + p0 * n + j0, n, c + i0 * n + j0, n, mr, kb, nb);
            }
        }
    }
    return 0;
}
