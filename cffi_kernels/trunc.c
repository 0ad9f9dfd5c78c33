/* rep3's truncation arithmetic (veil.runtime.protocols.rep3_fused), each party's elementwise
 * formulas fused into one pass over memory, because numpy spends a full pass over 8 MB arrays per
 * operator.  Everything is mod 2^64; the numpy formulas in rep3_fused are the reference and tests
 * check both give the same words. */
#include <stddef.h>
#include <stdint.h>

#define LOW63 ((((uint64_t)1) << 63) - 1)
#define OFFSET (((uint64_t)1) << 62)

/* The version of these entry points' argument lists: rep3_fused.TRUNC_ABI must match it, so a
 * stale build is not called with the wrong arguments (Python falls back to numpy instead). */
int veil_trunc_abi(void)
{
    return 3;
}

/* out = (xa ? xa*(ya+yb) + xb*ya : z0) + r. */
void veil_rep3_open_mask(const uint64_t *xa, const uint64_t *xb, const uint64_t *ya, const uint64_t *yb,
                         const uint64_t *z0, const uint64_t *r, uint64_t *out, size_t n)
{
    if (xa) {
        for (size_t j = 0; j < n; j++)
            out[j] = xa[j] * (ya[j] + yb[j]) + xb[j] * ya[j] + r[j];
    } else {
        for (size_t j = 0; j < n; j++)
            out[j] = z0[j] + r[j];
    }
}

/* The low bits of P1's part of the mask's top bit that its formula reads, f = r63b mod 2^(8 fbytes),
 * stored fbytes to an element (2, 4 or 8: see rep3_fused.f_bytes). */
static inline void put_f(void *f, unsigned fbytes, size_t j, uint64_t v)
{
    if (fbytes == 2)
        ((uint16_t *)f)[j] = (uint16_t)v;
    else if (fbytes == 4)
        ((uint32_t *)f)[j] = (uint32_t)v;
    else
        ((uint64_t *)f)[j] = v;
}

static inline uint64_t get_f(const void *f, unsigned fbytes, size_t j)
{
    if (fbytes == 2)
        return ((const uint16_t *)f)[j];
    if (fbytes == 4)
        return ((const uint32_t *)f)[j];
    return ((const uint64_t *)f)[j];
}

/* The dealer: r = ra + rb (+ rc when it is not NULL); P1's parts r63b = (r >> 63) - r63a
 * and rlb = ((r mod 2^63) >> m) - rla, sent as e = r63b K - rlb (K = 2^(63-m)) and f = r63b's low
 * bits: P1's formula reads r63b only through r63b K sgn = r63b K - c63 r63b 2^(64-m), i.e. through
 * e and r63b mod 2^m. */
void veil_rep3_trunc_deal(const uint64_t *ra, const uint64_t *rb, const uint64_t *rc, const uint64_t *r63a,
                          const uint64_t *rla, unsigned m, uint64_t *e, void *f, unsigned fbytes, size_t n)
{
    const uint64_t k = ((uint64_t)1) << (63 - m);
    for (size_t j = 0; j < n; j++) {
        uint64_t r = ra[j] + rb[j] + (rc ? rc[j] : 0);
        uint64_t r63b = (r >> 63) - r63a[j], rlb = ((r & LOW63) >> m) - rla[j];
        e[j] = r63b * k - rlb;
        put_f(f, fbytes, j, r63b);
    }
}

/* Operands that may be absent (NULL: all zeros, as dealer2's truncation needs) are read a chunk
 * at a time, an absent one from a static block of zeros, so the inner loops stay branch-free. */
#define CHUNK 2048
static const uint64_t ZEROS[CHUNK];
#define AT(p, j0) ((p) ? (p) + (j0) : ZEROS)

/* P0: open c = s + g1 + g2 + 2^62, then v0 = cl + c63*K - 2^(62-m) - rla + r63a*sgn*K - t
 * with sgn = 1 - 2*c63 and K = 2^(63-m).  g2 and t may be NULL. */
void veil_rep3_trunc_p0(const uint64_t *s, const uint64_t *g1, const uint64_t *g2, const uint64_t *r63a,
                        const uint64_t *rla, const uint64_t *t, unsigned m, uint64_t *out, size_t n)
{
    const uint64_t k = ((uint64_t)1) << (63 - m), h = ((uint64_t)1) << (62 - m);
    for (size_t j0 = 0; j0 < n; j0 += CHUNK) {
        const size_t len = n - j0 < CHUNK ? n - j0 : CHUNK;
        const uint64_t *g2c = AT(g2, j0), *tc = AT(t, j0);
        const uint64_t *sc = s + j0, *g1c = g1 + j0, *ac = r63a + j0, *lc = rla + j0;
        uint64_t *oc = out + j0;
        for (size_t j = 0; j < len; j++) {
            uint64_t c = sc[j] + g1c[j] + g2c[j] + OFFSET;
            uint64_t c63 = c >> 63, cl = (c & LOW63) >> m;
            uint64_t sgn = 1 - 2 * c63;
            oc[j] = cl + c63 * k - h - lc[j] + ac[j] * sgn * k - tc[j];
        }
    }
}

/* P1: open c = s + g0 + z2 + 2^62, then v1 = r63b*sgn*K - rlb - q = e - c63 (f << (64-m)) - q
 * from the dealer's e and f (see veil_rep3_trunc_deal).  z2 and q may be NULL. */
void veil_rep3_trunc_p1(const uint64_t *s, const uint64_t *g0, const uint64_t *z2, const uint64_t *e,
                        const void *f, unsigned fbytes, const uint64_t *q, unsigned m, uint64_t *out, size_t n)
{
    const unsigned sh = 64 - m;  /* m = 0: 2^64 = 0, the c63 term vanishes */
    for (size_t j0 = 0; j0 < n; j0 += CHUNK) {
        const size_t len = n - j0 < CHUNK ? n - j0 : CHUNK;
        const uint64_t *z2c = AT(z2, j0), *qc = AT(q, j0);
        const uint64_t *sc = s + j0, *g0c = g0 + j0, *ec = e + j0;
        uint64_t *oc = out + j0;
        for (size_t j = 0; j < len; j++) {
            uint64_t c = sc[j] + g0c[j] + z2c[j] + OFFSET;
            uint64_t top = m ? get_f(f, fbytes, j0 + j) << sh : 0;
            oc[j] = ec[j] - (c >> 63) * top - qc[j];
        }
    }
}
