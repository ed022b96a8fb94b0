/* SEOFP kernels, the zero-skipping batch > 1 intadd product of pruned layers
 * (docs/engine_sparse.md).
 *
 * A pruned layer's dense tiles spend an integer add, a float add and a zero-weight mask on every
 * zero weight. This product skips them: seofp_sparse_build lists each row's non-zero weights
 * once (their 32-bit addends and positions), grouped by lane l = k % 16 in increasing k, and the
 * product runs over the list with SPARSE_F columns (frames) side by side in the vector lanes:
 * the prepared activations of SPARSE_F columns are transposed so that column k of the weights
 * meets SPARSE_F activations in one contiguous run (XT, lane-major: see xt_row).
 *
 * Order (seofp.h, bit-identical to the dense tiles and to batch 1): every (row, column) keeps its
 * 16 lane sums, each accumulated in increasing k: lane l's sum is one accumulator per SPARSE_F/8
 * vectors of columns, fed by lane l's list in order. A skipped zero weight's product is +0 in the
 * dense kernels, and adding +0 never changes a lane sum (a sum that starts at +0 is never -0 in
 * round-to-nearest), so skipping it changes no bit. The tree s[l] = a[l] + a[l+8], q, d, y then
 * runs across accumulators, for 8 columns per vector add.
 */
#include "seofp_internal.h"

#define SPARSE_MAGIC 0x53505331u /* "SPS1" */

/* the index: a header, then per (row, lane) the start of its entries (rows * 16 + 1 of them),
 * then the entries, one 32-bit word each: the addend's high half (its low half is always 0) over
 * the XT row of the weight's k (16 bits: cols_pad <= 65536) */
typedef struct {
    uint32_t magic, kind, rows, cols_pad, nnz, ianet, e_min, pad;
    uint64_t data; /* the address of the layer data it was built from */
} sparse_head;

static size_t sparse_starts(const seofp_layer *w) { return (size_t)w->rows * 16 + 1; }

/* bytes before the entries: header and starts, rounded up to 8 */
static size_t sparse_entries_at(const seofp_layer *w) {
    return (sizeof(sparse_head) + 4 * sparse_starts(w) + 7) & ~(size_t)7;
}

/* XT stores the activations lane-major: k = 16j + l at row l * nchunks + j, so that each
 * lane's entries read one contiguous run (in k order) rather than one line every 16 k. */
static inline size_t xt_row(int lj, int nchunks) { return (size_t)(lj % 16) * nchunks + lj / 16; }

static size_t count_nonzero(const seofp_layer *w) {
    const int nchunks = w->cols_pad / 16;
    const size_t bb = block_bytes(w);
    size_t nnz = 0;
    for (int r = 0; r < w->rows; r++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)(r / 4) * bb;
        for (int j = 0; j < nchunks; j++)
            for (int l = 0; l < 16; l++) nnz += addend_c(blk, w->kind, j, r % 4, l) != 0;
    }
    return nnz;
}

size_t seofp_sparse_bytes(const seofp_layer *w) {
    if (!layer_ok(w) || !is_intadd(w)) return 0;
    if (w->cols_pad > 65536) return 0; /* XT rows must fit the entries' 16 bits */
    return sparse_entries_at(w) + 4 * count_nonzero(w);
}

int seofp_sparse_build(const seofp_layer *w, void *buf, size_t bytes) {
    if (!layer_ok(w) || !is_intadd(w) || !buf || ((uintptr_t)buf & 7) || w->cols_pad > 65536 ||
        bytes < sparse_entries_at(w))
        return SEOFP_EARG;
    const size_t room = (bytes - sparse_entries_at(w)) / 4; /* entries that fit */
    const int nchunks = w->cols_pad / 16;
    const size_t bb = block_bytes(w);
    sparse_head *hd = (sparse_head *)buf;
    uint32_t *start = (uint32_t *)(hd + 1);
    uint32_t *ent = (uint32_t *)((char *)buf + sparse_entries_at(w));
    uint32_t e = 0;
    for (int r = 0; r < w->rows; r++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)(r / 4) * bb;
        for (int l = 0; l < 16; l++) {
            start[r * 16 + l] = e;
            for (int j = 0; j < nchunks; j++) {
                const uint32_t v = addend_c(blk, w->kind, j, r % 4, l);
                if (!v) continue;
                if (e >= room || e == 0xFFFFFFFFu) return SEOFP_EARG; /* buf too small */
                ent[e++] = (v & 0xFFFF0000u) | (uint32_t)xt_row(j * 16 + l, nchunks);
            }
        }
    }
    start[(size_t)w->rows * 16] = e;
    *hd = (sparse_head){SPARSE_MAGIC, (uint32_t)w->kind, (uint32_t)w->rows,
                        (uint32_t)w->cols_pad, e, (uint32_t)w->ianet,
                        (uint32_t)w->e_min, 0, (uint64_t)(uintptr_t)w->data};
    return 0;
}

