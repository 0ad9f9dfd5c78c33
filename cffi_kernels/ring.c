/* Ring kernels over Z_2^64: unsigned 64-bit arithmetic wraps modulo 2^64, which is exactly the
 * ring, so no reduction step is ever needed.  numpy's integer matmul does not use BLAS and is a
 * naive triple loop; these kernels are register- and cache-blocked so the compiler's
 * auto-vectoriser can do the work.  Only portable compiler flags are used; on x86-64 with GCC or
 * clang the hot loops are additionally cloned for AVX2 and picked at load time. */
#include <stddef.h>
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

/* C[0:mr, 0:nb] += A[0:mr, 0:kb] @ B[0:kb, 0:nb] for one tile (mr <= RING_MR); A[i, p] is
 * a[i * ars + p * acs] (a transposed or sliced view read in place), B's rows are contiguous. */
RING_CLONES
static void ring_tile(const uint64_t *a, ptrdiff_t ars, ptrdiff_t acs, const uint64_t *b, size_t ldb,
                      uint64_t *c, size_t ldc, size_t mr, size_t kb, size_t nb)
{
    if (mr == RING_MR) {
        for (size_t p = 0; p < kb; p++) {
            const uint64_t *ap = a + (ptrdiff_t)p * acs;
            ring_row4(c, c + ldc, c + 2 * ldc, c + 3 * ldc, b + p * ldb, ap[0], ap[ars], ap[2 * ars],
                      ap[3 * ars], nb);
        }
        return;
    }
    for (size_t i = 0; i < mr; i++) {
        uint64_t *ci = c + i * ldc;
        for (size_t p = 0; p < kb; p++) {
            const uint64_t *bp = b + p * ldb;
            const uint64_t ai = a[(ptrdiff_t)i * ars + (ptrdiff_t)p * acs];
            for (size_t j = 0; j < nb; j++)
                ci[j] += ai * bp[j];
        }
    }
}

/* A matrix operand read in place: element [i, j] is p[i * rs + j * cs] (strides in words, any
 * sign), so transposed views and slices need no contiguous copy. */
typedef struct {
    const uint64_t *p;
    ptrdiff_t rs, cs;
} ring_view;

/* The address of element [i, j] of a view. */
static inline const uint64_t *ring_at(const ring_view *v, size_t i, size_t j)
{
    return v->p + (ptrdiff_t)i * v->rs + (ptrdiff_t)j * v->cs;
}

#ifdef RING_AVX2
/* AVX2 has no 64-bit multiply, so a*b mod 2^64 is split as lo(a)lo(b) + 2^32 (hi(a)lo(b) + lo(a)hi(b)):
 * the first term is one widening 32x32->64 multiply per lane (vpmuludq); the cross terms matter only
 * modulo 2^32, so both come from ONE 8-lane 32-bit multiply (vpmulld) of a by b with its halves
 * swapped, and are summed over k in 32-bit lanes that wrap harmlessly.  Two multiplies per four
 * products (the multiplier ports are the bottleneck: three vpmuludq instead measure 1.5x slower),
 * no shifts in the inner loop, and a 4x4 tile of C held in registers. */
#define RING_TM 4           /* rows of the register tile */
#ifndef RING_TK
#define RING_TK 256         /* depth per pass: a k x 4 panel of B (8 KiB per term) stays in L1 */
#endif

__attribute__((target("avx2")))
static inline __m256i ring_fold(__m256i lo, __m256i cross)
{
    /* lo + 2^32 (cross_even + cross_odd): the pair's 32-bit sum is the low half of a 64-bit add. */
    const __m256i pair = _mm256_add_epi64(cross, _mm256_srli_epi64(cross, 32));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(pair, 32));
}

/* panel[4p + j] = B[p0 + p, j0 + j] (+ BX[...]) for p < kb, j < 4, zero past column n: copied
 * contiguously because B's rows, n words apart, map onto a handful of L1 sets when read in place,
 * and the sum B + BX (rep3's y_i + y_{i+1}) is formed here instead of in a pass of its own.  Views
 * with contiguous rows are read four words at a time; others (a transposed B) word by word. */
