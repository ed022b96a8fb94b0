/* SEOFP kernels (docs/engine.md#kernels): intadd, decode, fp32; GEMV/GEMM; LSTM, linear, conv1d,
 * norm.
 *
 * Two code paths with one reduction order (seofp.h): a portable C path and an AVX2/FMA/F16C path
 * compiled per function with __attribute__((target)), chosen at run time. Never build with
 * -ffast-math or -march=native: the first reorders sums and sets FTZ/DAZ process-wide.
 */
#define _POSIX_C_SOURCE 200809L /* pthreads under -std=c11 */
#include "seofp.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SEOFP_HAVE_AVX2_PATH 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#else
#define SEOFP_HAVE_AVX2_PATH 0
#endif

#define PREFETCH_BYTES 4096

static int g_variant = SEOFP_VARIANT_AUTO; /* resolved lazily */

int seofp_avx2_supported(void) {
#if SEOFP_HAVE_AVX2_PATH
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

static int active_variant(void) {
    if (g_variant == SEOFP_VARIANT_AUTO)
        g_variant = seofp_avx2_supported() ? SEOFP_VARIANT_AVX2 : SEOFP_VARIANT_PORTABLE;
    return g_variant;
}

int seofp_set_variant(int variant) {
    if (variant == SEOFP_VARIANT_AVX2 && !seofp_avx2_supported()) return SEOFP_EARG;
    if (variant < SEOFP_VARIANT_AUTO || variant > SEOFP_VARIANT_AVX2) return SEOFP_EARG;
    g_variant = variant;
    active_variant();
    return 0;
}

const char *seofp_variant(void) {
    return active_variant() == SEOFP_VARIANT_AVX2 ? "avx2" : "portable";
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* intadd in either layout (1-byte codes or 16-bit addends) */
static inline int is_intadd(const seofp_layer *w) {
    return w->kind == SEOFP_INTADD || w->kind == SEOFP_INTADD16 || w->kind == SEOFP_INTADD4;
}

/* bytes of one 4-row block: 4 * cols_pad elements of 4, 2, 1 or (nibbles) 1/2 byte */
static inline size_t block_bytes(const seofp_layer *w) {
    const size_t n = (size_t)w->cols_pad * 4;
    switch (w->kind) {
    case SEOFP_FP32: return n * 4;
    case SEOFP_INTADD16: return n * 2;
    case SEOFP_INTADD4: return n / 2;
    default: return n;
    }
}

/* INTADD16 stores each 16-run of a row as k 0-3, 8-11, 4-7, 12-15, so that unpacking 16 words
 * with a zero register (in-lane, 4 words per 128-bit half) yields k 0-7, then k 8-15. The
 * permutation is its own inverse: memory word i holds k = W16_PERM[i] and k sits at W16_PERM[k]. */
static const int W16_PERM[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};

/* INTADD stores each chunk's rows in pairs of 32 bytes ordered for two in-lane unpacks (bytes to
 * words, words to dwords): row 2p+rr's element k%16 = l sits at byte W8_POS(rr, l) of pair p. */
#define W8_POS(rr, l) ((rr) * 8 + ((l) / 8) * 4 + (((l) / 4) % 2) * 16 + (l) % 4)

/* INTADD4 packs a chunk (4 rows x 16 k) into 32 bytes of nibbles n = s<<3 | c: row r's lane l is
 * the nibble of byte W4_BYTE(r, l), the high one when r >= 2 (the order two in-lane unpacks
 * produce, see nib_addends). */
#define W4_BYTE(r, l) ((((l) % 8) / 4) * 16 + ((r) % 2) * 8 + ((l) / 8) * 4 + (l) % 4)

/* ------------------------------------------------------------------------------ preparation */
/* The constant the pre-pass adds to bits(x): the bias folded with the layer's codes,
 * (e_min - 1) << 23, or with IA-NET's split (ianet: weights stored as bits(w * 2^-63)) the
 * activation's 2^-64, -64 << 23; either way the products' bits are bits(x * w) (mod 2^32). */
static inline uint32_t intadd_fold(const seofp_layer *w) {
    return w->ianet ? (uint32_t)-64 << 23 : (uint32_t)(w->e_min - 1) << 23;
}

/* intadd pre-pass (docs/engine.md#guards), once per input vector: xb = bits(x) + fold and a mask
 * that is all ones only for activations whose products are all normal. Returns clamps. */
static int prep_intadd(const float *x, int cols, int cols_pad, int e_min, int e_max,
                       uint32_t fold, uint32_t *xb, uint32_t *mask, int *masked) {
    int clamps = 0, nmasked = 0; /* fold: mod 2^32, wrap-around is harmless */
    for (int k = 0; k < cols; k++) {
        uint32_t u = f2u(x[k]);
        int E = (int)((u >> 23) & 0xFF);
        if (E == 255) return SEOFP_ENONFINITE; /* NaN or inf: rejected before the kernel */
        /* zero, subnormal, or |x| * 2^e_min < 2^-126: every product is forced to +0 */
        int ok = E != 0 && E + e_min >= 1;
        if (E + e_max >= 255) { /* |x| * 2^e_max >= 2^128: clamp to the largest finite-safe x */
            u = (u & 0x80000000u) | ((uint32_t)(254 - e_max) << 23) | 0x007FFFFFu;
            clamps++;
        }
        xb[k] = u + fold;
        mask[k] = ok ? 0xFFFFFFFFu : 0u;
        nmasked += !ok;
    }
    /* padding: xb = 0 and a zero code give product bits 0 = +0 without any mask */
    for (int k = cols; k < cols_pad; k++) { xb[k] = 0; mask[k] = 0; }
    *masked = nmasked;
    return clamps;
}

/* 1 if every value is finite (exponent field not all ones) */
static int all_finite(const float *x, size_t n) {
    uint32_t bad = 0;
    for (size_t k = 0; k < n; k++) bad |= ((f2u(x[k]) & 0x7F800000u) == 0x7F800000u);
    return !bad;
}

static int prep_pad(const float *x, int cols, int cols_pad, float *xp) {
    if (!all_finite(x, (size_t)cols)) return SEOFP_ENONFINITE;
    memcpy(xp, x, (size_t)cols * sizeof(float));
    for (int k = cols; k < cols_pad; k++) xp[k] = 0.0f;
    return 0;
}

/* Exact fp16 value of a byte that is the top byte of an IEEE half. */
static float f16_top_byte(unsigned b) {
    unsigned E = (b >> 2) & 0x1F, m = (b & 3u) << 8;
    float v;
    if (E == 0) v = ldexpf((float)m, -24);
    else if (E == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(1024 + m), (int)E - 25);
    return (b & 0x80) ? -v : v;
}

/* The fixed horizontal reduction of seofp.h. */
static inline float reduce16(const float a[16]) {
    float s[8], q[4], d[2];
    for (int l = 0; l < 8; l++) s[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) q[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++) d[l] = q[l] + q[l + 2];
    return d[0] + d[1];
}

/* ------------------------------------------------------------------------- portable blocks */
/* Each block function computes the 4 row sums of one 4-row block for one prepared vector. */
/* The 32-bit addend (c << 23) + (s << 31) (0 for a zero weight) of row r, lane l of chunk j in
 * any intadd layout: 1-byte codes s<<7 | c, nibbles s<<3 | c, 16-bit addends s<<15 | c<<7. */
static uint32_t addend_c(const uint8_t *blk, int kind, int j, int r, int l) {
    if (kind == SEOFP_INTADD16)
        return (uint32_t)((const uint16_t *)blk)[(size_t)j * 64 + r * 16 + W16_PERM[l]] << 16;
    uint32_t c, s;
    if (kind == SEOFP_INTADD4) {
        uint32_t b = blk[(size_t)j * 32 + W4_BYTE(r, l)], n = (r < 2 ? b : b >> 4) & 0xFu;
        c = n & 7u, s = n >> 3;
    } else {
        uint32_t b = blk[(size_t)j * 64 + (r / 2) * 32 + W8_POS(r % 2, l)];
        c = b & 0x7Fu, s = b >> 7;
    }
    return (c << 23) + (s << 31);
}

static void block_intadd_c(const uint8_t *blk, int kind, int nchunks, const uint32_t *xb,
                           const uint32_t *mask, float out[4]) {
    for (int r = 0; r < 4; r++) {
        float a[16] = {0};
        for (int j = 0; j < nchunks; j++) {
            for (int l = 0; l < 16; l++) {
                uint32_t v = addend_c(blk, kind, j, r, l), k = (uint32_t)(j * 16 + l);
                a[l] += u2f((xb[k] + v) & mask[k] & (v ? 0xFFFFFFFFu : 0u));
            }
        }
        out[r] = reduce16(a);
    }
}

static void block_fma_c(const void *blk, int kind, int e_min, int nchunks, const float *x,
                        float out[4]) {
    float lut[256];
    if (kind == SEOFP_DECODE_F16) {
        for (unsigned b = 0; b < 256; b++) lut[b] = f16_top_byte(b);
    } else if (kind == SEOFP_DECODE_BITS) {
        for (unsigned b = 0; b < 256; b++) {
            unsigned c = b & 0x7F;
            lut[b] = c ? u2f(((b & 0x80u) << 24) | ((uint32_t)(e_min - 1 + 127 + (int)c) << 23))
                       : 0.0f;
        }
    }
    for (int r = 0; r < 4; r++) {
        float a[16] = {0};
        for (int j = 0; j < nchunks; j++) {
            for (int l = 0; l < 16; l++) {
                size_t at = (size_t)j * 64 + r * 16 + l;
                float w = kind == SEOFP_FP32 ? ((const float *)blk)[at]
                                             : lut[((const uint8_t *)blk)[at]];
                a[l] = fmaf(x[j * 16 + l], w, a[l]);
            }
        }
        out[r] = reduce16(a);
    }
}

/* ----------------------------------------------------------------------------- AVX2 blocks */
#if SEOFP_HAVE_AVX2_PATH
AVX2_FN static inline float reduce_avx2(__m256 a0, __m256 a1) {
    __m256 s = _mm256_add_ps(a0, a1);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps(d, d, 1)));
}

