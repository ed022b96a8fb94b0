/* SEOFP kernels, the batch > 1 product (docs/engine_tiles.md): each 4-row block is decoded once
 * per column group into an L1 panel of 32-bit addends (and, for layers with zero weights, zero
 * masks; panel_intadd in intadd.c), then tiles of 4 rows x 3 columns run over it. The fp32
 * control and the decode kinds run the same tiles with a fused multiply-add per 8 products on
 * float panels (fp32: the layer's own blocks; decode: panel_fma in decode.c), so that intadd and
 * its controls differ only in the product.
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
 * only for layers that have zero weights (seofp_layer.zeros), which run 2 x 5 tiles with the
 * masks in registers, activation masks only for tiles with a masked activation; each costs one
 * AND per 8 products. A last block of 1-2 rows runs a 2-row tile; layers too wide for two
 * panels in L1 run the k slices outermost (gemm_intadd_tiles).
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

/* Chunks [j0, j1) of rows 0-3 of the panel times NC (1-3) prepared columns, for both halves
 * of each 16-run in turn; st[h][r][c] holds the lane sums of half h (lanes 8h .. 8h + 7) from
 * the chunks before j0 (first: none) and gets them up to j1. Calls over consecutive slices of
 * chunks make the same additions in the same order as one call over all of them; a slice of
 * GEMM_KSLICE chunks keeps its panel rows and activations in L1 for the second half. */
AVX2_FN static inline __attribute__((always_inline)) void tile4_run(
    const uint32_t *A, const uint32_t *Z, int j0, int j1, const uint32_t *const *X,
    const uint32_t *const *M, const int NC, const int wz, const int xm, const int fm,
    __m256 st[2][4][3], int first) {
    for (int h = 0; h < 2; h++) {
        __m256 acc[4][3];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < NC; c++) acc[r][c] = first ? _mm256_setzero_ps() : st[h][r][c];
        const uint32_t *a = A + 8 * h, *z = Z + 8 * h;
        for (int j = j0; j < j1; j++) {
            __m256i av[4];
            for (int r = 0; r < 4; r++)
                av[r] = fm ? _mm256_loadu_si256((const __m256i *)(a + (size_t)j * 64 + r * 16))
                           : _mm256_load_si256((const __m256i *)(a + (size_t)j * 64 + r * 16));
            for (int c = 0; c < NC; c++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(X[c] + j * 16 + 8 * h));
                __m256i mv = xv;
                if (xm) mv = _mm256_loadu_si256((const __m256i *)(M[c] + j * 16 + 8 * h));
                for (int r = 0; r < 4; r++) {
                    if (fm) { /* fp32 and decode: a fused multiply-add of float words */
                        acc[r][c] = _mm256_fmadd_ps(_mm256_castsi256_ps(xv),
                                                    _mm256_castsi256_ps(av[r]), acc[r][c]);
                        continue;
                    }
                    __m256i p = _mm256_add_epi32(xv, av[r]);
                    if (wz)
                        p = _mm256_and_si256(
                            p, _mm256_load_si256((const __m256i *)(z + (size_t)j * 64 + r * 16)));
                    if (xm) p = _mm256_and_si256(p, mv);
                    acc[r][c] = _mm256_add_ps(acc[r][c], _mm256_castsi256_ps(p));
                }
            }
        }
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < NC; c++) st[h][r][c] = acc[r][c];
    }
}

/* Rows 0-1 only (a last block with 1 or 2 rows), both halves in one pass over all chunks
 * (2 rows x NC columns x 2 halves: at most 12 accumulators), into the same st. */
