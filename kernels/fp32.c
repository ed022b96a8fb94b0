/* SEOFP kernels, the fp32 control (seofp.h: SEOFP_FP32): its AVX2 block and GEMM tile (the
 * portable path is decode.c's FMA block). */
#include "seofp_internal.h"

#if SEOFP_HAVE_AVX2_PATH
AVX2_FN SEOFP_INTERNAL void block_fp32_avx2(const float *blk, int nchunks, const float *x, float out[4]) {
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

AVX2_FN SEOFP_INTERNAL void tile_fma_n(const float *P, int r0, int nchunks, const float *const *X,
                               int nc, float out[2][3]) {
    if (nc == 3) tile_fma(P, r0, nchunks, X, 3, out);
    else if (nc == 2) tile_fma(P, r0, nchunks, X, 2, out);
    else tile_fma(P, r0, nchunks, X, 1, out);
}
#endif