/* 1-byte codes b = s<<7 | c to the addends (c << 23) + (s << 31) of one row pair: unpack to words
 * b << 8, then avg(w, w & 0x8000) = (s << 15) | (c << 7) (the sign stays, the code moves down one
 * bit), then unpack to dwords a << 16: 19 operations per 32 products with the adds. */
AVX2_FN static inline __attribute__((always_inline)) void w8_addends(__m256i v, __m256i out[4]) {
    const __m256i zero = _mm256_setzero_si256(), sign = _mm256_set1_epi16((short)0x8000);
    __m256i lo = _mm256_unpacklo_epi8(zero, v), hi = _mm256_unpackhi_epi8(zero, v);
    lo = _mm256_avg_epu16(lo, _mm256_and_si256(lo, sign));
    hi = _mm256_avg_epu16(hi, _mm256_and_si256(hi, sign));
    out[0] = _mm256_unpacklo_epi16(zero, lo); /* row 2p,   k 0-7  (W8_POS) */
    out[1] = _mm256_unpackhi_epi16(zero, lo); /* row 2p,   k 8-15 */
    out[2] = _mm256_unpacklo_epi16(zero, hi); /* row 2p+1, k 0-7  */
    out[3] = _mm256_unpackhi_epi16(zero, hi); /* row 2p+1, k 8-15 */
}

/* product bits = xb + addend; zero-weight lanes masked only when the layer has zero weights
 * (padding columns have xb = 0 and addend 0: +0), guarded activations by the x mask */
AVX2_FN static inline __attribute__((always_inline)) __m256 intadd_acc(
    __m256i w, __m256i xbv, __m256i mv, __m256 acc, const int xmask, const int wzero) {
    __m256i p = _mm256_add_epi32(xbv, w);
    if (wzero) p = _mm256_andnot_si256(_mm256_cmpeq_epi32(w, _mm256_setzero_si256()), p);
    if (xmask) p = _mm256_and_si256(p, mv);
    return _mm256_add_ps(acc, _mm256_castsi256_ps(p));
}

/* Half h of a chunk of nibbles (32 bytes, 4 rows x 16 k; half h = rows 2h, 2h+1, the low nibbles
 * for h = 0) to 4 vectors of addends (c << 23) + (s << 31): two 16-entry tables give each nibble's
 * 16-bit addend (s << 15) | (c << 7) as a high and a low byte, unpacked to words, then dwords. */
AVX2_FN static inline __attribute__((always_inline)) void nib_addends(__m256i v, int h,
                                                                      __m256i out[4]) {
    const __m256i zero = _mm256_setzero_si256(), low4 = _mm256_set1_epi8(0x0F);
    /* n = s<<3 | c: high byte s<<7 | c>>1, low byte (c & 1) << 7 */
    const __m256i th = _mm256_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -128, -128, -127, -127, -126, -126,
                                        -125, -125, 0, 0, 1, 1, 2, 2, 3, 3, -128, -128, -127,
                                        -127, -126, -126, -125, -125);
    const __m256i tl = _mm256_setr_epi8(0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0,
                                        -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0,
                                        -128, 0, -128, 0, -128, 0, -128);
    __m256i nib = _mm256_and_si256(h ? _mm256_srli_epi16(v, 4) : v, low4);
    __m256i hi = _mm256_shuffle_epi8(th, nib), lo = _mm256_shuffle_epi8(tl, nib);
    __m256i w0 = _mm256_unpacklo_epi8(lo, hi), w1 = _mm256_unpackhi_epi8(lo, hi);
    out[0] = _mm256_unpacklo_epi16(zero, w0);
    out[1] = _mm256_unpackhi_epi16(zero, w0);
    out[2] = _mm256_unpacklo_epi16(zero, w1);
    out[3] = _mm256_unpackhi_epi16(zero, w1);
}

/* The 4 addend vectors of rows 2h, 2h+1 of chunk j (4 rows x 16 k) in any intadd layout:
 * w[0], w[1] are row 2h's k 0-7 and 8-15, w[2], w[3] row 2h+1's. Half a chunk at a time keeps
 * 8 accumulators, 4 addends and the activations in the 16 registers. kind is a constant after
 * inlining. */
