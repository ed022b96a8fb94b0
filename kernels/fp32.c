/* SEOFP kernels, the fp32 control (seofp.h: SEOFP_FP32): its AVX2 block (the portable path is
 * decode.c's FMA block; batch > 1 runs gemm_tiles.c's tiles, as every kind). */
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

#endif