AVX2_FN static inline __attribute__((always_inline)) void tile2_run(
    const uint32_t *A, const uint32_t *Z, int nchunks, const uint32_t *const *X,
    const uint32_t *const *M, const int NC, const int wz, const int xm, const int fm,
    __m256 st[2][4][3]) {
    __m256 acc[2][2][3];
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < NC; c++) acc[h][r][c] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        for (int h = 0; h < 2; h++) {
            const size_t at = (size_t)j * 64 + 8 * h;
            __m256i av[2];
            for (int r = 0; r < 2; r++)
                av[r] = fm ? _mm256_loadu_si256((const __m256i *)(A + at + r * 16))
                           : _mm256_load_si256((const __m256i *)(A + at + r * 16));
            for (int c = 0; c < NC; c++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(X[c] + j * 16 + 8 * h));
                __asm__("" : "+x"(xv)); /* one load per column, not one per row */
                __m256i mv = xv;
                if (xm) mv = _mm256_loadu_si256((const __m256i *)(M[c] + j * 16 + 8 * h));
                for (int r = 0; r < 2; r++) {
                    if (fm) {
                        acc[h][r][c] = _mm256_fmadd_ps(_mm256_castsi256_ps(xv),
                                                       _mm256_castsi256_ps(av[r]), acc[h][r][c]);
                        continue;
                    }
                    __m256i p = _mm256_add_epi32(xv, av[r]);
                    if (wz)
                        p = _mm256_and_si256(
                            p, _mm256_load_si256((const __m256i *)(Z + at + r * 16)));
                    if (xm) p = _mm256_and_si256(p, mv);
                    acc[h][r][c] = _mm256_add_ps(acc[h][r][c], _mm256_castsi256_ps(p));
                }
            }
        }
    }
    for (int h = 0; h < 2; h++)
        for (int r = 0; r < 4; r++) /* rows 2, 3 are copies, never stored */
            for (int c = 0; c < NC; c++) st[h][r][c] = acc[h][r % 2][c];
}

/* The reduction and stores of a tile: rows b4 .. b4 + 3 (those below rows), columns i ..
 * i + NC - 1, from the lane sums st of both halves. */
AVX2_FN static inline __attribute__((always_inline)) void tile4_store(
    __m256 st[2][4][3], const int NC, float *y, int ys_n, int ys_r, int b4, int rows, int i,
    float scale) {
    __m256 S[4][3]; /* s[l] = a[l] + a[l + 8] */
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < NC; c++) S[r][c] = _mm256_add_ps(st[0][r][c], st[1][r][c]);
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
    if (scale != 1.0f) /* DECODE_F16's power of two, after the sum (seofp.h) */
        for (int c = 0; c < NC; c++)
            for (int r = 0; r < 4; r++) out[c][r] *= scale;
    for (int c = 0; c < NC; c++) {
        float *yc = y + (size_t)(i + c) * ys_n + (size_t)b4 * ys_r;
        if (ys_r == 1 && nr == 4) _mm_storeu_ps(yc, _mm_loadu_ps(out[c]));
        else
            for (int r = 0; r < nr; r++) yc[(size_t)r * ys_r] = out[c][r];
    }
}

/* One whole tile in registers: every slice, then the stores */
AVX2_FN static inline __attribute__((always_inline)) void tile4_all(
    const uint32_t *A, const uint32_t *Z, int nchunks, const uint32_t *const *X,
    const uint32_t *const *M, const int NC, const int wz, const int xm, const int fm, int narrow,
    float *y, int ys_n, int ys_r, int b4, int rows, int i, float scale) {
    __m256 st[2][4][3];
    if (narrow) {
        tile2_run(A, Z, nchunks, X, M, NC, wz, xm, fm, st);
    } else {
        int j0 = 0; /* nchunks >= 1 */
        do {
            tile4_run(A, Z, j0, nchunks - j0 < GEMM_KSLICE ? nchunks : j0 + GEMM_KSLICE, X, M,
                      NC, wz, xm, fm, st, j0 == 0);
            j0 += GEMM_KSLICE;
        } while (j0 < nchunks);
    }
    tile4_store(st, NC, y, ys_n, ys_r, b4, rows, i, scale);
}

/* Layers with zero weights: rows r0, r0 + 1 of the panel times NC (1-5) columns, both halves in
 * turn, over all chunks; the rows' addends and zero masks stay in registers (2 x 5 accumulators
 * + 4), where the 4 x 3 tile would load a zero mask per 8 products. Stores rows b4 + r0 and
 * b4 + r0 + 1 (those below rows). */
