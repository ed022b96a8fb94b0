/* SEOFP kernels, the batch > 1 integer-adder product (docs/engine.md#batch-larger-than-one):
 * each 4-row block is decoded once per column group into an L1 panel of 32-bit addends (and,
 * for layers with zero weights, zero masks; panel_intadd in intadd.c), then tiles of 4 rows x 3
 * columns run over it.
 *
 * Order (the reduction of seofp.h, bit-identical to the batch-1 blocks): every (row, column)
 * keeps 16 lane sums a[l], each accumulated in increasing k. The lane sums of lanes 0-7 and of
 * lanes 8-15 never meet before the final reduction, so a tile runs the k loop twice, once per
 * half of each 16-run: 12 accumulators per pass (4 rows x 3 columns) instead of 24, the panel
 * row and the activation loaded once per 12 and per 4 products. The horizontal reductions of 8
 * outputs run at once as a transpose-add tree (reduce8) that forms exactly s[l] = a[l] + a[l+8],
 * q[l] = s[l] + s[l+4], d[l] = q[l] + q[l+2], y = d[0] + d[1] per output.
 *
 * Masks (both constants after inlining, one specialized loop per combination): zero-weight masks
 * only for layers that have zero weights (seofp_layer.zeros), activation masks only for tiles
 * with a masked activation; each costs one AND per 8 products.
 */
#include "seofp_internal.h"

#if SEOFP_HAVE_AVX2_PATH
/* Exact reduction of 8 outputs. s[o] holds output o's s[l] = a[l] + a[l+8] (l < 8); returns
 * y(s0), y(s2), y(s4), y(s6) in the low half and y(s1), y(s3), y(s5), y(s7) in the high half. */
AVX2_FN static inline __attribute__((always_inline)) __m256 reduce8(const __m256 s[8]) {
    __m256 q[4];
    for (int i = 0; i < 4; i++) /* q[l] = s[l] + s[l+4]: [q(2i) | q(2i+1)] */
        q[i] = _mm256_add_ps(_mm256_permute2f128_ps(s[2 * i], s[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(s[2 * i], s[2 * i + 1], 0x31));
    /* d[l] = q[l] + q[l+2]: lanes [d0 d1 of output 4i, d0 d1 of 4i+2 | 4i+1, 4i+3] */
    __m256 d0 = _mm256_add_ps(_mm256_shuffle_ps(q[0], q[1], 0x44), _mm256_shuffle_ps(q[0], q[1], 0xEE));
    __m256 d1 = _mm256_add_ps(_mm256_shuffle_ps(q[2], q[3], 0x44), _mm256_shuffle_ps(q[2], q[3], 0xEE));
    /* y = d[0] + d[1] */
    return _mm256_add_ps(_mm256_shuffle_ps(d0, d1, 0x88), _mm256_shuffle_ps(d0, d1, 0xDD));
}

/* The same for 4 outputs: y(s0), y(s1), y(s2), y(s3). */
AVX2_FN static inline __attribute__((always_inline)) __m128 reduce4(const __m256 s[4]) {
    __m256 q0 = _mm256_add_ps(_mm256_permute2f128_ps(s[0], s[1], 0x20),
                              _mm256_permute2f128_ps(s[0], s[1], 0x31));
    __m256 q1 = _mm256_add_ps(_mm256_permute2f128_ps(s[2], s[3], 0x20),
                              _mm256_permute2f128_ps(s[2], s[3], 0x31));
    /* [d0 d1 of output 0, of 2 | of 1, of 3] */
    __m256 d = _mm256_add_ps(_mm256_shuffle_ps(q0, q1, 0x44), _mm256_shuffle_ps(q0, q1, 0xEE));
    __m128 lo = _mm256_castps256_ps128(d), hi = _mm256_extractf128_ps(d, 1);
    /* [y0, y2, y1, y3] */
    __m128 y = _mm_add_ps(_mm_shuffle_ps(lo, hi, 0x88), _mm_shuffle_ps(lo, hi, 0xDD));
    return _mm_shuffle_ps(y, y, 0xD8);
}

/* Rows 0-3 of the panel times NC (1-3) prepared columns; S[r][c] = the output's s vector. The
 * k loop runs in slices of KSLICE chunks, both halves per slice, so that a slice's panel rows and
 * activations stay in L1 for the second half (the lane sums carry over between slices: the same
 * additions in the same order). */
#define KSLICE 24
AVX2_FN static inline __attribute__((always_inline)) void tile4(
    const uint32_t *A, const uint32_t *Z, int nchunks, const uint32_t *const *X,
    const uint32_t *const *M, const int NC, const int wz, const int xm, __m256 S[4][3]) {
    __m256 st[2][4][3]; /* lane sums of each half between slices */
    for (int j0 = 0; j0 < nchunks; j0 += KSLICE) {
        const int j1 = nchunks - j0 < KSLICE ? nchunks : j0 + KSLICE;
        for (int h = 0; h < 2; h++) {
            __m256 acc[4][3];
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < NC; c++) acc[r][c] = j0 ? st[h][r][c] : _mm256_setzero_ps();
            const uint32_t *a = A + 8 * h, *z = Z + 8 * h;
            for (int j = j0; j < j1; j++) {
                __m256i av[4];
                for (int r = 0; r < 4; r++)
                    av[r] = _mm256_load_si256((const __m256i *)(a + (size_t)j * 64 + r * 16));
                for (int c = 0; c < NC; c++) {
                    const __m256i xv =
                        _mm256_loadu_si256((const __m256i *)(X[c] + j * 16 + 8 * h));
                    __m256i mv = xv;
                    if (xm) mv = _mm256_loadu_si256((const __m256i *)(M[c] + j * 16 + 8 * h));
                    for (int r = 0; r < 4; r++) {
                        __m256i p = _mm256_add_epi32(xv, av[r]);
                        if (wz)
                            p = _mm256_and_si256(p, _mm256_load_si256((const __m256i *)(
                                                        z + (size_t)j * 64 + r * 16)));
                        if (xm) p = _mm256_and_si256(p, mv);
                        acc[r][c] = _mm256_add_ps(acc[r][c], _mm256_castsi256_ps(p));
                    }
                }
            }
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < NC; c++) st[h][r][c] = acc[r][c];
        }
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < NC; c++) S[r][c] = _mm256_add_ps(st[0][r][c], st[1][r][c]);
}
#undef KSLICE

