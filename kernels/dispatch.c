/* SEOFP kernels, dispatch (docs in seofp.h, file map in seofp_internal.h): the code path
 * chosen at run time, argument checks, the GEMM/GEMV entry points and their loops.
 *
 * Two code paths with one reduction order (seofp.h): a portable C path and an AVX2/FMA/F16C path
 * compiled per function with __attribute__((target)), chosen at run time. Never build with
 * -ffast-math or -march=native: the first reorders sums and sets FTZ/DAZ process-wide.
 */
#include "seofp_internal.h"

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

SEOFP_INTERNAL int active_variant(void) {
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

/* 1 if every value is finite (exponent field not all ones) */
SEOFP_INTERNAL int all_finite(const float *x, size_t n) {
    uint32_t bad = 0;
    for (size_t k = 0; k < n; k++) bad |= ((f2u(x[k]) & 0x7F800000u) == 0x7F800000u);
    return !bad;
}

SEOFP_INTERNAL int prep_pad(const float *x, int cols, int cols_pad, float *xp) {
    if (!all_finite(x, (size_t)cols)) return SEOFP_ENONFINITE;
    memcpy(xp, x, (size_t)cols * sizeof(float));
    for (int k = cols; k < cols_pad; k++) xp[k] = 0.0f;
    return 0;
}

/* --------------------------------------------------------------------------------- GEMM */
SEOFP_INTERNAL int layer_ok(const seofp_layer *w) {
    if (!w || !w->data || w->rows < 1 || w->cols < 1) return 0;
    if (w->rows_pad != (w->rows + 3) / 4 * 4 || w->cols_pad != (w->cols + 15) / 16 * 16) return 0;
    if (w->kind < SEOFP_INTADD || w->kind > SEOFP_INTADD4) return 0;
    if (w->kind == SEOFP_INTADD4 && w->e_max - w->e_min > 6) return 0; /* codes 1..7 */
    if (w->ianet && (w->kind != SEOFP_INTADD16 || w->e_min < -63)) return 0; /* w * 2^-63 normal */
    if (w->kind != SEOFP_FP32 && (w->e_min < -126 || w->e_max > 127 || w->e_min > w->e_max))
        return 0;
    return sparse_ok(w);
}

size_t seofp_gemm_scratch_floats(const seofp_layer *w, int n) {
    if (!layer_ok(w) || n < 0) return 0;
    return prep_floats(w) * (size_t)n + panel_floats(w) + (size_t)n; /* + column flags */
}

/* Batch > 1 (docs/engine.md#batch-larger-than-one): gemm_tiles.c for every kind */
#define GEMM_COL_GROUP_BYTES (160 * 1024) /* activations of one column group stay in L2 */

SEOFP_INTERNAL void blocks_run(const blocks_job *jb, int b0, int b1) {
#if SEOFP_HAVE_AVX2_PATH
    if (jb->rec) { /* recurrent.c's product (either thread of blocks_run_split) */
        rec_blocks_avx2(jb, b0, b1);
        return;
    }
#endif
    const seofp_layer *w = jb->w;
    const int cp = w->cols_pad, nchunks = cp / 16;
    const size_t pf = prep_floats(w), bb = block_bytes(w);
    for (int b = b0; b < b1; b++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)b * bb;
        for (int i = 0; i < jb->n; i++) {
            const float *s = jb->prep + (size_t)i * pf;
            float out[4];
#if SEOFP_HAVE_AVX2_PATH
            if (jb->xw) {
                block_intadd16w_avx2(blk, nchunks, jb->xw, out);
            } else if (jb->avx2) {
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


/* The product loops over n prepared columns (prep: n * prep_floats each, cmask: n flags);
 * scratch holds the panel. */
SEOFP_INTERNAL void gemm_run(const seofp_layer *w, const float *prep, const int *cmask, int n, float *y,
                     int ys_n, int ys_r, float *scratch) {
    const int cp = w->cols_pad, nblocks = w->rows_pad / 4;
    const float scale = w->kind == SEOFP_DECODE_F16 ? ldexpf(1.0f, w->scale_exp) : 1.0f;
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    int any_masked = 0;
    for (int i = 0; i < n; i++) any_masked |= cmask[i] != 0;
#if SEOFP_HAVE_AVX2_PATH
    if (avx2 && n >= SPARSE_MIN_COLS && w->sparse) { /* pruned intadd: zeros skipped (sparse.c) */
        gemm_intadd_sparse(w, (const uint32_t *)prep, cmask, n, y, ys_n, ys_r, scratch);
        return;
    }
    if (avx2 && n > 1) {
        /* intadd's mask words are only read by masked tiles: size groups by the activations */
        const int group = (int)(GEMM_COL_GROUP_BYTES / ((size_t)cp * 4)) / 3 * 3;
        const int g = group < 3 ? 3 : group;
        for (int i0 = 0; i0 < n; i0 += g) {
            const int i1 = i0 + g < n ? i0 + g : n;
            gemm_tiles4(w, (const uint32_t *)prep, cmask, i0, i1, y, ys_n, ys_r, scale,
                        scratch);
        }
        return;
    }
#else
    (void)cp;
    (void)scratch;
#endif
    blocks_job jb = {w, prep, n, ys_n, ys_r, any_masked, avx2, y, scale, NULL, 0};
#if SEOFP_HAVE_AVX2_PATH
    if (avx2 && n == 1 && w->kind == SEOFP_INTADD16 && !any_masked && !w->zeros) {
        /* the panel area is free at batch 1: the activations' halves go there */
        uint16_t *xw = (uint16_t *)(((uintptr_t)scratch + 31) & ~(uintptr_t)31);
        xw_prep_avx2((const uint32_t *)prep, cp, xw);
        jb.xw = xw;
    }
#endif
    if (n == 1) blocks_run_split(&jb, nblocks);
    else blocks_run(&jb, 0, nblocks);
}

int seofp_gemm(const seofp_layer *w, const float *x, int n, int ldx, float *y, int ys_n,
               int ys_r, float *scratch) {
    if (!layer_ok(w) || !x || !y || !scratch || n < 0 || ldx < w->cols) return SEOFP_EARG;
#if SEOFP_HAVE_AVX2_PATH
    /* batch 1, intadd, contiguous y: the recurrent product path (same bits) */
    if (n == 1 && ys_r == 1 && is_intadd(w) && active_variant() == SEOFP_VARIANT_AVX2)
        return rec_gemv_avx2(w, x, y, scratch);
#endif
    const int cp = w->cols_pad;
    const size_t pf = prep_floats(w);
    float *prep = prep_area(w, scratch);
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