AVX2_FN static inline __attribute__((always_inline)) void tile2x5(
    const uint32_t *A, const uint32_t *Z, int r0, int nchunks, const uint32_t *const *X,
    const uint32_t *const *M, const int NC, const int xm, float *y, int ys_n, int ys_r, int b4,
    int rows, int i) {
    __m256 S[2][5];
    for (int h = 0; h < 2; h++) {
        __m256 acc[2][5];
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < NC; c++) acc[r][c] = _mm256_setzero_ps();
        const uint32_t *a = A + r0 * 16 + 8 * h, *z = Z + r0 * 16 + 8 * h;
        for (int j = 0; j < nchunks; j++) {
            __m256i av[2], zv[2];
            for (int r = 0; r < 2; r++) {
                av[r] = _mm256_load_si256((const __m256i *)(a + (size_t)j * 64 + r * 16));
                zv[r] = _mm256_load_si256((const __m256i *)(z + (size_t)j * 64 + r * 16));
            }
            for (int c = 0; c < NC; c++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(X[c] + j * 16 + 8 * h));
                __m256i mv = xv;
                if (xm) mv = _mm256_loadu_si256((const __m256i *)(M[c] + j * 16 + 8 * h));
                for (int r = 0; r < 2; r++) {
                    __m256i p = _mm256_and_si256(_mm256_add_epi32(xv, av[r]), zv[r]);
                    if (xm) p = _mm256_and_si256(p, mv);
                    acc[r][c] = _mm256_add_ps(acc[r][c], _mm256_castsi256_ps(p));
                }
            }
        }
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < NC; c++) S[r][c] = h ? _mm256_add_ps(S[r][c], acc[r][c]) : acc[r][c];
    }
    float out[5][4]; /* per column, rows r0, r0 + 1 (then unused lanes) */
    if (NC >= 4) { /* [c0 r0, c0 r1, c2 r0, c2 r1 | c1 r0, c1 r1, c3 r0, c3 r1] */
        const __m256 s[8] = {S[0][0], S[0][1], S[1][0], S[1][1],
                             S[0][2], S[0][3], S[1][2], S[1][3]};
        float v[8];
        _mm256_storeu_ps(v, reduce8(s));
        for (int c = 0; c < 4; c++) out[c][0] = v[(c % 2) * 4 + (c / 2) * 2], out[c][1] = v[(c % 2) * 4 + (c / 2) * 2 + 1];
    }
    for (int c = NC >= 4 ? 4 : 0; c < NC; c += 2) { /* pairs of columns (the last one alone) */
        const int c1 = c + 1 < NC ? c + 1 : c;
        const __m256 s[4] = {S[0][c], S[1][c], S[0][c1], S[1][c1]};
        float v[4];
        _mm_storeu_ps(v, reduce4(s));
        out[c][0] = v[0], out[c][1] = v[1], out[c1][0] = v[2], out[c1][1] = v[3];
    }
    const int nr = rows - b4 - r0 < 2 ? rows - b4 - r0 : 2;
    for (int c = 0; c < NC; c++)
        for (int r = 0; r < nr; r++)
            y[(size_t)(i + c) * ys_n + (size_t)(b4 + r0 + r) * ys_r] = out[c][r];
}

/* tile2x5 specialized by column count and activation mask, out of line: its loop gets the
 * registers to itself (inlined into the column loop, the column pointers spill) */
AVX2_FN static __attribute__((noinline)) void tile2x5_n(
    const uint32_t *A, const uint32_t *Z, int r0, int nchunks, const uint32_t *const *X,
    const uint32_t *const *M, int nc, int xm, float *y, int ys_n, int ys_r, int b4, int rows,
    int i) {
#define TILE2X5(NC)                                                                            \
    do {                                                                                       \
        if (xm) tile2x5(A, Z, r0, nchunks, X, M, NC, 1, y, ys_n, ys_r, b4, rows, i);           \
        else tile2x5(A, Z, r0, nchunks, X, M, NC, 0, y, ys_n, ys_r, b4, rows, i);              \
    } while (0)
    switch (nc) {
    case 5: TILE2X5(5); break;
    case 4: TILE2X5(4); break;
    case 3: TILE2X5(3); break;
    case 2: TILE2X5(2); break;
    default: TILE2X5(1); break;
    }
#undef TILE2X5
}

