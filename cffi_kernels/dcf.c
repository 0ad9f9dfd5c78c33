/* The distributed comparison function of veil.runtime.protocols.dcf (Boyle et al. 2021, Fig. 1)
 * in C: Gen, Eval and Eval at k points per key, level by level, with the PRG's fixed-key AES through
 * AES-NI.  Every word is the numpy path's (dcf.py): the same tweaks, block layout, control-bit
 * extraction and correction-word arrays, so the two paths agree bit for bit (tests check it).
 * Compiled after aes.c in one translation unit (build_kernels.py), whose key schedule it uses.
 * Without AES-NI the functions return -1 and Python keeps the numpy path. */

#include <stdlib.h>

#define DCF_MAX_W 4              /* payload words supported here (the protocols use 1 and 2) */
#define DCF_CONV_TWEAK 64        /* dcf.CONV_TWEAK */

#ifdef VEIL_AESNI
static const uint8_t dcf_fixed_key[16] = {0x76, 0x65, 0x69, 0x6c, 0x2d, 0x64, 0x63, 0x66,
                                          0x2d, 0x66, 0x69, 0x78, 0x65, 0x64, 0x21, 0x4b};

/* H(z) = AES_K(z) ^ z on m blocks at once (interleaved, so the AES unit's pipeline stays full). */
__attribute__((target("aes,sse4.1")))
static inline void dcf_mmo_ni(const __m128i *rk, __m128i *z, int m)
{
    __m128i x[24];
    for (int t = 0; t < m; t++)
        x[t] = _mm_xor_si128(z[t], rk[0]);
    for (int r = 1; r < 10; r++)
        for (int t = 0; t < m; t++)
            x[t] = _mm_aesenc_si128(x[t], rk[r]);
    for (int t = 0; t < m; t++)
        z[t] = _mm_xor_si128(_mm_aesenclast_si128(x[t], rk[10]), z[t]);
}

/* The same through VAES, two blocks per instruction (m even); rk2 holds the round keys twice. */
__attribute__((target("vaes,avx2,aes,sse4.1")))
static void dcf_mmo_vaes(const __m256i *rk2, __m128i *z, int m)
{
    __m256i x[12];
    const int h = m / 2;
    for (int t = 0; t < h; t++)
        x[t] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(z + 2 * t)), rk2[0]);
    for (int r = 1; r < 10; r++)
        for (int t = 0; t < h; t++)
            x[t] = _mm256_aesenc_epi128(x[t], rk2[r]);
    for (int t = 0; t < h; t++) {
        __m256i y = _mm256_xor_si256(_mm256_aesenclast_epi128(x[t], rk2[10]),
                                     _mm256_loadu_si256((const __m256i *)(z + 2 * t)));
        _mm256_storeu_si256((__m256i *)(z + 2 * t), y);
    }
}

static __m256i dcf_rk2[11];
static int dcf_use_vaes = -1;

__attribute__((target("aes,sse4.1")))
static inline void dcf_mmo(const __m128i *rk, __m128i *z, int m)
{
    if (dcf_use_vaes && m >= 4 && (m & 1) == 0)
        dcf_mmo_vaes(dcf_rk2, z, m);
    else
        dcf_mmo_ni(rk, z, m);
}

__attribute__((target("aes,sse4.1")))
static inline __m128i dcf_tweak(const uint64_t *s, uint64_t tw)
{
    return _mm_set_epi64x((long long)s[1], (long long)(s[0] ^ tw));
}

/* Unpack one side's k expanded blocks: child seed (control bit cleared), control bit, w values. */
__attribute__((target("aes,sse4.1")))
static inline void dcf_split(const __m128i *blk, int k, unsigned w, uint64_t *child, uint64_t *t, uint64_t *v)
{
    uint64_t words[2 * 3];
    _mm_storeu_si128((__m128i *)child, blk[0]);
    *t = child[0] & 1u;
    child[0] &= ~(uint64_t)1;
    for (int j = 1; j < k; j++)
        _mm_storeu_si128((__m128i *)(words + 2 * (j - 1)), blk[j]);
    for (unsigned j = 0; j < w; j++)
        v[j] = words[j];
}

