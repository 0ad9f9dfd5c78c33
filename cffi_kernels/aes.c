/* AES-128 keystream for the PRG (veil.runtime.prg) through the AES-NI instructions, because a
 * draw through the `cryptography` package pays ~10 us for a new cipher object, more than a small
 * draw's encryption.  The keystream is AES-CTR's: block j of a draw is AES_k(head + j), with head a
 * 16-byte big-endian counter block whose low 32 bits are zero and j < 2^32, so no carry ever
 * leaves the low 32 bits.  Tests check it byte for byte against `cryptography`'s AES-CTR.
 * Without AES-NI (or off x86-64 GCC/clang) the functions return -1 and Python uses `cryptography`. */
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__APPLE__)
#include <immintrin.h>
#define VEIL_AESNI 1

/* One step of the AES-128 key schedule: fold the previous round key and the assist word. */
__attribute__((target("aes,sse4.1")))
static inline __m128i aes_expand_step(__m128i key, __m128i assist)
{
    assist = _mm_shuffle_epi32(assist, 0xff);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, assist);
}

#define AES_ROUND_KEY(i, rcon) \
    rk[i] = aes_expand_step(rk[(i) - 1], _mm_aeskeygenassist_si128(rk[(i) - 1], rcon))

__attribute__((target("aes,sse4.1")))
static void aes_expand(const uint8_t *key, __m128i *rk)
{
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    AES_ROUND_KEY(1, 0x01);
    AES_ROUND_KEY(2, 0x02);
    AES_ROUND_KEY(3, 0x04);
    AES_ROUND_KEY(4, 0x08);
    AES_ROUND_KEY(5, 0x10);
    AES_ROUND_KEY(6, 0x20);
    AES_ROUND_KEY(7, 0x40);
    AES_ROUND_KEY(8, 0x80);
    AES_ROUND_KEY(9, 0x1b);
    AES_ROUND_KEY(10, 0x36);
}

/* Counter block j: head with its last four bytes replaced by j in big-endian order. */
__attribute__((target("aes,sse4.1")))
static inline __m128i aes_counter(__m128i head, uint32_t j)
{
    return _mm_insert_epi32(head, (int)__builtin_bswap32(j), 3);
}

/* Eight blocks at a time keep the AES unit's pipeline full; the tail goes one by one.  Starts at
 * block j0 (the VAES path below hands its tail over). */
__attribute__((target("aes,sse4.1")))
static void aes_ctr_from(const __m128i *rk, const uint8_t *head_bytes, uint64_t j0, uint64_t nblocks, uint8_t *out)
{
    const __m128i head = _mm_loadu_si128((const __m128i *)head_bytes);
    uint64_t j = j0;
    for (; j + 8 <= nblocks; j += 8) {
        __m128i x[8];
        for (int t = 0; t < 8; t++)
            x[t] = _mm_xor_si128(aes_counter(head, (uint32_t)(j + t)), rk[0]);
        for (int r = 1; r < 10; r++)
            for (int t = 0; t < 8; t++)
                x[t] = _mm_aesenc_si128(x[t], rk[r]);
        for (int t = 0; t < 8; t++)
            _mm_storeu_si128((__m128i *)(out + 16 * (j + t)), _mm_aesenclast_si128(x[t], rk[10]));
    }
    for (; j < nblocks; j++) {
        __m128i x = _mm_xor_si128(aes_counter(head, (uint32_t)j), rk[0]);
        for (int r = 1; r < 10; r++)
            x = _mm_aesenc_si128(x, rk[r]);
        _mm_storeu_si128((__m128i *)(out + 16 * j), _mm_aesenclast_si128(x, rk[10]));
    }
}

/* The same keystream two blocks per instruction through VAES (256-bit AES rounds), 16 blocks per
 * trip.  Counters are kept with their last dword byte-swapped, so adding j is one vector add (the
 * head's low 32 bits are zero and j < 2^32: no carry), and swapped back before encryption. */