SEOFP_INTERNAL int sparse_ok(const seofp_layer *w) {
    if (!w->sparse) return 1;
    const sparse_head *hd = (const sparse_head *)w->sparse;
    return is_intadd(w) && ((uintptr_t)w->sparse & 7) == 0 && hd->magic == SPARSE_MAGIC &&
           hd->kind == (uint32_t)w->kind && hd->rows == (uint32_t)w->rows &&
           hd->cols_pad == (uint32_t)w->cols_pad && hd->ianet == (uint32_t)w->ianet &&
           hd->e_min == (uint32_t)w->e_min && hd->data == (uint64_t)(uintptr_t)w->data;
}

#if SEOFP_HAVE_AVX2_PATH
/* Lanes in the order of the reduction tree: pairs (l, l + 8) make s[l], pairs of s (l, l + 4)
 * make q[l], q[l] and q[l + 2] make d[l], d[0] + d[1] is y. Running the lanes in this order keeps
 * at most 4 partial results per row (TREE_SLOTS). */
static const int TREE_LANE[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
#define TREE_SLOTS 4

/* Lane sums of one lane's list [e0, e1) over NV (<= 8) vectors of columns into acc: NV independent
 * sums; XT (and MT when xm) the transposed activations (and masks). */
AVX2_FN static inline __attribute__((always_inline)) void lane_run(
    const uint32_t *ent, uint32_t e0, uint32_t e1, const char *XT, const char *MT, const int xm,
    const int NV, __m256 acc[8]) {
    for (int f = 0; f < NV; f++) acc[f] = _mm256_setzero_ps();
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    for (const uint32_t *p = ent + e0, *pe = ent + e1; p < pe; p++) {
        const char *xt = XT + (size_t)(*p & 0xFFFFu) * (SPARSE_F * 4);
        const __m256i a = _mm256_and_si256(_mm256_set1_epi32((int)*p), hi);
        for (int f = 0; f < NV; f++) {
            __m256i v = _mm256_add_epi32(_mm256_load_si256((const __m256i *)(xt + 32 * f)), a);
            if (xm)
                v = _mm256_and_si256(
                    v, _mm256_load_si256((const __m256i *)(MT + (xt - XT) + 32 * f)));
            acc[f] = _mm256_add_ps(acc[f], _mm256_castsi256_ps(v));
        }
    }
}

/* Every row of one group of nf <= NV * 8 columns (t0 ..), SPARSE_RB rows at a time with the lane
 * outermost, so that the lane's slice of XT (cols_pad / 16 k, 4 KiB at cols_pad 256) stays in L1
 * for all rows of the block. Partial sums wait in T (SPARSE_RB x TREE_SLOTS x 8 vectors); the
 * rows' y go to Yb (SPARSE_RB x SPARSE_F), written to y a row block at a time. */
AVX2_FN static inline __attribute__((always_inline)) void rows_run(
    const seofp_layer *w, const char *XT, const char *MT, const int xm, const int NV, __m256 *T,
    float *Yb, float *y, int ys_n, int ys_r, int t0, int nf) {
    const sparse_head *hd = (const sparse_head *)w->sparse;
    const uint32_t *start = (const uint32_t *)(hd + 1);
    const uint32_t *ent = (const uint32_t *)((const char *)w->sparse + sparse_entries_at(w));
    for (int r0 = 0; r0 < w->rows; r0 += SPARSE_RB) {
        const int nr = w->rows - r0 < SPARSE_RB ? w->rows - r0 : SPARSE_RB;
        for (int p = 0; p < 16; p++) {
            const int l = TREE_LANE[p];
            for (int rr = 0; rr < nr; rr++) {
                const uint32_t *st = start + (size_t)(r0 + rr) * 16;
                __m256 *slot = T + (size_t)rr * TREE_SLOTS * 8; /* A, s, q, d: 8 vectors each */
                __m256 v[8];
                lane_run(ent, st[l], st[l + 1], XT, MT, xm, NV, v);
                if (p % 2 == 0) { /* a[l]: wait for a[l + 8] */
                    for (int f = 0; f < NV; f++) slot[f] = v[f];
                    continue;
                }
                for (int f = 0; f < NV; f++) v[f] = _mm256_add_ps(slot[f], v[f]); /* s */
                if (p / 2 % 2 == 0) {
                    for (int f = 0; f < NV; f++) slot[8 + f] = v[f];
                    continue;
                }
                for (int f = 0; f < NV; f++) v[f] = _mm256_add_ps(slot[8 + f], v[f]); /* q */
                if (p / 4 % 2 == 0) {
                    for (int f = 0; f < NV; f++) slot[16 + f] = v[f];
                    continue;
                }
                for (int f = 0; f < NV; f++) v[f] = _mm256_add_ps(slot[16 + f], v[f]); /* d */
                if (p / 8 == 0) {
                    for (int f = 0; f < NV; f++) slot[24 + f] = v[f];
                    continue;
                }
                for (int f = 0; f < NV; f++) /* y = d[0] + d[1] */
                    _mm256_store_ps(Yb + (size_t)rr * SPARSE_F + 8 * f,
                                    _mm256_add_ps(slot[24 + f], v[f]));
            }
        }
        if (ys_r == 1) /* t-major output (a linear layer): nr consecutive floats per column */
            for (int t = 0; t < nf; t++) {
                float *yo = y + (size_t)(t0 + t) * ys_n + r0;
                for (int rr = 0; rr < nr; rr++) yo[rr] = Yb[(size_t)rr * SPARSE_F + t];
            }
        else /* row-major output (a convolution's (cout, T)) */
            for (int rr = 0; rr < nr; rr++) {
                float *yo = y + (size_t)(r0 + rr) * ys_r + (size_t)t0 * ys_n;
                for (int t = 0; t < nf; t++) yo[(size_t)t * ys_n] = Yb[(size_t)rr * SPARSE_F + t];
            }
    }
}

/* Prepared columns [0, n) (prep: prep_floats(w) words each, the activations' words then their
 * masks; cmask[i]: column i has a masked activation) times a layer with a sparse index, in
 * groups of SPARSE_F columns (a last group of at most SPARSE_F / 2 runs half the vectors).
 * work: the sparse part of panel_floats(w). */
AVX2_FN SEOFP_INTERNAL void gemm_intadd_sparse(const seofp_layer *w, const uint32_t *prep,
                                               const int *cmask, int n, float *y, int ys_n,
                                               int ys_r, float *work) {
    const int cp = w->cols_pad, nch = cp / 16;
    const size_t pf = prep_floats(w);
    uint32_t *XT = (uint32_t *)(((uintptr_t)work + 31) & ~(uintptr_t)31);
    uint32_t *MT = XT + (size_t)cp * SPARSE_F;
    __m256 *T = (__m256 *)(MT + (size_t)cp * SPARSE_F);
    float *Yb = (float *)(T + SPARSE_RB * TREE_SLOTS * 8);
    for (int t0 = 0; t0 < n; t0 += SPARSE_F) {
        const int nf = n - t0 < SPARSE_F ? n - t0 : SPARSE_F;
        const int half = nf <= SPARSE_F / 2;
        int xm = 0;
        for (int i = 0; i < nf; i++) xm |= cmask[t0 + i] != 0;
        /* transpose, lane-major: XT[l * nch + j][i] = column t0 + i's word 16 j + l (columns
         * past nf: 0, never stored) */
        for (int q = 0; q < (xm ? 2 : 1); q++) {
            uint32_t *D = q ? MT : XT;
            for (int i = 0; i < (half ? SPARSE_F / 2 : SPARSE_F); i++) {
                const uint32_t *src = prep + (size_t)(t0 + (i < nf ? i : 0)) * pf + (size_t)q * cp;
                const uint32_t keep = i < nf ? 0xFFFFFFFFu : 0u;
                for (int l = 0; l < 16; l++) {
                    uint32_t *d = D + (size_t)l * nch * SPARSE_F + i;
                    for (int j = 0; j < nch; j++) d[(size_t)j * SPARSE_F] = src[16 * j + l] & keep;
                }
            }
        }
#define ROWS_RUN(XM, NV)                                                                       \
    rows_run(w, (const char *)XT, (const char *)MT, XM, NV, T, Yb, y, ys_n, ys_r, t0, nf)
        if (half) {
            if (xm) ROWS_RUN(1, 4);
            else ROWS_RUN(0, 4);
        } else {
            if (xm) ROWS_RUN(1, 8);
            else ROWS_RUN(0, 8);
        }
#undef ROWS_RUN
    }
}
#endif