__attribute__((target("aes,sse4.1")))
static void dcf_convert(const __m128i *rk, const uint64_t *s, unsigned w, uint64_t *out)
{
    __m128i blk[2];
    uint64_t words[4];
    int k = (int)((w + 1) / 2);
    for (int j = 0; j < k; j++)
        blk[j] = dcf_tweak(s, DCF_CONV_TWEAK + (uint64_t)j);
    dcf_mmo(rk, blk, k);
    for (int j = 0; j < k; j++)
        _mm_storeu_si128((__m128i *)(words + 2 * j), blk[j]);
    for (unsigned j = 0; j < w; j++)
        out[j] = words[j];
}

static __m128i dcf_rk[11];
static int dcf_rk_ready = 0;

__attribute__((target("vaes,avx2,aes,sse4.1")))
static void dcf_broadcast_keys(void)
{
    for (int r = 0; r < 11; r++)
        dcf_rk2[r] = _mm256_broadcastsi128_si256(dcf_rk[r]);
}

static const __m128i *dcf_keys(void)
{
    if (!dcf_rk_ready) {
        aes_expand(dcf_fixed_key, dcf_rk);
        dcf_use_vaes = vaes_available();
        if (dcf_use_vaes)
            dcf_broadcast_keys();
        dcf_rk_ready = 1;
    }
    return dcf_rk;
}
#endif

/* n keys' correction words in dcf.CorrectionWords.pack's layout (`words`, dcf.cw_words of them):
 * s_cw (n_bits, n, 2) with t_CW^L in bit 0, v_cw (n_bits, n, w), final (n, w), then t_CW^R packed
 * 64 to a word (bit l*n + i); offset may be NULL.  -1 without AES-NI or for an unsupported width. */
#ifdef VEIL_AESNI
#define DCF_GROUP 2              /* keys expanded together in Gen (4 seeds-sides of k blocks each) */
#define DCF_EGROUP 4             /* keys expanded together in Eval */

/* Level-major: every key's state advances one level at a time, DCF_GROUP keys per AES batch, so
 * the AES unit works on independent blocks and the correction words are written in order. */