__attribute__((target("vaes,avx2,aes,sse4.1")))
static uint64_t aes_ctr_vaes(const __m128i *rk, const uint8_t *head_bytes, uint64_t nblocks, uint8_t *out)
{
    const __m256i swap = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12,
                                          0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12);
    __m256i k[11];
    for (int r = 0; r < 11; r++)
        k[r] = _mm256_broadcastsi128_si256(rk[r]);
    const __m128i head = _mm_loadu_si128((const __m128i *)head_bytes);
    __m256i ctr = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(head), swap);
    ctr = _mm256_add_epi32(ctr, _mm256_setr_epi32(0, 0, 0, 0, 0, 0, 0, 1));
    const __m256i two = _mm256_setr_epi32(0, 0, 0, 2, 0, 0, 0, 2);
    uint64_t j = 0;
    for (; j + 16 <= nblocks; j += 16) {
        __m256i x[8];
        for (int t = 0; t < 8; t++) {
            x[t] = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, swap), k[0]);
            ctr = _mm256_add_epi32(ctr, two);
        }
        for (int r = 1; r < 10; r++)
            for (int t = 0; t < 8; t++)
                x[t] = _mm256_aesenc_epi128(x[t], k[r]);
        for (int t = 0; t < 8; t++)
            _mm256_storeu_si256((__m256i *)(out + 16 * (j + 2 * t)), _mm256_aesenclast_epi128(x[t], k[10]));
    }
    return j;
}

static int vaes_available(void);

static void aes_ctr(const __m128i *rk, const uint8_t *head_bytes, uint64_t nblocks, uint8_t *out)
{
    uint64_t j = vaes_available() ? aes_ctr_vaes(rk, head_bytes, nblocks, out) : 0;
    aes_ctr_from(rk, head_bytes, j, nblocks, out);
}

/* 1 when the CPU (and OS) can run the VAES path; VEIL_NO_VAES=1 in the environment turns it off. */
#include <stdlib.h>
static int vaes_available(void)
{
    static int available = -1;
    if (available < 0) {
        const char *off = getenv("VEIL_NO_VAES");
        __builtin_cpu_init();
        available = !(off && off[0] == '1') && __builtin_cpu_supports("vaes") && __builtin_cpu_supports("avx2");
    }
    return available;
}
#endif

/* 1 when this CPU can run the AES-NI path, else 0 (asked once). */
int veil_aes_available(void)
{
#ifdef VEIL_AESNI
    static int available = -1;
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
    }
    return available;
#else
    return 0;
#endif
}

/* The 11 round keys (176 bytes) of a 16-byte key; -1 without AES-NI. */
int veil_aes128_expand(const uint8_t *key, uint8_t *round_keys)
{
#ifdef VEIL_AESNI
    if (!veil_aes_available())
        return -1;
    __m128i rk[11];
    aes_expand(key, rk);
    memcpy(round_keys, rk, sizeof rk);
    memset(rk, 0, sizeof rk);
    return 0;
#else
    (void)key;
    (void)round_keys;
    return -1;
#endif
}

/* nblocks (<= 2^32) keystream blocks from counter block `head` into out (16 * nblocks bytes). */
int veil_aes128_ctr(const uint8_t *round_keys, const uint8_t *head, uint64_t nblocks, uint8_t *out)
{
#ifdef VEIL_AESNI
    if (nblocks > ((uint64_t)1 << 32) || !veil_aes_available())
        return -1;
    __m128i rk[11];
    memcpy(rk, round_keys, sizeof rk);
    aes_ctr(rk, head, nblocks, out);
    return 0;
#else
    (void)round_keys;
    (void)head;
    (void)nblocks;
    (void)out;
    return -1;
#endif
}

/* One keystream per counter block in heads (k blocks of 16 bytes), nblocks each, row r under the
 * key schedule round_keys[r] and written at out + r * stride bytes: all of a kernel's draws, under
 * any of its keys, in one call. */
int veil_aes128_ctr_rows(const uint8_t *const *round_keys, const uint8_t *heads, uint64_t k, uint64_t nblocks,
                         uint8_t *out, uint64_t stride)
{
#ifdef VEIL_AESNI
    if (nblocks > ((uint64_t)1 << 32) || stride < 16 * nblocks || !veil_aes_available())
        return -1;
    __m128i rk[11];
    const uint8_t *loaded = NULL;
    for (uint64_t r = 0; r < k; r++) {
        if (round_keys[r] != loaded) {  /* rows under one key follow each other: load it once */
            loaded = round_keys[r];
            memcpy(rk, loaded, sizeof rk);
        }
        aes_ctr(rk, heads + 16 * r, nblocks, out + r * stride);
    }
    return 0;
#else
    (void)round_keys;
    (void)heads;
    (void)k;
    (void)nblocks;
    (void)out;
    (void)stride;
    return -1;
#endif
}