AVX2_FN static inline __attribute__((always_inline)) void chunk_addends(
    const uint8_t *blk, int j, int h, const int kind, __m256i w[4]) {
    if (kind == SEOFP_INTADD) { /* a row pair of 32 bytes */
        w8_addends(_mm256_loadu_si256((const __m256i *)(blk + (size_t)j * 64 + h * 32)), w);
    } else if (kind == SEOFP_INTADD4) { /* 32 bytes of nibbles for all 4 rows */
        nib_addends(_mm256_loadu_si256((const __m256i *)(blk + (size_t)j * 32)), h, w);
    } else { /* INTADD16: one unpack with a zero register per 8 addends (a << 16) */
        const uint8_t *p = blk + (size_t)j * 128 + h * 64;
        const __m256i zero = _mm256_setzero_si256();
        for (int r = 0; r < 2; r++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(p + r * 32));
            w[2 * r] = _mm256_unpacklo_epi16(zero, v);
            w[2 * r + 1] = _mm256_unpackhi_epi16(zero, v);
        }
    }
}

/* One 4-row block in any intadd layout. The zero-weight mask is only computed for layers with
 * zero weights, the activation mask only for masked vectors (both constants after inlining). */
AVX2_FN static inline __attribute__((always_inline)) void block_intadd_body(
    const uint8_t *blk, int nchunks, const int kind, const uint32_t *xb, const uint32_t *mask,
    const int xmask, const int wzero, float out[4]) {
    const size_t chunk = kind == SEOFP_INTADD4 ? 32 : kind == SEOFP_INTADD16 ? 128 : 64;
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const char *p = (const char *)blk + (size_t)j * chunk;
        _mm_prefetch(p + PREFETCH_BYTES, _MM_HINT_T0);
        if (chunk > 64) _mm_prefetch(p + PREFETCH_BYTES + 64, _MM_HINT_T0);
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(xb + j * 16));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + j * 16 + 8));
        __m256i m0 = x0, m1 = x1;
        if (xmask) {
            m0 = _mm256_loadu_si256((const __m256i *)(mask + j * 16));
            m1 = _mm256_loadu_si256((const __m256i *)(mask + j * 16 + 8));
        }
        for (int h = 0; h < 2; h++) {
            __m256i w[4];
            chunk_addends(blk, j, h, kind, w);
            for (int q = 0; q < 4; q++)
                a[4 * h + q] = intadd_acc(w[q], q % 2 ? x1 : x0, q % 2 ? m1 : m0, a[4 * h + q],
                                          xmask, wzero);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = reduce_avx2(a[2 * r], a[2 * r + 1]);
}

#define INTADD_BODY(KIND)                                                                      \
    do {                                                                                       \
        if (xmask && wzero) block_intadd_body(blk, nchunks, KIND, xb, mask, 1, 1, out);        \
        else if (xmask) block_intadd_body(blk, nchunks, KIND, xb, mask, 1, 0, out);            \
        else if (wzero) block_intadd_body(blk, nchunks, KIND, xb, mask, 0, 1, out);            \
        else block_intadd_body(blk, nchunks, KIND, xb, mask, 0, 0, out);                       \
    } while (0)

/* one specialized body per layout and mask combination */
AVX2_FN static void block_intadd_avx2(const uint8_t *blk, int kind, int nchunks, const uint32_t *xb,
                                      const uint32_t *mask, int xmask, int wzero, float out[4]) {
    if (kind == SEOFP_INTADD4) INTADD_BODY(SEOFP_INTADD4);
    else if (kind == SEOFP_INTADD16) INTADD_BODY(SEOFP_INTADD16);
    else INTADD_BODY(SEOFP_INTADD);
}
#undef INTADD_BODY

AVX2_FN static void block_f16_avx2(const uint8_t *blk, int nchunks, const float *x,
                                   float out[4]) {
    const __m128i zero = _mm_setzero_si128();
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const uint8_t *p = blk + (size_t)j * 64;
        _mm_prefetch((const char *)p + PREFETCH_BYTES, _MM_HINT_T0);
        __m256 x0 = _mm256_loadu_ps(x + j * 16), x1 = _mm256_loadu_ps(x + j * 16 + 8);
        for (int r = 0; r < 4; r++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + r * 16));
            __m256 w0 = _mm256_cvtph_ps(_mm_unpacklo_epi8(zero, v)); /* byte -> high byte */
            __m256 w1 = _mm256_cvtph_ps(_mm_unpackhi_epi8(zero, v));
            a[2 * r] = _mm256_fmadd_ps(x0, w0, a[2 * r]);
            a[2 * r + 1] = _mm256_fmadd_ps(x1, w1, a[2 * r + 1]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = reduce_avx2(a[2 * r], a[2 * r + 1]);
}

AVX2_FN static void block_bits_avx2(const uint8_t *blk, int nchunks, int e_min, const float *x,
                                    float out[4]) {
    const __m256i c30 = _mm256_set1_epi32(0x40000000);
    const __m256i bias = _mm256_set1_epi32((e_min - 1 + 127) << 23);
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const uint8_t *p = blk + (size_t)j * 64;
        _mm_prefetch((const char *)p + PREFETCH_BYTES, _MM_HINT_T0);
        __m256 x0 = _mm256_loadu_ps(x + j * 16), x1 = _mm256_loadu_ps(x + j * 16 + 8);
        for (int r = 0; r < 4; r++) {
            for (int h = 0; h < 2; h++) {
                __m256i t = _mm256_cvtepu8_epi32(
                    _mm_loadl_epi64((const __m128i *)(p + r * 16 + h * 8)));
                __m256i u = _mm256_slli_epi32(t, 23);
                __m256i w = _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(u, c30));
                w = _mm256_sign_epi32(w, t); /* code 0 -> +0 */
                a[2 * r + h] = _mm256_fmadd_ps(h ? x1 : x0, _mm256_castsi256_ps(w), a[2 * r + h]);
            }
        }
    }
    for (int r = 0; r < 4; r++) out[r] = reduce_avx2(a[2 * r], a[2 * r + 1]);
}

AVX2_FN static void block_fp32_avx2(const float *blk, int nchunks, const float *x, float out[4]) {
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const float *p = blk + (size_t)j * 64;
        _mm_prefetch((const char *)p + PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + PREFETCH_BYTES + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)p + PREFETCH_BYTES + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)p + PREFETCH_BYTES + 192, _MM_HINT_T0);
        __m256 x0 = _mm256_loadu_ps(x + j * 16), x1 = _mm256_loadu_ps(x + j * 16 + 8);
        for (int r = 0; r < 4; r++) {
            a[2 * r] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(p + r * 16), a[2 * r]);
            a[2 * r + 1] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(p + r * 16 + 8), a[2 * r + 1]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = reduce_avx2(a[2 * r], a[2 * r + 1]);
}
#endif