__attribute__((target("avx2")))
static void ring_pack(const ring_view *b, const ring_view *bx, size_t n, size_t p0, size_t kb,
                      size_t j0, uint64_t *restrict panel)
{
    const size_t w = n - j0 < 4 ? n - j0 : 4;
    if (w == 4 && b->cs == 1 && (bx == NULL || bx->cs == 1)) {
        for (size_t p = 0; p < kb; p++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)ring_at(b, p0 + p, j0));
            if (bx != NULL)
                v = _mm256_add_epi64(v, _mm256_loadu_si256((const __m256i *)ring_at(bx, p0 + p, j0)));
            _mm256_store_si256((__m256i *)(panel + 4 * p), v);
        }
        return;
    }
    for (size_t j = 0; j < 4; j++) {
        if (j >= w) {
            for (size_t p = 0; p < kb; p++)
                panel[4 * p + j] = 0;
            continue;
        }
        const uint64_t *bj = ring_at(b, p0, j0 + j);
        if (bx == NULL) {
            for (size_t p = 0; p < kb; p++)
                panel[4 * p + j] = bj[(ptrdiff_t)p * b->rs];
            continue;
        }
        const uint64_t *xj = ring_at(bx, p0, j0 + j);
        for (size_t p = 0; p < kb; p++)
            panel[4 * p + j] = bj[(ptrdiff_t)p * b->rs] + xj[(ptrdiff_t)p * bx->rs];
    }
}