/* the NC = 1-3 specializations of one mask combination */
#define BY_NC(CALL3, CALL2, CALL1)                                                             \
    do {                                                                                       \
        if (nc == 3) CALL3;                                                                    \
        else if (nc == 2) CALL2;                                                               \
        else CALL1;                                                                            \
    } while (0)
#define BY_MASKS(M3)                                                                           \
    do {                                                                                       \
        if (fm) M3(0, 0, 1);                                                                   \
        else if (wz && xm) M3(1, 1, 0);                                                        \
        else if (wz) M3(1, 0, 0);                                                              \
        else if (xm) M3(0, 1, 0);                                                              \
        else M3(0, 0, 0);                                                                      \
    } while (0)
#define ALL_CASES(WZ, XM, FM)                                                                  \
    BY_NC(tile4_all(A, Z, nchunks, X, M, 3, WZ, XM, FM, narrow, y, ys_n, ys_r, b4, rows, i,    \
                    scale),                                                                    \
          tile4_all(A, Z, nchunks, X, M, 2, WZ, XM, FM, narrow, y, ys_n, ys_r, b4, rows, i,    \
                    scale),                                                                    \
          tile4_all(A, Z, nchunks, X, M, 1, WZ, XM, FM, narrow, y, ys_n, ys_r, b4, rows, i,    \
                    scale))
#define RUN_CASES(WZ, XM, FM)                                                                  \
    BY_NC(tile4_run(A, Z, j0, j1, X, M, 3, WZ, XM, FM, st, j0 == 0),                           \
          tile4_run(A, Z, j0, j1, X, M, 2, WZ, XM, FM, st, j0 == 0),                           \
          tile4_run(A, Z, j0, j1, X, M, 1, WZ, XM, FM, st, j0 == 0))

/* columns i .. i + nc - 1: nc, their words X and masks M, xm: one of them has a masked
 * activation */
#define TILE_COLUMNS()                                                                         \
    const int nc = i1 - i < 3 ? i1 - i : 3;                                                    \
    const uint32_t *X[3], *M[3];                                                               \
    int xm = 0;                                                                                \
    for (int c = 0; c < 3; c++) {                                                              \
        X[c] = prep + (size_t)(i + (c < nc ? c : 0)) * pf;                                     \
        M[c] = X[c] + cp;                                                                      \
        if (c < nc) xm |= cmask[i + c] != 0;                                                   \
    }

/* Prepared columns [i0, i1) (prep: prep_floats(w) words each, the activations' words then their
 * masks; cmask[i]: column i has a masked activation) times every block of an intadd layer.
 * Blocks are decoded panel_blocks(w) at a time and every tile of columns runs over all of them
 * while its columns are in L1. A layer too wide for more than one panel in L1 with more than
 * one k slice runs the slices outermost instead: each slice of the panel stays in L1 for
 * GEMM_SUB_COLS columns, whose lane sums wait in the state area between slices. */