/* --------------------------------------------------------------------------------- GEMM */
static int layer_ok(const seofp_layer *w) {
    if (!w || !w->data || w->rows < 1 || w->cols < 1) return 0;
    if (w->rows_pad != (w->rows + 3) / 4 * 4 || w->cols_pad != (w->cols + 15) / 16 * 16) return 0;
    if (w->kind < SEOFP_INTADD || w->kind > SEOFP_INTADD4) return 0;
    if (w->kind == SEOFP_INTADD4 && w->e_max - w->e_min > 6) return 0; /* codes 1..7 */
    if (w->ianet && (w->kind != SEOFP_INTADD16 || w->e_min < -63)) return 0; /* w * 2^-63 normal */
    if (w->kind != SEOFP_FP32 && (w->e_min < -126 || w->e_max > 127 || w->e_min > w->e_max))
        return 0;
    return 1;
}

static size_t prep_floats(const seofp_layer *w) {
    return (size_t)w->cols_pad * (is_intadd(w) ? 2 : 1);
}

/* one decoded 4-row panel (intadd: product addends and zero masks, 2 x 4 x cols_pad words) */
static size_t panel_floats(const seofp_layer *w) { return (size_t)w->cols_pad * 8 + 16; }

size_t seofp_gemm_scratch_floats(const seofp_layer *w, int n) {
    if (!layer_ok(w) || n < 0) return 0;
    return prep_floats(w) * (size_t)n + panel_floats(w) + (size_t)n; /* + column flags */
}

#if SEOFP_HAVE_AVX2_PATH
/* Batch > 1 (docs/engine.md#batch-larger-than-one): each 4-row block is decoded once per column
 * group into an L1 panel (fp32 weights; for intadd the integer addends bits(w) - bias folded as
 * in the pre-pass), then
 * tiles of 2 rows x NC columns run over it with 2 x NC x 2 accumulators. Every (row, column)
 * keeps its own 16 lane sums accumulated in increasing k and the same final reduction, so the
 * result is bit-identical to the GEMV path. */
#define GEMM_COL_GROUP_BYTES (160 * 1024) /* activations of one column group stay in L2 */

/* Decode a block to fp32 (decode kinds); returns the panel. */
AVX2_FN static const float *panel_fma(const seofp_layer *w, const uint8_t *blk, float *P) {
    const int cp = w->cols_pad;
    if (w->kind == SEOFP_FP32) return (const float *)blk;
    if (w->kind == SEOFP_DECODE_F16) {
        const __m128i zero = _mm_setzero_si128();
        for (int i = 0; i < cp * 4; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(blk + i));
            _mm256_store_ps(P + i, _mm256_cvtph_ps(_mm_unpacklo_epi8(zero, v)));
            _mm256_store_ps(P + i + 8, _mm256_cvtph_ps(_mm_unpackhi_epi8(zero, v)));
        }
    } else {
        const __m256i c30 = _mm256_set1_epi32(0x40000000);
        const __m256i bias = _mm256_set1_epi32((w->e_min - 1 + 127) << 23);
        for (int i = 0; i < cp * 4; i += 8) {
            __m256i t = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + i)));
            __m256i u = _mm256_slli_epi32(t, 23);
            __m256i v = _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(u, c30));
            _mm256_store_si256((__m256i *)(P + i), _mm256_sign_epi32(v, t));
        }
    }
    return P;
}

/* intadd panel (any layout): A = the addends (c << 23) + (s << 31) in k order (0 for zero
 * weights), Z (unless NULL) = all ones for non-zero weights. */
AVX2_FN static void panel_intadd(const seofp_layer *w, const uint8_t *blk, uint32_t *A,
                                 uint32_t *Z) {
    const __m256i zero = _mm256_setzero_si256(), ones = _mm256_set1_epi32(-1);
    for (int i = 0; i < w->cols_pad / 8; i++) { /* half chunks: rows 2h, 2h+1 of chunk j */
        const int j = i / 2, h = i % 2;
        __m256i v[4];
        if (w->kind == SEOFP_INTADD4) chunk_addends(blk, j, h, SEOFP_INTADD4, v);
        else if (w->kind == SEOFP_INTADD16) chunk_addends(blk, j, h, SEOFP_INTADD16, v);
        else chunk_addends(blk, j, h, SEOFP_INTADD, v);
        for (int q = 0; q < 4; q++) {
            _mm256_store_si256((__m256i *)(A + (size_t)i * 32 + 8 * q), v[q]);
            if (Z)
                _mm256_store_si256((__m256i *)(Z + (size_t)i * 32 + 8 * q),
                                   _mm256_xor_si256(_mm256_cmpeq_epi32(v[q], zero), ones));
        }
    }
}

#define TILE_BEGIN(NC)                                                                        \
    __m256 acc[2][NC][2];                                                                     \
    for (int r = 0; r < 2; r++)                                                               \
        for (int c = 0; c < NC; c++) acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();

/* rows r0, r0 + 1 of the panel times NC prepared columns: fused multiply-add */
AVX2_FN static inline __attribute__((always_inline)) void tile_fma(
    const float *P, int r0, int nchunks, const float *const *X, const int NC, float out[2][3]) {
    TILE_BEGIN(3)
    for (int j = 0; j < nchunks; j++) {
        const float *p = P + (size_t)j * 64 + r0 * 16;
        for (int h = 0; h < 2; h++) {
            __m256 w0 = _mm256_loadu_ps(p + 8 * h), w1 = _mm256_loadu_ps(p + 16 + 8 * h);
            for (int c = 0; c < NC; c++) {
                __m256 xv = _mm256_loadu_ps(X[c] + j * 16 + 8 * h);
                __asm__("" : "+x"(xv)); /* one load per column, not one per row */
                acc[0][c][h] = _mm256_fmadd_ps(xv, w0, acc[0][c][h]);
                acc[1][c][h] = _mm256_fmadd_ps(xv, w1, acc[1][c][h]);
            }
        }
    }
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < NC; c++) out[r][c] = reduce_avx2(acc[r][c][0], acc[r][c][1]);
}

/* the same tile with the integer adder: product bits = xb + A, masked when needed */
AVX2_FN static inline __attribute__((always_inline)) void tile_intadd(
    const uint32_t *A, const uint32_t *Z, int r0, int nchunks, const uint32_t *const *X,
    const uint32_t *const *M, const int NC, const int masked, float out[2][3]) {
    TILE_BEGIN(3)
    for (int j = 0; j < nchunks; j++) {
        const size_t at = (size_t)j * 64 + r0 * 16;
        for (int h = 0; h < 2; h++) {
            __m256i a0 = _mm256_load_si256((const __m256i *)(A + at + 8 * h));
            __m256i a1 = _mm256_load_si256((const __m256i *)(A + at + 16 + 8 * h));
            __m256i z0 = a0, z1 = a1;
            if (masked) {
                z0 = _mm256_load_si256((const __m256i *)(Z + at + 8 * h));
                z1 = _mm256_load_si256((const __m256i *)(Z + at + 16 + 8 * h));
            }
            for (int c = 0; c < NC; c++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(X[c] + j * 16 + 8 * h));
                __asm__("" : "+x"(xv)); /* one load per column, not one per row */
                __m256i p0 = _mm256_add_epi32(xv, a0), p1 = _mm256_add_epi32(xv, a1);
                if (masked) {
                    __m256i m = _mm256_loadu_si256((const __m256i *)(M[c] + j * 16 + 8 * h));
                    p0 = _mm256_and_si256(_mm256_and_si256(p0, z0), m);
                    p1 = _mm256_and_si256(_mm256_and_si256(p1, z1), m);
                }
                acc[0][c][h] = _mm256_add_ps(acc[0][c][h], _mm256_castsi256_ps(p0));
                acc[1][c][h] = _mm256_add_ps(acc[1][c][h], _mm256_castsi256_ps(p1));
            }
        }
    }
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < NC; c++) out[r][c] = reduce_avx2(acc[r][c][0], acc[r][c][1]);
}

