/* SEOFP kernels, decode (seofp.h: SEOFP_DECODE_F16, SEOFP_DECODE_BITS): codes expanded to fp32
 * then fused multiply-adds; the portable FMA block also runs the fp32 control. */
#include "seofp_internal.h"

/* Exact fp16 value of a byte that is the top byte of an IEEE half. */
SEOFP_INTERNAL float f16_top_byte(unsigned b) {
    unsigned E = (b >> 2) & 0x1F, m = (b & 3u) << 8;
    float v;
    if (E == 0) v = ldexpf((float)m, -24);
    else if (E == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(1024 + m), (int)E - 25);
    return (b & 0x80) ? -v : v;
}


SEOFP_INTERNAL void block_fma_c(const void *blk, int kind, int e_min, int nchunks, const float *x,
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

#if SEOFP_HAVE_AVX2_PATH
AVX2_FN SEOFP_INTERNAL void block_f16_avx2(const uint8_t *blk, int nchunks, const float *x,
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

AVX2_FN SEOFP_INTERNAL void block_bits_avx2(const uint8_t *blk, int nchunks, int e_min, const float *x,
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

/* Decode a block to fp32 (decode kinds); returns the panel. */
AVX2_FN SEOFP_INTERNAL const float *panel_fma(const seofp_layer *w, const uint8_t *blk, float *P) {
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
#endif