__attribute__((target("aes,sse4.1")))
static int dcf_gen_keys(const __m128i *rk, const uint64_t *alpha, const uint64_t *beta, const uint64_t *offset,
                        const uint64_t *seed0, const uint64_t *seed1, size_t n, unsigned n_bits, unsigned w,
                        uint64_t *words)
{
    const int k = 1 + (int)((w + 1) / 2);
    uint64_t *s_cw = words, *v_cw = words + 2 * (size_t)n_bits * n, *final = v_cw + (size_t)w * n_bits * n;
    uint64_t *bits = final + (size_t)w * n;
    memset(bits, 0, sizeof(uint64_t) * (((size_t)n_bits * n + 63) / 64));
    uint64_t *st = malloc(sizeof(uint64_t) * n * (4 + 2 + w));   /* seeds 0,1 (2 words each), t0, t1, V_alpha */
    if (!st)
        return -2;
    uint64_t *s0 = st, *s1 = st + 2 * n, *t0 = st + 4 * n, *t1 = st + 5 * n, *va = st + 6 * n;
    memcpy(s0, seed0, 16 * n);
    memcpy(s1, seed1, 16 * n);
    for (size_t i = 0; i < n; i++) {
        t0[i] = 0;
        t1[i] = 1;
    }
    memset(va, 0, sizeof(uint64_t) * n * w);
    for (unsigned l = 0; l < n_bits; l++) {
        for (size_t i0 = 0; i0 < n; i0 += DCF_GROUP) {
            const size_t g = n - i0 < DCF_GROUP ? n - i0 : DCF_GROUP;
            __m128i flat[DCF_GROUP * 12];
            int m = 0;
            for (size_t q = 0; q < g; q++)
                for (int b = 0; b < 2; b++)
                    for (int sd = 0; sd < 2; sd++)
                        for (int j = 0; j < k; j++)
                            flat[m++] = dcf_tweak((b ? s1 : s0) + 2 * (i0 + q), (uint64_t)(2 * j + sd));
            dcf_mmo(rk, flat, m);
            for (size_t q = 0; q < g; q++) {
                const size_t i = i0 + q;
                const uint64_t a = (alpha[i] >> (n_bits - 1 - l)) & 1u;
                const unsigned keep = (unsigned)a, lose = 1u - keep;
                uint64_t cs[2][2][2], ct[2][2], cv[2][2][DCF_MAX_W];
                for (int b = 0; b < 2; b++)
                    for (int sd = 0; sd < 2; sd++)
                        dcf_split(flat + (int)q * 4 * k + (2 * b + sd) * k, k, w, cs[b][sd], &ct[b][sd], cv[b][sd]);
                const uint64_t sign = 1u - 2u * t1[i];
                uint64_t *scw = s_cw + 2 * ((size_t)l * n + i);
                uint64_t *vcw = v_cw + (size_t)w * ((size_t)l * n + i);
                uint64_t *vai = va + (size_t)w * i;
                const uint64_t scw0 = cs[0][lose][0] ^ cs[1][lose][0], scw1 = cs[0][lose][1] ^ cs[1][lose][1];
                for (unsigned j = 0; j < w; j++) {
                    vcw[j] = sign * (cv[1][lose][j] - cv[0][lose][j] - vai[j] + beta[i * w + j] * a);
                    vai[j] = vai[j] - cv[1][keep][j] + cv[0][keep][j] + sign * vcw[j];
                }
                const uint64_t tl = ct[0][0] ^ ct[1][0] ^ a ^ 1u, tr = ct[0][1] ^ ct[1][1] ^ a;
                const uint64_t tkeep = keep ? tr : tl;
                uint64_t *sb[2] = {s0 + 2 * i, s1 + 2 * i}, *tb[2] = {t0 + i, t1 + i};
                for (int b = 0; b < 2; b++) {
                    const uint64_t mask = (uint64_t)0 - *tb[b];
                    sb[b][0] = cs[b][keep][0] ^ (scw0 & mask);
                    sb[b][1] = cs[b][keep][1] ^ (scw1 & mask);
                    *tb[b] = ct[b][keep] ^ (*tb[b] & tkeep);
                }
                if (l == 0 && offset)
                    for (unsigned j = 0; j < w; j++)
                        vcw[j] -= offset[i * w + j];
                scw[0] = scw0 | tl;
                scw[1] = scw1;
                const size_t at = (size_t)l * n + i;
                bits[at >> 6] |= tr << (at & 63);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t c0[DCF_MAX_W], c1[DCF_MAX_W];
        dcf_convert(rk, s0 + 2 * i, w, c0);
        dcf_convert(rk, s1 + 2 * i, w, c1);
        const uint64_t sign = 1u - 2u * t1[i];
        for (unsigned j = 0; j < w; j++)
            final[i * w + j] = sign * (c1[j] - c0[j] - va[i * w + j]);
    }
    free(st);
    return 0;
}
#endif

#ifdef VEIL_AESNI
/* What every entry point checks first: AES-NI here, and a domain and payload the kernels handle. */
static int dcf_params_ok(unsigned n_bits, unsigned w)
{
    return veil_aes_available() && w >= 1 && w <= DCF_MAX_W && n_bits >= 1 && n_bits <= 64;
}
#endif

int veil_dcf_gen(const uint64_t *alpha, const uint64_t *beta, const uint64_t *offset, const uint64_t *seed0,
                 const uint64_t *seed1, size_t n, unsigned n_bits, unsigned w, uint64_t *words)
{
#ifdef VEIL_AESNI
    if (!dcf_params_ok(n_bits, w))
        return -1;
    return dcf_gen_keys(dcf_keys(), alpha, beta, offset, seed0, seed1, n, n_bits, w, words);
#else
    (void)alpha; (void)beta; (void)offset; (void)seed0; (void)seed1; (void)n; (void)n_bits; (void)w;
    (void)words;
    return -1;
#endif
}

/* Party b's shares out (n, w) of f at x for keys (seed (n, 2), the packed correction words). */
#ifdef VEIL_AESNI
__attribute__((target("aes,sse4.1")))
/* One level of one evaluation: the expanded side's child seed, control bit and value, corrected by
   the level's correction words where the control bit is set; `at` indexes the level's control-bit
   corrections (side R's are packed in `bits`, side L's ride in the seed word's low bit). */
static inline void dcf_advance(const __m128i *blk, int k, unsigned w, uint64_t side, const uint64_t *scw,
                               const uint64_t *vcw, const uint64_t *bits, size_t at,
                               uint64_t *s, uint64_t *t, uint64_t *acc)
{
    uint64_t child[2], tc, v[DCF_MAX_W];
    dcf_split(blk, k, w, child, &tc, v);
    const uint64_t mask = (uint64_t)0 - *t;
    s[0] = child[0] ^ (scw[0] & ~(uint64_t)1 & mask);
    s[1] = child[1] ^ (scw[1] & mask);
    for (unsigned j = 0; j < w; j++)
        acc[j] += v[j] + (vcw[j] & mask);
    const uint64_t tcw = side ? (bits[at >> 6] >> (at & 63)) & 1u : scw[0] & 1u;
    *t = tc ^ (*t & tcw);
}

static int dcf_eval_keys(const __m128i *rk, int b, const uint64_t *seed, const uint64_t *words, const uint64_t *x,
                         size_t n, unsigned n_bits, unsigned w, uint64_t *out)
{
    const int k = 1 + (int)((w + 1) / 2);
    const uint64_t *s_cw = words, *v_cw = words + 2 * (size_t)n_bits * n, *final = v_cw + (size_t)w * n_bits * n;
    const uint64_t *bits = final + (size_t)w * n;
    uint64_t *st = malloc(sizeof(uint64_t) * n * 3);   /* seeds (2 words), control bits */
    if (!st)
        return -2;
    uint64_t *s = st, *t = st + 2 * n, *acc = out;
    memcpy(s, seed, 16 * n);
    for (size_t i = 0; i < n; i++)
        t[i] = (uint64_t)(b & 1);
    memset(acc, 0, sizeof(uint64_t) * n * w);
    for (unsigned l = 0; l < n_bits; l++) {
        for (size_t i0 = 0; i0 < n; i0 += DCF_EGROUP) {
            const size_t g = n - i0 < DCF_EGROUP ? n - i0 : DCF_EGROUP;
            __m128i blk[DCF_EGROUP * 3];
            uint64_t side[DCF_EGROUP];
            for (size_t q = 0; q < g; q++) {
                side[q] = (x[i0 + q] >> (n_bits - 1 - l)) & 1u;
                for (int j = 0; j < k; j++)
                    blk[q * k + j] = dcf_tweak(s + 2 * (i0 + q), (uint64_t)(2 * j) + side[q]);
            }
            dcf_mmo(rk, blk, (int)g * k);
            for (size_t q = 0; q < g; q++) {
                const size_t i = i0 + q, at = (size_t)l * n + i;
                dcf_advance(blk + q * k, k, w, side[q], s_cw + 2 * at, v_cw + (size_t)w * at, bits, at,
                            s + 2 * i, t + i, acc + i * w);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t c[DCF_MAX_W];
        dcf_convert(rk, s + 2 * i, w, c);
        const uint64_t mask = (uint64_t)0 - t[i];
        for (unsigned j = 0; j < w; j++) {
            const uint64_t y = acc[i * w + j] + c[j] + (final[i * w + j] & mask);
            out[i * w + j] = b ? (uint64_t)0 - y : y;
        }
    }
    free(st);
    return 0;
}
#endif

int veil_dcf_eval(int b, const uint64_t *seed, const uint64_t *words, const uint64_t *x, size_t n, unsigned n_bits,
                  unsigned w, uint64_t *out)
{
#ifdef VEIL_AESNI
    if (!dcf_params_ok(n_bits, w))
        return -1;
    return dcf_eval_keys(dcf_keys(), b, seed, words, x, n, n_bits, w, out);
#else
    (void)b; (void)seed; (void)words; (void)x; (void)n; (void)n_bits; (void)w;
    (void)out;
    return -1;
#endif
}

/* n keys each at k points x (n, k), any order, into out (n, k, w): the words of k veil_dcf_eval
 * calls.  A key's points are sorted and each walks only the levels below its common prefix with
 * the previous point: it is born at that level with a copy of its leader's state (the nearest
 * earlier point whose path left sooner, which shares those top bits), so each node of the trie of
 * the k paths is expanded once.  Level-major like dcf_eval_keys: at level l every live point of
 * every key advances, DCF_AGROUP per AES batch, reading level l's correction words in one row. */
#ifdef VEIL_AESNI
#define DCF_CGROUP 8             /* final seeds converted together */
#define DCF_AGROUP 8             /* points advanced together (DCF_AGROUP x 3 <= 24 blocks) */

typedef struct { uint64_t v; size_t at; } dcf_point;

static unsigned dcf_prefix(uint64_t a, uint64_t b, unsigned n_bits)
{
    uint64_t d = a ^ b;
    if (!d)
        return n_bits;
#if defined(__GNUC__) || defined(__clang__)
    return n_bits - 64 + (unsigned)__builtin_clzll(d);
#else
    unsigned h = 63;
    while (!((d >> h) & 1u))
        h--;
    return n_bits - 1 - h;
#endif
}

static int dcf_point_cmp(const void *p, const void *q)
{
    const uint64_t a = ((const dcf_point *)p)->v, b = ((const dcf_point *)q)->v;
    return (a > b) - (a < b);
}

/* Sort one key's k points (masked to n_bits) with their positions; start[j] is the level point j
 * is born at (0 for the first, n_bits when equal to the previous one) and lead[j] the point it
 * copies there (the nearest earlier one born sooner; unused when born at 0). */
static void dcf_sort_points(const uint64_t *x, size_t k, unsigned n_bits, dcf_point *pts, unsigned *start,
                            size_t *lead, size_t *stack)
{
    const uint64_t m = n_bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n_bits) - 1);
    for (size_t j = 0; j < k; j++) {
        pts[j].v = x[j] & m;
        pts[j].at = j;
    }
    if (k <= 32) {
        for (size_t j = 1; j < k; j++) {
            dcf_point p = pts[j];
            size_t q = j;
            for (; q > 0 && pts[q - 1].v > p.v; q--)
                pts[q] = pts[q - 1];
            pts[q] = p;
        }
    } else {
        qsort(pts, k, sizeof(dcf_point), dcf_point_cmp);
    }
    size_t top = 0;
    for (size_t j = 0; j < k; j++) {
        start[j] = j ? dcf_prefix(pts[j].v, pts[j - 1].v, n_bits) : 0;
        while (top > 0 && start[stack[top - 1]] >= start[j])
            top--;
        lead[j] = top ? stack[top - 1] : 0;
        stack[top++] = j;
    }
}

__attribute__((target("aes,sse4.1")))
static int dcf_eval_at_keys(const __m128i *rk, int b, const uint64_t *seed, const uint64_t *words,
                            const uint64_t *x, size_t n, size_t k, unsigned n_bits, unsigned w, uint64_t *out)
{
    const int kb = 1 + (int)((w + 1) / 2);
    const uint64_t *s_cw = words, *v_cw = words + 2 * (size_t)n_bits * n, *final = v_cw + (size_t)w * n_bits * n;
    const uint64_t *bits = final + (size_t)w * n;
    const size_t total = n * k;
    /* per sorted slot p = i k + j: state s (2), t, acc (w); its point, birth level, leader */
    uint64_t *st = malloc(sizeof(uint64_t) * total * (3 + w));
    dcf_point *pts = malloc(sizeof(dcf_point) * total);
    unsigned *start = malloc(sizeof(unsigned) * total);
    size_t *lead = malloc(sizeof(size_t) * (3 * total + k + n_bits + 2));
    int rc = 0;
    if (!st || !pts || !start || !lead) {
        rc = -2;
        goto done;
    }
    uint64_t *s = st, *t = st + 2 * total, *acc = st + 3 * total;
    size_t *order = lead + total, *key = order + total, *stack = key + total, *cum = stack + k;
    for (size_t i = 0; i < n; i++) {
        dcf_sort_points(x + i * k, k, n_bits, pts + i * k, start + i * k, lead + i * k, stack);
        for (size_t j = 0; j < k; j++) {
            lead[i * k + j] += i * k;
            key[i * k + j] = i;
        }
    }
    /* slots grouped by birth level (counting sort): those live at level l are order[0, cum[l + 1]) */
    memset(cum, 0, sizeof(size_t) * (n_bits + 2));
    for (size_t p = 0; p < total; p++)
        cum[start[p] + 1]++;
    for (unsigned l = 0; l <= n_bits; l++)
        cum[l + 1] += cum[l];
    for (size_t p = 0; p < total; p++)
        order[cum[start[p]]++] = p;
    for (unsigned l = n_bits + 1; l > 0; l--)   /* the fill advanced cum[l] to the old cum[l + 1] */
        cum[l] = cum[l - 1];
    cum[0] = 0;
    for (unsigned l = 0; l < n_bits; l++) {
        for (size_t r = cum[l]; r < cum[l + 1]; r++) {
            const size_t p = order[r];
            if (l == 0) {
                s[2 * p] = seed[2 * key[p]];
                s[2 * p + 1] = seed[2 * key[p] + 1];
                t[p] = (uint64_t)(b & 1);
                for (unsigned q = 0; q < w; q++)
                    acc[p * w + q] = 0;
            } else {
                const size_t a = lead[p];
                s[2 * p] = s[2 * a];
                s[2 * p + 1] = s[2 * a + 1];
                t[p] = t[a];
                for (unsigned q = 0; q < w; q++)
                    acc[p * w + q] = acc[a * w + q];
            }
        }
        const size_t live = cum[l + 1];
        for (size_t r0 = 0; r0 < live; r0 += DCF_AGROUP) {
            const size_t g = live - r0 < DCF_AGROUP ? live - r0 : DCF_AGROUP;
            __m128i blk[DCF_AGROUP * 3];
            uint64_t side[DCF_AGROUP];
            for (size_t q = 0; q < g; q++) {
                const size_t p = order[r0 + q];
                side[q] = (pts[p].v >> (n_bits - 1 - l)) & 1u;
                for (int j = 0; j < kb; j++)
                    blk[q * kb + j] = dcf_tweak(s + 2 * p, (uint64_t)(2 * j) + side[q]);
            }
            dcf_mmo(rk, blk, (int)g * kb);
            for (size_t q = 0; q < g; q++) {
                const size_t p = order[r0 + q], at = (size_t)l * n + key[p];
                dcf_advance(blk + q * kb, kb, w, side[q], s_cw + 2 * at, v_cw + (size_t)w * at, bits, at,
                            s + 2 * p, t + p, acc + p * w);
            }
        }
    }
    for (size_t r = cum[n_bits]; r < total; r++) {   /* points equal to their predecessor */
        const size_t p = order[r], a = lead[p];
        s[2 * p] = s[2 * a];
        s[2 * p + 1] = s[2 * a + 1];
        t[p] = t[a];
        for (unsigned q = 0; q < w; q++)
            acc[p * w + q] = acc[a * w + q];
    }
    const int kc = (int)((w + 1) / 2);
    for (size_t p0 = 0; p0 < total; p0 += DCF_CGROUP) {
        const size_t g = total - p0 < DCF_CGROUP ? total - p0 : DCF_CGROUP;
        __m128i blk[DCF_CGROUP * 2];
        for (size_t q = 0; q < g; q++)
            for (int j = 0; j < kc; j++)
                blk[q * kc + j] = dcf_tweak(s + 2 * (p0 + q), DCF_CONV_TWEAK + (uint64_t)j);
        dcf_mmo(rk, blk, (int)g * kc);
        for (size_t q = 0; q < g; q++) {
            const size_t p = p0 + q, i = key[p];
            uint64_t c[4];
            for (int j = 0; j < kc; j++)
                _mm_storeu_si128((__m128i *)(c + 2 * j), blk[q * kc + j]);
            const uint64_t mask = (uint64_t)0 - t[p];
            uint64_t *o = out + (i * k + pts[p].at) * w;
            for (unsigned j = 0; j < w; j++) {
                const uint64_t y = acc[p * w + j] + c[j] + (final[i * w + j] & mask);
                o[j] = b ? (uint64_t)0 - y : y;
            }
        }
    }
done:
    free(st);
    free(pts);
    free(start);
    free(lead);
    return rc;
}
#endif

int veil_dcf_eval_at(int b, const uint64_t *seed, const uint64_t *words, const uint64_t *x, size_t n, size_t k,
                     unsigned n_bits, unsigned w, uint64_t *out)
{
#ifdef VEIL_AESNI
    if (!dcf_params_ok(n_bits, w))
        return -1;
    if (n == 0 || k == 0)
        return 0;
    return dcf_eval_at_keys(dcf_keys(), b, seed, words, x, n, k, n_bits, w, out);
#else
    (void)b; (void)seed; (void)words; (void)x; (void)n; (void)k; (void)n_bits; (void)w;
    (void)out;
    return -1;
#endif
}