AVX2_FN static void tile_fma_n(const float *P, int r0, int nchunks, const float *const *X,
                               int nc, float out[2][3]) {
    if (nc == 3) tile_fma(P, r0, nchunks, X, 3, out);
    else if (nc == 2) tile_fma(P, r0, nchunks, X, 2, out);
    else tile_fma(P, r0, nchunks, X, 1, out);
}

AVX2_FN static void tile_intadd_n(const uint32_t *A, const uint32_t *Z, int r0, int nchunks,
                                  const uint32_t *const *X, const uint32_t *const *M, int nc,
                                  int masked, float out[2][3]) {
    if (masked) {
        if (nc == 3) tile_intadd(A, Z, r0, nchunks, X, M, 3, 1, out);
        else if (nc == 2) tile_intadd(A, Z, r0, nchunks, X, M, 2, 1, out);
        else tile_intadd(A, Z, r0, nchunks, X, M, 1, 1, out);
    } else {
        if (nc == 3) tile_intadd(A, Z, r0, nchunks, X, M, 3, 0, out);
        else if (nc == 2) tile_intadd(A, Z, r0, nchunks, X, M, 2, 0, out);
        else tile_intadd(A, Z, r0, nchunks, X, M, 1, 0, out);
    }
}

/* prepared columns [i0, i1) of scratch times every block; cmask[i]: column i has masked x */
AVX2_FN static void gemm_tiles_avx2(const seofp_layer *w, const float *prep, const int *cmask,
                                    int i0, int i1, float *y, int ys_n, int ys_r, float scale,
                                    float *panel) {
    const int cp = w->cols_pad, nchunks = cp / 16, nblocks = w->rows_pad / 4;
    const size_t pf = prep_floats(w), bb = block_bytes(w);
    float *P = (float *)(((uintptr_t)panel + 31) & ~(uintptr_t)31);
    /* the zero-weight masks Z are only read by masked tiles: skip them when none is */
    int need_z = w->zeros != 0;
    for (int i = i0; i < i1; i++) need_z |= cmask[i] != 0;
    for (int b = 0; b < nblocks; b++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)b * bb;
        const float *PF = NULL;
        uint32_t *A = (uint32_t *)P, *Z = (uint32_t *)P + (size_t)cp * 4;
        const int wzero = w->zeros != 0;
        if (is_intadd(w)) panel_intadd(w, blk, A, need_z ? Z : NULL);
        else PF = panel_fma(w, blk, P);
        for (int i = i0; i < i1; i += 3) {
            const int nc = i1 - i < 3 ? i1 - i : 3;
            const float *X[3];
            const uint32_t *XB[3], *M[3];
            int masked = wzero;
            for (int c = 0; c < 3; c++) {
                const float *s = prep + (size_t)(i + (c < nc ? c : 0)) * pf;
                X[c] = s;
                XB[c] = (const uint32_t *)s;
                M[c] = (const uint32_t *)s + cp;
                if (c < nc) masked |= cmask[i + c] != 0;
            }
            for (int rp = 0; rp < 2; rp++) {
                float out[2][3];
                if (is_intadd(w))
                    tile_intadd_n(A, Z, 2 * rp, nchunks, XB, M, nc, masked, out);
                else
                    tile_fma_n(PF, 2 * rp, nchunks, X, nc, out);
                for (int r = 0; r < 2; r++) {
                    const int row = b * 4 + 2 * rp + r;
                    if (row >= w->rows) break;
                    for (int c = 0; c < nc; c++)
                        y[(size_t)(i + c) * ys_n + (size_t)row * ys_r] =
                            scale == 1.0f ? out[r][c] : out[r][c] * scale;
                }
            }
        }
    }
}
#endif

/* One call's block loop (batch 1 and the portable path): blocks [b0, b1) of every column. */
typedef struct {
    const seofp_layer *w;
    const float *prep;
    int n, ys_n, ys_r, any_masked, avx2;
    float *y;
    float scale;
} blocks_job;

static void blocks_run(const blocks_job *jb, int b0, int b1) {
    const seofp_layer *w = jb->w;
    const int cp = w->cols_pad, nchunks = cp / 16;
    const size_t pf = prep_floats(w), bb = block_bytes(w);
    for (int b = b0; b < b1; b++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)b * bb;
        for (int i = 0; i < jb->n; i++) {
            const float *s = jb->prep + (size_t)i * pf;
            float out[4];
#if SEOFP_HAVE_AVX2_PATH
            if (jb->avx2) {
                switch (w->kind) {
                case SEOFP_INTADD:
                case SEOFP_INTADD4:
                case SEOFP_INTADD16:
                    block_intadd_avx2(blk, w->kind, nchunks, (const uint32_t *)s,
                                      (const uint32_t *)s + cp, jb->any_masked, w->zeros != 0,
                                      out);
                    break;
                case SEOFP_DECODE_F16: block_f16_avx2(blk, nchunks, s, out); break;
                case SEOFP_DECODE_BITS: block_bits_avx2(blk, nchunks, w->e_min, s, out); break;
                default: block_fp32_avx2((const float *)blk, nchunks, s, out); break;
                }
            } else
#endif
            {
                if (is_intadd(w))
                    block_intadd_c(blk, w->kind, nchunks, (const uint32_t *)s,
                                   (const uint32_t *)s + cp, out);
                else
                    block_fma_c(blk, w->kind, w->e_min, nchunks, s, out);
            }
            for (int r = 0; r < 4 && b * 4 + r < w->rows; r++)
                jb->y[(size_t)i * jb->ys_n + (size_t)(b * 4 + r) * jb->ys_r] =
                    jb->scale == 1.0f ? out[r] : out[r] * jb->scale;
        }
    }
}

/* ------------------------------------------------------------ optional second thread (4.8) */
/* A batch-1 product can be split by row blocks over two threads (seofp_set_threads(2)): the
 * second one spins on a sequence number for a while after each job, then sleeps on a condition
 * variable. Rows are computed exactly as on one thread, so the result is bit-identical. One
 * caller at a time uses the pool; a concurrent caller (another Python thread, the GIL released)
 * simply runs on its own thread. */
#define POOL_MIN_WEIGHTS (64 * 1024) /* smaller products are not worth a handoff */
#define POOL_SPINS 50000             /* about a millisecond of spinning before sleeping */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned seq, done; /* posted and finished job numbers (atomics) */
    int started, busy;  /* the worker exists; a caller owns the pool (atomic) */
    blocks_job job;
    int b0, b1;
} g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, {0}, 0, 0};
static int g_threads = 1;

static inline void cpu_relax(void) {
#if SEOFP_HAVE_AVX2_PATH
    _mm_pause();
#endif
}

