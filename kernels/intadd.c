/* SEOFP kernels, the integer adder (seofp.h: SEOFP_INTADD, SEOFP_INTADD16, SEOFP_INTADD4):
 * the activation pre-pass, the portable block, the AVX2 blocks of every layout, the batch > 1
 * panels and tiles. */
#include "seofp_internal.h"

/* intadd pre-pass (docs/engine.md#guards), once per input vector: xb = bits(x) + fold and a mask that is
 * all ones only for activations whose products are all normal. Returns clamps. */
static int prep_intadd_c(const float *x, int cols, int cols_pad, int e_min, int e_max,
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

#if SEOFP_HAVE_AVX2_PATH
/* The same pre-pass 8 activations at a time (exact integer operations, so the same words as
 * prep_intadd_c); the remainder and the padding by prep_intadd_c. */
AVX2_FN static int prep_intadd_avx2(const float *x, int cols, int cols_pad, int e_min, int e_max,
                                    uint32_t fold, uint32_t *xb, uint32_t *mask, int *masked) {
    const __m256i ff = _mm256_set1_epi32(0xFF), zero = _mm256_setzero_si256();
    const __m256i lo = _mm256_set1_epi32(-e_min), hi = _mm256_set1_epi32(254 - e_max);
    const __m256i sign = _mm256_set1_epi32((int)0x80000000u);
    const __m256i top = _mm256_set1_epi32((int)(((uint32_t)(254 - e_max) << 23) | 0x007FFFFFu));
    const __m256i fv = _mm256_set1_epi32((int)fold);
    __m256i bad = zero;
    int clamps = 0, nmasked = 0, k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(x + k));
        __m256i E = _mm256_and_si256(_mm256_srli_epi32(u, 23), ff);
        bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(E, ff));
        /* ok: E != 0 and E + e_min >= 1; clamp: E + e_max >= 255 */
        __m256i ok = _mm256_andnot_si256(_mm256_cmpeq_epi32(E, zero), _mm256_cmpgt_epi32(E, lo));
        __m256i cl = _mm256_cmpgt_epi32(E, hi);
        u = _mm256_blendv_epi8(u, _mm256_or_si256(_mm256_and_si256(u, sign), top), cl);
        _mm256_storeu_si256((__m256i *)(xb + k), _mm256_add_epi32(u, fv));
        _mm256_storeu_si256((__m256i *)(mask + k), ok);
        clamps += __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(cl)));
        nmasked += 8 - __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(ok)));
    }
    if (!_mm256_testz_si256(bad, bad)) return SEOFP_ENONFINITE;
    int rest = 0;
    int rc = prep_intadd_c(x + k, cols - k, cols_pad - k, e_min, e_max, fold, xb + k, mask + k,
                           &rest);
    if (rc < 0) return rc;
    *masked = nmasked + rest;
    return clamps + rc;
}
#endif

SEOFP_INTERNAL int prep_intadd(const float *x, int cols, int cols_pad, int e_min, int e_max,
                               uint32_t fold, uint32_t *xb, uint32_t *mask, int *masked) {
#if SEOFP_HAVE_AVX2_PATH
    if (active_variant() == SEOFP_VARIANT_AVX2)
        return prep_intadd_avx2(x, cols, cols_pad, e_min, e_max, fold, xb, mask, masked);
#endif
    return prep_intadd_c(x, cols, cols_pad, e_min, e_max, fold, xb, mask, masked);
}

/* ------------------------------------------------------------------------- portable blocks */
/* Each block function computes the 4 row sums of one 4-row block for one prepared vector. */
/* The 32-bit addend (c << 23) + (s << 31) (0 for a zero weight) of row r, lane l of chunk j in
 * any intadd layout: 1-byte codes s<<7 | c, nibbles s<<3 | c, 16-bit addends s<<15 | c<<7. */