AVX2_FN SEOFP_INTERNAL void gemm_tiles4(const seofp_layer *w, const uint32_t *prep,
                                        const int *cmask, int i0, int i1, float *y, int ys_n,
                                        int ys_r, float scale, float *panel) {
    const int cp = w->cols_pad, nchunks = cp / 16, nblocks = w->rows_pad / 4, rows = w->rows;
    const size_t pf = prep_floats(w), bb = block_bytes(w);
    uint32_t *const P = (uint32_t *)(((uintptr_t)panel + 31) & ~(uintptr_t)31);
    const int fm = !is_intadd(w); /* fp32 and decode: fused multiply-adds on float panels */
    const int wz = !fm && w->zeros != 0, nbmax = panel_blocks(w);
    const uint32_t *blocks[4]; /* the nb panels' words (fp32: the layer's own blocks) */
    for (int b0 = 0; b0 < nblocks; b0 += nbmax) {
        const int nb = nblocks - b0 < nbmax ? nblocks - b0 : nbmax;
        for (int q = 0; q < nb; q++) {
            uint32_t *A = P + (size_t)q * cp * 8;
            const uint8_t *blk = (const uint8_t *)w->data + (size_t)(b0 + q) * bb;
            if (fm) blocks[q] = (const uint32_t *)panel_fma(w, blk, (float *)A);
            else {
                panel_intadd(w, blk, A, wz ? A + (size_t)cp * 4 : NULL);
                blocks[q] = A;
            }
        }
        if (wz && !gemm_state_floats(w)) {
            for (int i = i0; i < i1; i += 5) {
                const int nc = i1 - i < 5 ? i1 - i : 5;
                const uint32_t *X[5], *M[5];
                int xm = 0;
                for (int c = 0; c < 5; c++) {
                    X[c] = prep + (size_t)(i + (c < nc ? c : 0)) * pf;
                    M[c] = X[c] + cp;
                    if (c < nc) xm |= cmask[i + c] != 0;
                }
                for (int q = 0; q < nb; q++) {
                    const uint32_t *A = blocks[q], *Z = A + (size_t)cp * 4;
                    const int b4 = 4 * (b0 + q);
                    for (int r0 = 0; r0 < 4 && b4 + r0 < rows; r0 += 2)
                        tile2x5_n(A, Z, r0, nchunks, X, M, nc, xm, y, ys_n, ys_r, b4, rows, i);
                }
            }
            continue;
        }
        if (!gemm_state_floats(w)) {
            for (int i = i0; i < i1; i += 3) {
                TILE_COLUMNS()
                for (int q = 0; q < nb; q++) { /* the columns stay in L1 from block to block */
                    const uint32_t *A = blocks[q], *Z = A + (size_t)cp * 4;
                    const int b4 = 4 * (b0 + q), narrow = rows - b4 <= 2;
                    BY_MASKS(ALL_CASES);
                }
            }
            continue;
        }
        /* one block (nb = 1), slices outermost */
        const uint32_t *A = blocks[0], *Z = A + (size_t)cp * 4;
        __m256(*state)[2][4][3] = (__m256(*)[2][4][3])(P + (size_t)cp * 8);
        const int b4 = 4 * b0, narrow = rows - b4 <= 2;
        for (int is = i0; is < i1; is += GEMM_SUB_COLS) {
            const int ie = i1 - is < GEMM_SUB_COLS ? i1 : is + GEMM_SUB_COLS;
            if (narrow) {
                for (int i = is; i < ie; i += 3) {
                    TILE_COLUMNS()
                    BY_MASKS(ALL_CASES);
                }
                continue;
            }
            for (int j0 = 0; j0 < nchunks; j0 += GEMM_KSLICE) {
                const int j1 = nchunks - j0 < GEMM_KSLICE ? nchunks : j0 + GEMM_KSLICE;
                for (int i = is; i < ie; i += 3) {
                    TILE_COLUMNS()
                    __m256(*st)[4][3] = state[(i - is) / 3];
                    BY_MASKS(RUN_CASES);
                }
            }
            for (int i = is; i < ie; i += 3) {
                const int nc = i1 - i < 3 ? i1 - i : 3;
                __m256(*st)[4][3] = state[(i - is) / 3];
                BY_NC(tile4_store(st, 3, y, ys_n, ys_r, b4, rows, i, scale),
                      tile4_store(st, 2, y, ys_n, ys_r, b4, rows, i, scale),
                      tile4_store(st, 1, y, ys_n, ys_r, b4, rows, i, scale));
            }
        }
    }
}
#undef BY_NC
#undef BY_MASKS
#undef ALL_CASES
#undef RUN_CASES
#undef TILE_COLUMNS

#endif