static void *pool_main(void *arg) {
    (void)arg;
    /* the last finished job, not the last posted one: a job posted before this thread first
     * runs is still pending and must be run */
    unsigned seen = __atomic_load_n(&g_pool.done, __ATOMIC_ACQUIRE);
    for (;;) {
        unsigned s;
        int spins = 0;
        while ((s = __atomic_load_n(&g_pool.seq, __ATOMIC_ACQUIRE)) == seen) {
            if (++spins < POOL_SPINS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&g_pool.mu);
            while ((s = __atomic_load_n(&g_pool.seq, __ATOMIC_ACQUIRE)) == seen)
                pthread_cond_wait(&g_pool.cv, &g_pool.mu);
            pthread_mutex_unlock(&g_pool.mu);
            break;
        }
        seen = s;
        blocks_run(&g_pool.job, g_pool.b0, g_pool.b1);
        __atomic_store_n(&g_pool.done, s, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* a forked child has no worker thread: start afresh there */
static void pool_atfork_child(void) {
    pthread_mutex_init(&g_pool.mu, NULL);
    pthread_cond_init(&g_pool.cv, NULL);
    g_pool.seq = g_pool.done = 0;
    g_pool.started = g_pool.busy = 0;
}

static int pool_start(void) {
    if (g_pool.started) return 1;
    static int atfork_set = 0;
    if (!atfork_set && pthread_atfork(NULL, NULL, pool_atfork_child) == 0) atfork_set = 1;
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&tid, &attr, pool_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    g_pool.started = ok;
    return ok;
}

int seofp_set_threads(int n) {
    if (n < 1 || n > 2) return SEOFP_EARG;
    if (n == 2 && !pool_start()) return SEOFP_EARG;
    g_threads = n;
    return 0;
}

int seofp_threads(void) { return g_threads; }

/* blocks [0, nb) of a batch-1 job, split over the two threads when the pool is free */
static void blocks_run_split(const blocks_job *jb, int nblocks) {
    if (g_threads < 2 || !g_pool.started ||
        (size_t)nblocks * 4 * (size_t)jb->w->cols_pad < POOL_MIN_WEIGHTS ||
        __atomic_exchange_n(&g_pool.busy, 1, __ATOMIC_ACQUIRE)) {
        blocks_run(jb, 0, nblocks);
        return;
    }
    const int mid = nblocks / 2;
    g_pool.job = *jb;
    g_pool.b0 = mid;
    g_pool.b1 = nblocks;
    const unsigned s = g_pool.seq + 1; /* only the pool's owner writes seq */
    __atomic_store_n(&g_pool.seq, s, __ATOMIC_RELEASE);
    pthread_mutex_lock(&g_pool.mu); /* wakes a sleeping worker; no lost wake-up */
    pthread_cond_signal(&g_pool.cv);
    pthread_mutex_unlock(&g_pool.mu);
    blocks_run(jb, 0, mid);
    for (int spins = 0; __atomic_load_n(&g_pool.done, __ATOMIC_ACQUIRE) != s; spins++) {
        if (spins < 1 << 16) cpu_relax();
        else sched_yield(); /* the worker is waiting for a core */
    }
    __atomic_store_n(&g_pool.busy, 0, __ATOMIC_RELEASE);
}

/* The product loops over n prepared columns (prep: n * prep_floats each, cmask: n flags);
 * scratch holds the panel. */
static void gemm_run(const seofp_layer *w, const float *prep, const int *cmask, int n, float *y,
                     int ys_n, int ys_r, float *scratch) {
    const int cp = w->cols_pad, nblocks = w->rows_pad / 4;
    const float scale = w->kind == SEOFP_DECODE_F16 ? ldexpf(1.0f, w->scale_exp) : 1.0f;
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    int any_masked = 0;
    for (int i = 0; i < n; i++) any_masked |= cmask[i] != 0;
#if SEOFP_HAVE_AVX2_PATH
    if (avx2 && n > 1) {
        /* intadd's mask words are only read by masked tiles: size groups by the activations */
        const int group = (int)(GEMM_COL_GROUP_BYTES / ((size_t)cp * 4)) / 3 * 3;
        const int g = group < 3 ? 3 : group;
        for (int i0 = 0; i0 < n; i0 += g)
            gemm_tiles_avx2(w, prep, cmask, i0, i0 + g < n ? i0 + g : n, y, ys_n, ys_r, scale,
                            scratch);
        return;
    }
#else
    (void)cp;
    (void)scratch;
#endif
    const blocks_job jb = {w, prep, n, ys_n, ys_r, any_masked, avx2, y, scale};
    if (n == 1) blocks_run_split(&jb, nblocks);
    else blocks_run(&jb, 0, nblocks);
}

int seofp_gemm(const seofp_layer *w, const float *x, int n, int ldx, float *y, int ys_n,
               int ys_r, float *scratch) {
    if (!layer_ok(w) || !x || !y || !scratch || n < 0 || ldx < w->cols) return SEOFP_EARG;
    const int cp = w->cols_pad;
    const size_t pf = prep_floats(w);
    float *prep = scratch + panel_floats(w);
    int *cmask = (int *)(prep + pf * (size_t)n); /* per column: some activation is masked */
    int clamps = 0;
    for (int i = 0; i < n; i++) {
        float *s = prep + (size_t)i * pf;
        int rc;
        cmask[i] = 0;
        if (is_intadd(w))
            rc = prep_intadd(x + (size_t)i * ldx, w->cols, cp, w->e_min, w->e_max,
                             intadd_fold(w), (uint32_t *)s, (uint32_t *)s + cp, &cmask[i]);
        else
            rc = prep_pad(x + (size_t)i * ldx, w->cols, cp, s);
        if (rc < 0) return rc;
        clamps += rc;
    }
    gemm_run(w, prep, cmask, n, y, ys_n, ys_r, scratch);
    return clamps;
}

int seofp_gemv(const seofp_layer *w, const float *x, float *y, float *scratch) {
    return w ? seofp_gemm(w, x, 1, w->cols, y, 0, 1, scratch) : SEOFP_EARG;
}

/* ------------------------------------------------------------------------ layers and LSTM */
/* expf-based formulas, the same as the engine's numpy reference */
static inline float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

static inline float act_apply(float v, int act, float slope) {
    switch (act) {
    case SEOFP_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case SEOFP_ACT_LEAKY: return v >= 0.0f ? v : v * slope;
    case SEOFP_ACT_TANH: return tanhf(v);
    case SEOFP_ACT_SIGMOID: return sigmoidf(v);
    default: return v;
    }
}

/* Gate math (one exp formula for both code paths, so they agree bit for bit): exp by range
 * reduction to r in [-ln2/2, ln2/2] and a degree-7 polynomial (Cephes expf, <= 1 ulp on this
 * range), every step an IEEE operation or a fused multiply-add; sigmoid(v) = 1 / (1 + e^-v),
 * tanh(v) = 2 / (1 + e^-2v) - 1. Inputs are clamped where e^v over- or underflows. */
#define EXP_HI 88.0f /* n <= 127: 2^n stays a normal float */
#define EXP_LO -87.0f /* n >= -126 */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

static inline float exp_c(float v) {
    v = v > EXP_HI ? EXP_HI : v < EXP_LO ? EXP_LO : v;
    float n = rintf(v * LOG2E);
    float r = fmaf(-n, LN2_HI, v);
    r = fmaf(-n, LN2_LO, r);
    float p = fmaf(EXP_P0, r, EXP_P1);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    p = fmaf(p, r * r, r) + 1.0f;
    return p * u2f((uint32_t)((int32_t)n + 127) << 23);
}

static inline float sigmoid_c(float v) { return 1.0f / (1.0f + exp_c(-v)); }
static inline float tanh_c(float v) { return 2.0f / (1.0f + exp_c(-2.0f * v)) - 1.0f; }

/* units j0 .. H-1 of one step: gx, bias, g are the (4H) gate pre-activations, c the cell state */
static void lstm_gates_c(int H, int j0, const float *gx, const float *bias, const float *g,
                         float *c, float *o) {
    for (int j = j0; j < H; j++) {
        float gi = sigmoid_c(gx[j] + bias[j] + g[j]);
        float gf = sigmoid_c(gx[H + j] + bias[H + j] + g[H + j]);
        float gg = tanh_c(gx[2 * H + j] + bias[2 * H + j] + g[2 * H + j]);
        float go = sigmoid_c(gx[3 * H + j] + bias[3 * H + j] + g[3 * H + j]);
        c[j] = gf * c[j] + gi * gg;
        o[j] = go * tanh_c(c[j]);
    }
}

#if SEOFP_HAVE_AVX2_PATH
AVX2_FN static inline __m256 neg_avx2(__m256 v) {
    return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f)); /* exactly -v, as the C path */
}

AVX2_FN static inline __m256 exp_avx2(__m256 v) {
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(neg_avx2(n), _mm256_set1_ps(LN2_HI), v);
    r = _mm256_fmadd_ps(neg_avx2(n), _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(EXP_P0), r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2_FN static inline __m256 sigmoid_avx2(__m256 v) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp_avx2(neg_avx2(v))));
}

