/* XXH64 (Yann Collet's xxHash, 64-bit variant), written from its published
 * specification, streaming, for two seeds in one pass.
 *
 * archfit fingerprints the training data of every fit. SHA-256 ran at
 * ~1.4 GB/s here: a millisecond per megabyte, a fifth of a small network's
 * whole fit. XXH64 is a non-cryptographic hash built for this (the Hugging
 * Face `datasets` library fingerprints with it too); two seeds give 128 bits,
 * so two different data sets share a fingerprint with probability ~2^-128
 * unless someone crafts them to. Each seed's value equals the reference
 * XXH64 of the same bytes (checked against published values in the tests).
 */
#ifndef ARCHFIT_XXH64_H
#define ARCHFIT_XXH64_H

#include <stdint.h>
#include <string.h>
#include <stddef.h>

#define ARCHFIT_P1 0x9E3779B185EBCA87ULL
#define ARCHFIT_P2 0xC2B2AE3D27D4EB4FULL
#define ARCHFIT_P3 0x165667B19E3779F9ULL
#define ARCHFIT_P4 0x85EBCA77C2B2AE63ULL
#define ARCHFIT_P5 0x27D4EB2F165667C5ULL

typedef struct {
    uint64_t seed[2];
    uint64_t v[2][4];       /* four lanes per seed */
    uint64_t total;         /* bytes hashed so far */
    unsigned char buf[32];  /* an incomplete stripe */
    size_t used;
} archfit_xxh64x2;

static inline uint64_t archfit_rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t archfit_read64(const unsigned char* p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint32_t archfit_read32(const unsigned char* p) {
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t archfit_xxh_round(uint64_t acc, uint64_t input) {
    acc += input * ARCHFIT_P2;
    acc = archfit_rotl64(acc, 31);
    return acc * ARCHFIT_P1;
}

static inline uint64_t archfit_xxh_merge(uint64_t acc, uint64_t lane) {
    acc ^= archfit_xxh_round(0, lane);
    return acc * ARCHFIT_P1 + ARCHFIT_P4;
}

static inline void archfit_xxh64x2_init(archfit_xxh64x2* s, uint64_t seed0, uint64_t seed1) {
    memset(s, 0, sizeof(*s));
    s->seed[0] = seed0;
    s->seed[1] = seed1;
    for (int h = 0; h < 2; h++) {
        const uint64_t seed = s->seed[h];
        s->v[h][0] = seed + ARCHFIT_P1 + ARCHFIT_P2;
        s->v[h][1] = seed + ARCHFIT_P2;
        s->v[h][2] = seed;
        s->v[h][3] = seed - ARCHFIT_P1;
    }
}

/* One 32-byte stripe into both seeds' lanes: eight independent chains. */
static inline void archfit_xxh64x2_stripe(archfit_xxh64x2* s, const unsigned char* p) {
    const uint64_t a = archfit_read64(p), b = archfit_read64(p + 8),
                   c = archfit_read64(p + 16), d = archfit_read64(p + 24);
    s->v[0][0] = archfit_xxh_round(s->v[0][0], a);
    s->v[1][0] = archfit_xxh_round(s->v[1][0], a);
    s->v[0][1] = archfit_xxh_round(s->v[0][1], b);
    s->v[1][1] = archfit_xxh_round(s->v[1][1], b);
    s->v[0][2] = archfit_xxh_round(s->v[0][2], c);
    s->v[1][2] = archfit_xxh_round(s->v[1][2], c);
    s->v[0][3] = archfit_xxh_round(s->v[0][3], d);
    s->v[1][3] = archfit_xxh_round(s->v[1][3], d);
}

static inline void archfit_xxh64x2_update(archfit_xxh64x2* s, const void* data, size_t len) {
    const unsigned char* p = (const unsigned char*)data;
    s->total += len;
    if (s->used) {                      /* complete the pending stripe first */
        size_t take = 32 - s->used < len ? 32 - s->used : len;
        memcpy(s->buf + s->used, p, take);
        s->used += take;
        p += take;
        len -= take;
        if (s->used < 32) return;
        archfit_xxh64x2_stripe(s, s->buf);
        s->used = 0;
    }
    for (; len >= 32; p += 32, len -= 32) archfit_xxh64x2_stripe(s, p);
    memcpy(s->buf, p, len);
    s->used = len;
}

static inline uint64_t archfit_xxh64x2_digest(const archfit_xxh64x2* s, int h) {
    uint64_t acc;
    const unsigned char* p = s->buf;
    size_t left = s->used;
    if (s->total >= 32) {
        const uint64_t* v = s->v[h];
        acc = archfit_rotl64(v[0], 1) + archfit_rotl64(v[1], 7) + archfit_rotl64(v[2], 12) +
              archfit_rotl64(v[3], 18);
        for (int i = 0; i < 4; i++) acc = archfit_xxh_merge(acc, v[i]);
    } else {
        acc = s->seed[h] + ARCHFIT_P5;
    }
    acc += s->total;
    for (; left >= 8; p += 8, left -= 8) {
        acc ^= archfit_xxh_round(0, archfit_read64(p));
        acc = archfit_rotl64(acc, 27) * ARCHFIT_P1 + ARCHFIT_P4;
    }
    if (left >= 4) {
        acc ^= (uint64_t)archfit_read32(p) * ARCHFIT_P1;
        acc = archfit_rotl64(acc, 23) * ARCHFIT_P2 + ARCHFIT_P3;
        p += 4;
        left -= 4;
    }
    for (; left > 0; p++, left--) {
        acc ^= (uint64_t)(*p) * ARCHFIT_P5;
        acc = archfit_rotl64(acc, 11) * ARCHFIT_P1;
    }
    acc ^= acc >> 33;
    acc *= ARCHFIT_P2;
    acc ^= acc >> 29;
    acc *= ARCHFIT_P3;
    acc ^= acc >> 32;
    return acc;
}

#undef ARCHFIT_P1
#undef ARCHFIT_P2
#undef ARCHFIT_P3
#undef ARCHFIT_P4
#undef ARCHFIT_P5
#endif