SEOFP_INTERNAL uint32_t addend_c(const uint8_t *blk, int kind, int j, int r, int l) {
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

SEOFP_INTERNAL void block_intadd_c(const uint8_t *blk, int kind, int nchunks, const uint32_t *xb,
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

#if SEOFP_HAVE_AVX2_PATH
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

/* INTADD16 at batch 1 without masks, by 16-bit adds: the addend a << 16 has zero low bits, so
 * bits(x) + fold + (a << 16) = (hi + a) << 16 | lo with (hi, lo) the halves of xb: one vpaddw
 * makes the high halves of 16 products, two unpacks with the low halves give the 32-bit
 * products in k order (the W16_PERM order of xw, see xw_prep_avx2). The same bits as the dword
 * add of block_intadd_body (mod 2^32 either way), accumulated in the same lanes and order: 5
 * operations per 16 products instead of 7. xw holds, per chunk, 16 low then 16 high halves. */
AVX2_FN SEOFP_INTERNAL void xw_prep_avx2(const uint32_t *xb, int cols_pad, uint16_t *xw) {
    const __m256i low = _mm256_set1_epi32(0xFFFF);
    for (int j = 0; j < cols_pad / 16; j++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(xb + j * 16));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + j * 16 + 8));
        /* in-lane packs: k 0-3, 8-11, 4-7, 12-15 = W16_PERM (exact: every value <= 0xFFFF) */
        __m256i lo = _mm256_packus_epi32(_mm256_and_si256(x0, low), _mm256_and_si256(x1, low));
        __m256i hi = _mm256_packus_epi32(_mm256_srli_epi32(x0, 16), _mm256_srli_epi32(x1, 16));
        _mm256_storeu_si256((__m256i *)(xw + (size_t)j * 32), lo);
        _mm256_storeu_si256((__m256i *)(xw + (size_t)j * 32 + 16), hi);
    }
}

AVX2_FN SEOFP_INTERNAL void block_intadd16w_avx2(const uint8_t *blk, int nchunks, const uint16_t *xw,
                                         float out[4]) {
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const uint8_t *p = blk + (size_t)j * 128;
        _mm_prefetch((const char *)p + PREFETCH_BYTES, _MM_HINT_T0);
        _mm_prefetch((const char *)p + PREFETCH_BYTES + 64, _MM_HINT_T0);
        const __m256i xl = _mm256_loadu_si256((const __m256i *)(xw + (size_t)j * 32));
        const __m256i xh = _mm256_loadu_si256((const __m256i *)(xw + (size_t)j * 32 + 16));
        for (int r = 0; r < 4; r++) {
            __m256i hi = _mm256_add_epi16(xh, _mm256_loadu_si256((const __m256i *)(p + r * 32)));
            a[2 * r] = _mm256_add_ps(a[2 * r], _mm256_castsi256_ps(_mm256_unpacklo_epi16(xl, hi)));
            a[2 * r + 1] = _mm256_add_ps(a[2 * r + 1],
                                         _mm256_castsi256_ps(_mm256_unpackhi_epi16(xl, hi)));
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
AVX2_FN SEOFP_INTERNAL void block_intadd_avx2(const uint8_t *blk, int kind, int nchunks, const uint32_t *xb,
                                      const uint32_t *mask, int xmask, int wzero, float out[4]) {
    if (kind == SEOFP_INTADD4) INTADD_BODY(SEOFP_INTADD4);
    else if (kind == SEOFP_INTADD16) INTADD_BODY(SEOFP_INTADD16);
    else INTADD_BODY(SEOFP_INTADD);
}
#undef INTADD_BODY

/* intadd panel (any layout): A = the addends (c << 23) + (s << 31) in k order (0 for zero
 * weights), Z (unless NULL) = all ones for non-zero weights. */
AVX2_FN SEOFP_INTERNAL void panel_intadd(const seofp_layer *w, const uint8_t *blk, uint32_t *A,
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
#endif