AVX2_FN static inline __m256 tanh_avx2(__m256 v) {
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    __m256 e = exp_avx2(_mm256_mul_ps(_mm256_set1_ps(-2.0f), v));
    return _mm256_sub_ps(_mm256_div_ps(two, _mm256_add_ps(one, e)), one);
}

AVX2_FN static void lstm_gates_avx2(int H, const float *gx, const float *bias, const float *g,
                                    float *c, float *o) {
    int j = 0;
    for (; j + 8 <= H; j += 8) {
#define GATE(q) _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(gx + (q) * H + j),                 \
                                            _mm256_loadu_ps(bias + (q) * H + j)),              \
                              _mm256_loadu_ps(g + (q) * H + j))
        __m256 gi = sigmoid_avx2(GATE(0)), gf = sigmoid_avx2(GATE(1));
        __m256 gg = tanh_avx2(GATE(2)), go = sigmoid_avx2(GATE(3));
#undef GATE
        /* c = gf * c + gi * gg as two rounded products and a rounded sum, like the C path */
        __m256 cv = _mm256_add_ps(_mm256_mul_ps(gf, _mm256_loadu_ps(c + j)),
                                  _mm256_mul_ps(gi, gg));
        _mm256_storeu_ps(c + j, cv);
        _mm256_storeu_ps(o + j, _mm256_mul_ps(go, tanh_avx2(cv)));
    }
    lstm_gates_c(H, j, gx, bias, g, c, o);
}
#endif

size_t seofp_lstm_scratch_floats(const seofp_layer *wih, const seofp_layer *whh, int T) {
    if (!layer_ok(wih) || !layer_ok(whh) || T < 0) return 0;
    size_t g = seofp_gemm_scratch_floats(wih, T), s = seofp_gemm_scratch_floats(whh, 1);
    return (size_t)T * wih->rows + (size_t)whh->rows + (g > s ? g : s);
}

int seofp_lstm(const seofp_layer *wih, const seofp_layer *whh, const float *bias, int T,
               const float *x, int ldx, float *out, int ldo, float *h, float *c, int reverse,
               float *scratch) {
    if (!layer_ok(wih) || !layer_ok(whh) || !bias || !x || !out || !h || !c || !scratch || T < 0)
        return SEOFP_EARG;
    const int H = whh->cols;
    if (wih->rows != 4 * H || whh->rows != 4 * H || ldo < H) return SEOFP_EARG;
    if (!all_finite(bias, (size_t)4 * H) || !all_finite(h, (size_t)H) ||
        !all_finite(c, (size_t)H))
        return SEOFP_ENONFINITE;
    float *G = scratch, *g = scratch + (size_t)T * 4 * H, *work = g + 4 * H;
    /* all input projections at once, then only W_hh per step
       (docs/engine.md#batch-larger-than-one) */
    int rc = seofp_gemm(wih, x, T, ldx, G, 4 * H, 1, work);
    if (rc < 0) return rc;
    int clamps = rc;
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    for (int s = 0; s < T; s++) {
        const int t = reverse ? T - 1 - s : s;
        rc = seofp_gemv(whh, h, g, work);
        if (rc < 0) return rc;
        clamps += rc;
        float *o = out + (size_t)t * ldo;
#if SEOFP_HAVE_AVX2_PATH
        if (avx2) lstm_gates_avx2(H, G + (size_t)t * 4 * H, bias, g, c, o);
        else
#endif
            lstm_gates_c(H, 0, G + (size_t)t * 4 * H, bias, g, c, o);
        (void)avx2;
        memcpy(h, o, (size_t)H * sizeof(float));
    }
    return clamps;
}

/* A unidirectional stack: two T x H activation buffers between layers, then one layer's
 * seofp_lstm scratch (the largest of any layer). */
size_t seofp_lstm_stack_scratch_floats(const seofp_layer *const *wih,
                                       const seofp_layer *const *whh, int layers, int T) {
    if (!wih || !whh || layers < 1 || T < 0) return 0;
    size_t most = 0;
    for (int l = 0; l < layers; l++) {
        size_t s = seofp_lstm_scratch_floats(wih[l], whh[l], T);
        if (s == 0) return 0;
        most = s > most ? s : most;
    }
    return 2 * (size_t)T * whh[0]->cols + most;
}

/* Every layer in one call (the streaming step: Python crosses into C once per chunk). Each layer
 * is exactly seofp_lstm on the previous layer's output, so the result is bit-identical to calling
 * the layers one by one. */
int seofp_lstm_stack(const seofp_layer *const *wih, const seofp_layer *const *whh,
                     const float *const *bias, int layers, int T, const float *x, int ldx,
                     float *out, float *state, float *scratch) {
    if (!wih || !whh || !bias || !x || !out || !state || !scratch || layers < 1 || T < 0)
        return SEOFP_EARG;
    for (int l = 0; l < layers; l++)
        if (!layer_ok(wih[l]) || !layer_ok(whh[l]) || whh[l]->cols != whh[0]->cols ||
            (l ? wih[l]->cols != whh[0]->cols : ldx < wih[0]->cols))
            return SEOFP_EARG;
    const int H = whh[0]->cols;
    float *buf[2] = {scratch, scratch + (size_t)T * H}, *work = scratch + 2 * (size_t)T * H;
    const float *in = x;
    int in_ld = ldx, clamps = 0;
    for (int l = 0; l < layers; l++) {
        float *o = l == layers - 1 ? out : buf[l & 1];
        int rc = seofp_lstm(wih[l], whh[l], bias[l], T, in, in_ld, o, H,
                            state + (size_t)2 * l * H, state + (size_t)(2 * l + 1) * H, 0, work);
        if (rc < 0) return rc;
        clamps += rc;
        in = o;
        in_ld = H;
    }
    return clamps;
}