#define RING_ROW(r, at)                                                      \
    va = _mm256_set1_epi64x((long long)row##r[at]);                          \
    lo##r = _mm256_add_epi64(lo##r, _mm256_mul_epu32(va, vb));               \
    x##r = _mm256_add_epi32(x##r, _mm256_mullo_epi32(va, vs));

/* The running 4x4 tile sums lo*, x* over p < kb of the rows row0..row3 against a packed panel;
 * A[r, p] is row_r[at], at = p for contiguous rows, else q = p * cs (kept apart so that the
 * contiguous loop stays the one-index loop it was). */
#define RING_TILE_PASS(panel, kb, at, cs)                                    \
    for (ptrdiff_t p = 0, q = 0; p < (ptrdiff_t)(kb); p++, q += (cs)) {      \
        const __m256i vb = _mm256_load_si256((const __m256i *)((panel) + 4 * p)); \
        const __m256i vs = _mm256_shuffle_epi32(vb, 0xB1); /* halves swapped */   \
        __m256i va;                                                          \
        RING_ROW(0, at) RING_ROW(1, at) RING_ROW(2, at) RING_ROW(3, at)      \
    }

/* C[0:rows, 0:cols] += U[0:rows, 0:kb] @ panel1 (+ V[0:rows, 0:kb] @ panel2): both products
 * accumulate in the same registers, so C is read and written once.  U and V start at the tile's
 * corner with their own strides; C[i, j] is c[i * ldc + j * cstep] (cstep > 1: C^T is computed).
 * A tile past the bottom edge repeats its last row (its lanes are dropped); past the right edge
 * the panels hold zeros. */
__attribute__((target("avx2")))
static void ring_avx2_tile(const uint64_t *u, ptrdiff_t urs, ptrdiff_t ucs, const uint64_t *v,
                           ptrdiff_t vrs, ptrdiff_t vcs, const uint64_t *pan1, const uint64_t *pan2,
                           size_t kb, uint64_t *c, size_t ldc, size_t cstep, size_t rows, size_t cols)
{
    __m256i lo0 = _mm256_setzero_si256(), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m256i x0 = lo0, x1 = lo0, x2 = lo0, x3 = lo0;
    const ptrdiff_t r1 = rows > 1 ? 1 : 0, r2 = rows > 2 ? 2 : r1, r3 = rows > 3 ? 3 : r2;
    const uint64_t *row0 = u, *row1 = u + r1 * urs, *row2 = u + r2 * urs, *row3 = u + r3 * urs;
    if (ucs == 1) {
        RING_TILE_PASS(pan1, kb, p, 0)
    } else {
        RING_TILE_PASS(pan1, kb, q, ucs)
    }
    if (v != NULL) {
        row0 = v, row1 = v + r1 * vrs, row2 = v + r2 * vrs, row3 = v + r3 * vrs;
        if (vcs == 1) {
            RING_TILE_PASS(pan2, kb, p, 0)
        } else {
            RING_TILE_PASS(pan2, kb, q, vcs)
        }
    }
    const __m256i r[4] = {ring_fold(lo0, x0), ring_fold(lo1, x1), ring_fold(lo2, x2), ring_fold(lo3, x3)};
    if (rows == 4 && cols == 4 && cstep == 1) {
        for (size_t i = 0; i < 4; i++) {
            __m256i *ci = (__m256i *)(c + i * ldc);
            _mm256_storeu_si256(ci, _mm256_add_epi64(_mm256_loadu_si256(ci), r[i]));
        }
        return;
    }
    uint64_t lane[4] __attribute__((aligned(32)));
    for (size_t i = 0; i < rows; i++) {
        _mm256_store_si256((__m256i *)lane, r[i]);
        for (size_t j = 0; j < cols; j++)
            c[i * ldc + j * cstep] += lane[j];
    }
}

/* C = A1 @ (B1 + B1X) + A2 @ (B2 + B2X) with any of B1X, A2 (then B2, B2X unused), B2X NULL; all
 * shapes, the edges through partial tiles; C[i, j] is c[i * ldc + j * cstep], its m * n words
 * zeroed first.  The panels of both terms are packed side by side. */
__attribute__((target("avx2")))
static void ring_avx2_body(const ring_view *a1, const ring_view *b1, const ring_view *b1x,
                           const ring_view *a2, const ring_view *b2, const ring_view *b2x,
                           uint64_t *c, size_t ldc, size_t cstep, size_t m, size_t k, size_t n)
{
    uint64_t pan1[RING_TK * 4] __attribute__((aligned(32)));
    uint64_t pan2[RING_TK * 4] __attribute__((aligned(32)));
    memset(c, 0, m * n * sizeof(uint64_t));
    for (size_t p0 = 0; p0 < k; p0 += RING_TK) {
        const size_t kb = k - p0 < RING_TK ? k - p0 : RING_TK;
        for (size_t j0 = 0; j0 < n; j0 += 4) {
            const size_t cols = n - j0 < 4 ? n - j0 : 4;
            ring_pack(b1, b1x, n, p0, kb, j0, pan1);
            if (a2 != NULL)
                ring_pack(b2, b2x, n, p0, kb, j0, pan2);
            for (size_t i0 = 0; i0 < m; i0 += RING_TM) {
                const size_t rows = m - i0 < RING_TM ? m - i0 : RING_TM;
                ring_avx2_tile(ring_at(a1, i0, p0), a1->rs, a1->cs,
                               a2 != NULL ? ring_at(a2, i0, p0) : NULL, a2 != NULL ? a2->rs : 0,
                               a2 != NULL ? a2->cs : 0, pan1, pan2, kb, c + i0 * ldc + j0 * cstep, ldc,
                               cstep, rows, cols);
            }
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

/* C += A @ B by the portable tiles, A a view, B contiguous (k x n, row-major). */
static void ring_region(const ring_view *a, const uint64_t *b, uint64_t *c, size_t m, size_t k, size_t n)
{
    for (size_t jb = 0; jb < n; jb += RING_NB) {
        const size_t nb = n - jb < RING_NB ? n - jb : RING_NB;
        for (size_t p0 = 0; p0 < k; p0 += RING_KB) {
            const size_t kb = k - p0 < RING_KB ? k - p0 : RING_KB;
            for (size_t i = 0; i < m; i += RING_MR) {
                const size_t mr = m - i < RING_MR ? m - i : RING_MR;
                ring_tile(ring_at(a, i, p0), a->rs, a->cs, b + p0 * n + jb, n, c + i * n + jb, n, mr,
                          kb, nb);
            }
        }
    }
}

static int ring_portable_only; /* set by tests to check the portable path against the AVX2 one */

/* Whether the AVX2 path runs: it needs the CPU's support and is not switched off. */
static int ring_use_avx2(void)
{
#ifdef RING_AVX2
    return !ring_portable_only && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

/* Switch the AVX2 path off (on = 0) or back on (1), or only ask (-1); returns whether it runs. */
int ring_avx2(int on)
{
    if (on >= 0)
        ring_portable_only = !on;
    return ring_use_avx2();
}

/* C = A @ B mod 2^64 for row-major A (m x k), B (k x n), C (m x n); returns 0, or -1 when out of
 * memory (C is then unspecified). */
int ring_matmul(const uint64_t *a, const uint64_t *b, uint64_t *c, size_t m, size_t k, size_t n)
{
    if (m == 0 || n == 0)
        return 0;
    if (n < RING_DOT_N && k > 0)
        return ring_matmul_dot(a, b, c, m, k, n);
    const ring_view va = {a, (ptrdiff_t)k, 1};
#ifdef RING_AVX2
    if (ring_use_avx2()) {
        const ring_view vb = {b, (ptrdiff_t)n, 1};
        ring_avx2_body(&va, &vb, NULL, NULL, NULL, NULL, c, n, 1, m, k, n);
        return 0;
    }
#endif
    memset(c, 0, m * n * sizeof(uint64_t));
    ring_region(&va, b, c, m, k, n);
    return 0;
}

#define RING_CB 8 /* the dense copy's blocks: 8 x 8 words touch 8 cache lines on either side */

/* B (+ BX) as a fresh row-major k x n array (the portable path's sums, strided operands' copies),
 * block by block so that a transposed source is not read a word per cache line; NULL when out of
 * memory. */
static uint64_t *ring_dense(const ring_view *b, const ring_view *bx, size_t k, size_t n)
{
    uint64_t *s = (uint64_t *)malloc((k * n > 0 ? k * n : 1) * sizeof(uint64_t));
    if (s == NULL)
        return NULL;
    for (size_t p0 = 0; p0 < k; p0 += RING_CB) {
        const size_t p1 = k - p0 < RING_CB ? k : p0 + RING_CB;
        for (size_t j0 = 0; j0 < n; j0 += RING_CB) {
            const size_t j1 = n - j0 < RING_CB ? n : j0 + RING_CB;
            for (size_t p = p0; p < p1; p++) {
                const uint64_t *bp = ring_at(b, p, 0);
                uint64_t *sp = s + p * n;
                if (bx == NULL) {
                    for (size_t j = j0; j < j1; j++)
                        sp[j] = bp[(ptrdiff_t)j * b->cs];
                    continue;
                }
                const uint64_t *xp = ring_at(bx, p, 0);
                for (size_t j = j0; j < j1; j++)
                    sp[j] = bp[(ptrdiff_t)j * b->cs] + xp[(ptrdiff_t)j * bx->cs];
            }
        }
    }
    return s;
}

/* One term A @ (B + BX) of the portable path added to C; -1 when out of memory. */
static int ring_portable_term(const ring_view *a, const ring_view *b, const ring_view *bx, uint64_t *c,
                              size_t m, size_t k, size_t n)
{
    if (bx == NULL && b->cs == 1 && b->rs == (ptrdiff_t)n) { /* row-major already: read in place */
        ring_region(a, b->p, c, m, k, n);
        return 0;
    }
    uint64_t *s = ring_dense(b, bx, k, n);
    if (s == NULL)
        return -1;
    ring_region(a, s, c, m, k, n);
    free(s);
    return 0;
}

#ifdef RING_AVX2
/* (B + BX)^T as a fresh row-major n x k array; NULL when out of memory. */
static uint64_t *ring_dense_t(const ring_view *b, const ring_view *bx, size_t k, size_t n)
{
    const ring_view bt = {b->p, b->cs, b->rs}, bxt = {bx != NULL ? bx->p : NULL, bx != NULL ? bx->cs : 0,
                                                      bx != NULL ? bx->rs : 0};
    return ring_dense(&bt, bx != NULL ? &bxt : NULL, n, k);
}

/* Whether A is stored column by column (a transposed view): its rows are then the columns of a
 * row-major matrix, read four at a time as B's panels are, in C^T = (B + BX)^T A^T. */
static int ring_columnwise(const ring_view *a, size_t m, size_t k)
{
    return m > 1 && k > 1 && a->rs == 1 && a->cs != 1;
}

/* C^T = (B1 + B1X)^T A1^T (+ (B2 + B2X)^T A2^T) for column-wise A's: A^T's rows are packed as B's
 * panels are (four contiguous words at a time), and B + BX, transposed, goes to scratch. */
static int ring_avx2_transposed(const ring_view *a1, const ring_view *b1, const ring_view *b1x,
                                const ring_view *a2, const ring_view *b2, const ring_view *b2x,
                                uint64_t *c, size_t m, size_t k, size_t n)
{
    uint64_t *s1 = ring_dense_t(b1, b1x, k, n);
    uint64_t *s2 = a2 != NULL ? ring_dense_t(b2, b2x, k, n) : NULL;
    int rc = -1;
    if (s1 != NULL && (a2 == NULL || s2 != NULL)) {
        const ring_view u1 = {s1, (ptrdiff_t)k, 1}, u2 = {s2, (ptrdiff_t)k, 1};
        const ring_view w1 = {a1->p, a1->cs, a1->rs};
        const ring_view w2 = {a2 != NULL ? a2->p : NULL, a2 != NULL ? a2->cs : 0,
                              a2 != NULL ? a2->rs : 0};
        ring_avx2_body(&u1, &w1, NULL, a2 != NULL ? &u2 : NULL, &w2, NULL, c, 1, n, n, k, m);
        rc = 0;
    }
    free(s1);
    free(s2);
    return rc;
}

/* The AVX2 pass on views.  Column-wise A's (transposed views) read in place through the tile's
 * broadcasts are slower than a contiguous copy (two-term 128x784 @ 784x128, minima of 101 calls:
 * 4.2-4.5 ms against 3.7-3.8 ms, thread CPU), so when n < m C^T is computed instead, whose extra
 * copy (B's k x n words, transposed) is smaller than A's; otherwise they are read in place
 * (matmul2() in ring.py copies them first).  Returns 0, or -1 when out of memory. */
static int ring_avx2_views(const ring_view *a1, const ring_view *b1, const ring_view *b1x,
                           const ring_view *a2, const ring_view *b2, const ring_view *b2x,
                           uint64_t *c, size_t m, size_t k, size_t n)
{
    if (ring_columnwise(a1, m, k) && (a2 == NULL || ring_columnwise(a2, m, k)) && n > 1 && n < m)
        return ring_avx2_transposed(a1, b1, b1x, a2, b2, b2x, c, m, k, n);
    ring_avx2_body(a1, b1, b1x, a2, b2, b2x, c, n, 1, m, k, n);
    return 0;
}
#endif

/* C = A1 @ (B1 + B1X) + A2 @ (B2 + B2X) mod 2^64, A's m x k and B's k x n; any of B1X, A2 (then B2
 * and B2X are unused) and B2X may be NULL.  Operand q's element [i, j] is at its pointer plus
 * i * strides[2q] + j * strides[2q + 1] words (q = 0..5 in argument order: transposed views and
 * slices are read in place); strides NULL means every operand is row-major.  One pass over C, the
 * sums formed while B's panels are packed: rep3's share x_i (y_i + y_{i+1}) + x_{i+1} y_i is one
 * call.  Returns 0, or -1 when out of memory (C is then unspecified). */
int ring_matmul2(const uint64_t *a1, const uint64_t *b1, const uint64_t *b1x, const uint64_t *a2,
                 const uint64_t *b2, const uint64_t *b2x, const int64_t *strides, uint64_t *c,
                 size_t m, size_t k, size_t n)
{
    if (m == 0 || n == 0)
        return 0;
    const uint64_t *ptr[6] = {a1, b1, b1x, a2, b2, b2x};
    ring_view v[6];
    for (size_t q = 0; q < 6; q++) {
        const size_t cols = q == 0 || q == 3 ? k : n;
        v[q].p = ptr[q];
        v[q].rs = strides != NULL ? (ptrdiff_t)strides[2 * q] : (ptrdiff_t)cols;
        v[q].cs = strides != NULL ? (ptrdiff_t)strides[2 * q + 1] : 1;
    }
    const ring_view *vb1x = b1x != NULL ? &v[2] : NULL, *va2 = a2 != NULL ? &v[3] : NULL;
    const ring_view *vb2x = a2 != NULL && b2x != NULL ? &v[5] : NULL;
#ifdef RING_AVX2
    if (ring_use_avx2())
        return ring_avx2_views(&v[0], &v[1], vb1x, va2, &v[4], vb2x, c, m, k, n);
#endif
    memset(c, 0, m * n * sizeof(uint64_t));
    if (ring_portable_term(&v[0], &v[1], vb1x, c, m, k, n) != 0)
        return -1;
    if (va2 != NULL && ring_portable_term(va2, &v[4], vb2x, c, m, k, n) != 0)
        return -1;
    return 0;
}