/* One tile and its stores: rows b4 .. b4 + 3 (those below rows), columns i .. i + NC - 1. */
AVX2_FN static inline __attribute__((always_inline)) void tile4_store(
    const uint32_t *A, const uint32_t *Z, int nchunks, const uint32_t *const *X,
    const uint32_t *const *M, const int NC, const int wz, const int xm, float *y, int ys_n,
    int ys_r, int b4, int rows, int i) {
    __m256 S[4][3];
    tile4(A, Z, nchunks, X, M, NC, wz, xm, S);
    float out[3][4]; /* per column, rows 0-3 */
    if (NC >= 2) {
        const __m256 s[8] = {S[0][0], S[0][1], S[1][0], S[1][1],
                             S[2][0], S[2][1], S[3][0], S[3][1]};
        __m256 v = reduce8(s);
        _mm_storeu_ps(out[0], _mm256_castps256_ps128(v));
        _mm_storeu_ps(out[1], _mm256_extractf128_ps(v, 1));
    }
    if (NC != 2) {
        const int c = NC - 1;
        const __m256 s[4] = {S[0][c], S[1][c], S[2][c], S[3][c]};
        _mm_storeu_ps(out[c], reduce4(s));
    }
    const int nr = rows - b4 < 4 ? rows - b4 : 4;
    for (int c = 0; c < NC; c++) {
        float *yc = y + (size_t)(i + c) * ys_n + (size_t)b4 * ys_r;
        if (ys_r == 1 && nr == 4) _mm_storeu_ps(yc, _mm_loadu_ps(out[c]));
        else
            for (int r = 0; r < nr; r++) yc[(size_t)r * ys_r] = out[c][r];
    }
}

#define TILE4_CASES(WZ, XM)                                                                    \
    do {                                                                                       \
        if (nc == 3) tile4_store(A, Z, nchunks, X, M, 3, WZ, XM, y, ys_n, ys_r, b4, rows, i);  \
        else if (nc == 2)                                                                      \
            tile4_store(A, Z, nchunks, X, M, 2, WZ, XM, y, ys_n, ys_r, b4, rows, i);           \
        else tile4_store(A, Z, nchunks, X, M, 1, WZ, XM, y, ys_n, ys_r, b4, rows, i);          \
    } while (0)

/* Prepared columns [i0, i1) (prep: prep_floats(w) words each, the activations' words then their
 * masks; cmask[i]: column i has a masked activation) times every block of an intadd layer. */
AVX2_FN SEOFP_INTERNAL void gemm_intadd_tiles(const seofp_layer *w, const uint32_t *prep,
                                              const int *cmask, int i0, int i1, float *y,
                                              int ys_n, int ys_r, float *panel) {
    const int cp = w->cols_pad, nchunks = cp / 16, nblocks = w->rows_pad / 4, rows = w->rows;
    const size_t pf = prep_floats(w), bb = block_bytes(w);
    uint32_t *const P = (uint32_t *)(((uintptr_t)panel + 31) & ~(uintptr_t)31);
    const int wz = w->zeros != 0, nbmax = panel_blocks(w);
    for (int b0 = 0; b0 < nblocks; b0 += nbmax) {
        const int nb = nblocks - b0 < nbmax ? nblocks - b0 : nbmax;
        for (int q = 0; q < nb; q++) {
            uint32_t *A = P + (size_t)q * cp * 8;
            panel_intadd(w, (const uint8_t *)w->data + (size_t)(b0 + q) * bb, A,
                         wz ? A + (size_t)cp * 4 : NULL);
        }
        for (int i = i0; i < i1; i += 3) {
            const int nc = i1 - i < 3 ? i1 - i : 3;
            const uint32_t *X[3], *M[3];
            int xm = 0;
            for (int c = 0; c < 3; c++) {
                X[c] = prep + (size_t)(i + (c < nc ? c : 0)) * pf;
                M[c] = X[c] + cp;
                if (c < nc) xm |= cmask[i + c] != 0;
            }
            for (int q = 0; q < nb; q++) { /* the columns stay in L1 from one block to the next */
                const uint32_t *A = P + (size_t)q * cp * 8, *Z = A + (size_t)cp * 4;
                const int b4 = 4 * (b0 + q);
                if (wz && xm) TILE4_CASES(1, 1);
                else if (wz) TILE4_CASES(1, 0);
                else if (xm) TILE4_CASES(0, 1);
                else TILE4_CASES(0, 0);
            }
        }
    }
}
#undef TILE4_CASES
#endif