int seofp_linear(const seofp_layer *w, const float *bias, int n, const float *x, float *y,
                 int act, float slope, float *scratch) {
    if (!layer_ok(w) || !y || n < 0) return SEOFP_EARG;
    int rc = seofp_gemm(w, x, n, w->cols, y, w->rows, 1, scratch);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * w->rows;
        for (int r = 0; r < w->rows; r++)
            row[r] = act_apply(bias ? row[r] + bias[r] : row[r], act, slope);
    }
    return rc;
}

#define CONV_TB 48 /* time steps per im2col block (a multiple of the 3-column tile) */

/* Scratch: the prepared input (intadd: bits and masks, 2 * cin * T words; else none), per time
 * step a "window has a masked activation" flag, then CONV_TB prepared im2col columns. */
size_t seofp_conv1d_scratch_floats(const seofp_layer *w, int ksize, int T) {
    if (!layer_ok(w) || ksize < 1 || T < 0) return 0;
    const size_t xin = is_intadd(w) ? 2 * (size_t)(w->cols / ksize) * T : 0;
    return xin + (size_t)T + 1 + seofp_gemm_scratch_floats(w, CONV_TB);
}

/* im2col straight into the prepared-column layout: column i of block t0 holds, for each input
 * channel ci, the window x[ci][t - pad .. t - pad + ksize) (zero outside), then zero padding
 * to cols_pad. For intadd both words (bits, mask) are copied from the prepared input. */
static void conv_columns(const seofp_layer *w, int cin, int T, int ksize, const uint32_t *src,
                         size_t plane, int t0, int nb, const int *need_mask, float *prep) {
    const int pad = ksize / 2, K = w->cols, cp = w->cols_pad;
    const int words = is_intadd(w) ? 2 : 1;
    const size_t pf = prep_floats(w);
    for (int i = 0; i < nb; i++) {
        const int t = t0 + i, lo = t - pad, hi = t - pad + ksize;
        for (int q = 0; q < (need_mask[i] ? words : 1); q++) {
            uint32_t *col = (uint32_t *)(prep + (size_t)i * pf) + (size_t)q * cp;
            const uint32_t *xs = src + (size_t)q * plane;
            for (int ci = 0; ci < cin; ci++) {
                const uint32_t *xc = xs + (size_t)ci * T;
                uint32_t *dst = col + (size_t)ci * ksize;
                if (lo >= 0 && hi <= T) {
                    memcpy(dst, xc + lo, (size_t)ksize * 4); /* interior */
                } else {
                    for (int j = 0; j < ksize; j++) {
                        int tt = lo + j;
                        dst[j] = (tt >= 0 && tt < T) ? xc[tt] : 0u; /* +0, masked for intadd */
                    }
                }
            }
            memset(col + K, 0, (size_t)(cp - K) * 4);
        }
    }
}

int seofp_conv1d(const seofp_layer *w, const float *bias, int cin, int T, int ksize,
                 const float *x, float *y, float *scratch) {
    if (!layer_ok(w) || !x || !y || !scratch || T < 1 || ksize < 1 || ksize % 2 == 0 ||
        w->cols != cin * ksize)
        return SEOFP_EARG;
    const int pad = ksize / 2, intadd = is_intadd(w);
    const size_t plane = (size_t)cin * T;
    /* each input value is prepared once (not once per window it appears in) */
    uint32_t *xin = (uint32_t *)scratch;
    int *bad = (int *)(scratch + (intadd ? 2 * plane : 0)); /* masked activations up to t */
    float *gemm_scratch = (float *)(bad + T + 1);
    float *prep = gemm_scratch + panel_floats(w);
    int *cmask = (int *)(prep + prep_floats(w) * CONV_TB);
    const uint32_t *src = (const uint32_t *)x;
    int clamps = 0;
    if (!all_finite(x, plane)) return SEOFP_ENONFINITE;
    for (int t = 0; t <= T; t++) bad[t] = 0;
    if (intadd) {
        for (int ci = 0; ci < cin; ci++) {
            int masked = 0;
            uint32_t *m = xin + plane + (size_t)ci * T;
            clamps += prep_intadd(x + (size_t)ci * T, T, T, w->e_min, w->e_max,
                                  intadd_fold(w), xin + (size_t)ci * T, m, &masked);
            if (masked)
                for (int t = 0; t < T; t++) bad[t + 1] += m[t] == 0;
        }
        for (int t = 0; t < T; t++) bad[t + 1] += bad[t]; /* prefix counts over time */
        src = xin;
    }
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    int need_mask[CONV_TB];
    for (int t0 = 0; t0 < T; t0 += CONV_TB) {
        const int nb = T - t0 < CONV_TB ? T - t0 : CONV_TB;
        for (int i = 0; i < nb; i++) {
            const int t = t0 + i, lo = t - pad, hi = t - pad + ksize;
            /* a window reaching past either end holds zeros: masked for intadd */
            cmask[i] = intadd && (lo < 0 || hi > T ||
                                  bad[hi < T ? hi : T] - bad[lo > 0 ? lo : 0] > 0);
        }
        /* the AVX2 GEMM reads a column's mask words only when its 3-column tile (or, at batch
         * 1, the column itself) is masked or the layer has zero weights: the others are not
         * copied (half the im2col bytes); the portable path reads every mask */
        for (int i = 0; i < nb; i++) {
            const int g = i / 3 * 3;
            need_mask[i] = !avx2 || w->zeros || cmask[g] || (g + 1 < nb && cmask[g + 1]) ||
                           (g + 2 < nb && cmask[g + 2]);
        }
        conv_columns(w, cin, T, ksize, src, plane, t0, nb, need_mask, prep);
        gemm_run(w, prep, cmask, nb, y + t0, 1, T, gemm_scratch);
    }
    if (bias)
        for (int o = 0; o < w->rows; o++)
            for (int t = 0; t < T; t++) y[(size_t)o * T + t] += bias[o];
    return clamps;
}

int seofp_channel_norm_act(int C, int T, float *x, const float *mean, const float *var,
                           const float *gamma, const float *beta, float eps, int act,
                           float slope) {
    if (!x || C < 0 || T < 0 || (mean && (!var || !gamma || !beta))) return SEOFP_EARG;
    for (int ch = 0; ch < C; ch++) {
        float *row = x + (size_t)ch * T;
        if (mean) {
            /* torch's inference form: alpha = gamma / sqrt(var + eps), y = x * alpha + shift */
            const float alpha = gamma[ch] / sqrtf(var[ch] + eps);
            const float shift = beta[ch] - mean[ch] * alpha;
            for (int t = 0; t < T; t++) row[t] = act_apply(row[t] * alpha + shift, act, slope);
        } else {
            for (int t = 0; t < T; t++) row[t] = act_apply(row[t], act, slope);
        }
    }
    return 0;
}
