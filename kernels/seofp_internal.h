/* Internal interface between the kernel's source files (not part of the public API in
 * seofp.h): shared constants, inline helpers, the layouts' element orders and the functions one
 * file defines for another. Every function here has hidden visibility.
 *
 *   dispatch.c   code-path selection, argument checks, seofp_gemm/seofp_gemv, the batch-1
 *                block loop (blocks_run)
 *   intadd.c     the integer adder: activation pre-pass, every intadd layout's blocks, panels
 *                and tiles, portable and AVX2
 *   decode.c     codes decoded to fp32 (fp16 top byte, bit construction) and the portable FMA
 *                block shared with fp32
 *   fp32.c       the fp32 control's AVX2 block
 *   gemm_tiles.c the batch > 1 product of every kind (4 x 3 tiles over L1 panels: intadd
 *                addends, decoded or fp32 floats)
 *   threading.c  the optional second thread for batch-1 products
 *   layers.c     LSTM (one direction, both directions interleaved, stacks), linear, conv1d,
 *                channel norm and activations
 *   recurrent.c  the batch-1 intadd product (AVX2) of LSTM steps and GEMVs
 *                (docs/recurrent_step.md)
 *   sparse.c     the zero-skipping index of pruned intadd layers and their batch > 1 product
 *                (docs/engine_sparse.md)
 */
#ifndef SEOFP_INTERNAL_H
#define SEOFP_INTERNAL_H
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

#define SEOFP_INTERNAL __attribute__((visibility("hidden")))

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

/* The fixed horizontal reduction of seofp.h. */
static inline float reduce16(const float a[16]) {
    float s[8], q[4], d[2];
    for (int l = 0; l < 8; l++) s[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) q[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++) d[l] = q[l] + q[l + 2];
    return d[0] + d[1];
}

static inline size_t prep_floats(const seofp_layer *w) {
    return (size_t)w->cols_pad * (is_intadd(w) ? 2 : 1);
}

/* 4-row blocks decoded at a time by the batch > 1 product (gemm_tiles.c): as many (up to 4) as
 * fit in L1 next to the activations of one tile's 3 columns, so that a tile's columns are read
 * from L2 once for all of them (fp32 reads its own blocks, decode decodes them to floats) */
static inline int panel_blocks(const seofp_layer *w) {
    const long budget = 24 * 1024 - 3L * w->cols_pad * 4;   /* bytes of L1 for the panels */
    const long per = (long)w->cols_pad * 16 * (is_intadd(w) && w->zeros ? 2 : 1); /* + masks */
    const long nb = budget / per;
    return nb < 1 ? 1 : nb > 4 ? 4 : (int)nb;
}

/* The batch > 1 tiles (gemm_tiles.c) run the k loop in slices of GEMM_KSLICE chunks; a
 * layer with more chunks than that and room for only one panel in L1 runs the slices outermost
 * for GEMM_SUB_COLS columns at a time, keeping their lane sums (2 x 4 x 3 x 8 floats per tile
 * of 3 columns) in a state area after the panel. */
#define GEMM_KSLICE 24
#define GEMM_SUB_COLS 24
static inline size_t gemm_state_floats(const seofp_layer *w) {
    const int big = panel_blocks(w) == 1 && w->cols_pad / 16 > GEMM_KSLICE;
    return big ? (size_t)GEMM_SUB_COLS / 3 * 192 : 0;
}

/* Columns (frames) side by side in the zero-skipping product of a layer with a sparse index
 * (sparse.c); its work area: the transposed activations and masks (2 x SPARSE_F x cols_pad
 * words), the rows' partial sums (SPARSE_RB x 4 x SPARSE_F) and outputs (SPARSE_RB x SPARSE_F). */
#define SPARSE_F 64
/* fewer columns than this run the dense tiles even with an index: the transposition and the
 * half-empty vectors cost more than the zeros save (benchmarks/bench_gemm_tiles.py --zeros 0.5,
 * 512 x 256, built with this at 2: 8 columns 0.41x the masked tiles, 16 0.76x, 24 1.03x,
 * 32 1.2x; docs/engine_sparse.md) */
#define SPARSE_MIN_COLS 24
#define SPARSE_RB 8 /* rows per block (sparse.c) */

/* the decoded 4-row panels (intadd: product addends and zero masks, 2 x 4 x cols_pad words
 * per block), then the tiles' state area; with a sparse index, at least the transposed
 * activations and masks of sparse.c */
static inline size_t panel_floats(const seofp_layer *w) {
    const size_t dense = (size_t)w->cols_pad * 8 * (size_t)panel_blocks(w) + gemm_state_floats(w) + 32;
    const size_t sparse = w->sparse ? ((size_t)w->cols_pad * 2 + SPARSE_RB * 5) * SPARSE_F + 32 : 0;
    return dense > sparse ? dense : sparse;
}

/* A product's scratch: the panels (aligned up to 32 bytes, at most 7 floats in), then the
 * prepared activations aligned to a cache line (each column's words start on one, so that no
 * 32-byte load of them splits lines), within the 32 floats of slack of panel_floats. */
static inline float *prep_area(const seofp_layer *w, float *scratch) {
    const uintptr_t end = (uintptr_t)(scratch + panel_floats(w) - 24); /* past the state */
    return (float *)((end + 63) & ~(uintptr_t)63);
}

/* One call's block loop (batch 1 and the portable path): blocks [b0, b1) of every column. */
typedef struct {
    const seofp_layer *w;
    const float *prep;
    int n, ys_n, ys_r, any_masked, avx2;
    float *y;
    float scale;
    const uint16_t *xw; /* INTADD16, batch 1, no masks: the activations' halves (AVX2) */
    int rec;            /* xw laid out by recurrent.c, blocks by its loop (rec_blocks_avx2) */
} blocks_job;

/* dispatch.c */
SEOFP_INTERNAL int active_variant(void);
SEOFP_INTERNAL int layer_ok(const seofp_layer *w);
SEOFP_INTERNAL int all_finite(const float *x, size_t n);
SEOFP_INTERNAL int prep_pad(const float *x, int cols, int cols_pad, float *xp);
SEOFP_INTERNAL void blocks_run(const blocks_job *jb, int b0, int b1);
SEOFP_INTERNAL void gemm_run(const seofp_layer *w, const float *prep, const int *cmask, int n,
                             float *y, int ys_n, int ys_r, float *scratch);
/* threading.c */
SEOFP_INTERNAL void blocks_run_split(const blocks_job *jb, int nblocks);
/* intadd.c */
SEOFP_INTERNAL int prep_intadd(const float *x, int cols, int cols_pad, int e_min, int e_max,
                               uint32_t fold, uint32_t *xb, uint32_t *mask, int *masked);
SEOFP_INTERNAL uint32_t addend_c(const uint8_t *blk, int kind, int j, int r, int l);
SEOFP_INTERNAL void block_intadd_c(const uint8_t *blk, int kind, int nchunks, const uint32_t *xb,
                                   const uint32_t *mask, float out[4]);
/* sparse.c */
SEOFP_INTERNAL int sparse_ok(const seofp_layer *w);
/* decode.c */
SEOFP_INTERNAL float f16_top_byte(unsigned b);
SEOFP_INTERNAL void block_fma_c(const void *blk, int kind, int e_min, int nchunks, const float *x,
                                float out[4]);

#if SEOFP_HAVE_AVX2_PATH
AVX2_FN static inline float reduce_avx2(__m256 a0, __m256 a1) {
    __m256 s = _mm256_add_ps(a0, a1);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps(d, d, 1)));
}


/* intadd.c */
AVX2_FN SEOFP_INTERNAL void xw_prep_avx2(const uint32_t *xb, int cols_pad, uint16_t *xw);
AVX2_FN SEOFP_INTERNAL void block_intadd16w_avx2(const uint8_t *blk, int nchunks,
                                                 const uint16_t *xw, float out[4]);
AVX2_FN SEOFP_INTERNAL void block_intadd_avx2(const uint8_t *blk, int kind, int nchunks,
                                              const uint32_t *xb, const uint32_t *mask,
                                              int xmask, int wzero, float out[4]);
AVX2_FN SEOFP_INTERNAL void panel_intadd(const seofp_layer *w, const uint8_t *blk, uint32_t *A,
                                         uint32_t *Z);
/* decode.c */
AVX2_FN SEOFP_INTERNAL void block_f16_avx2(const uint8_t *blk, int nchunks, const float *x,
                                           float out[4]);
AVX2_FN SEOFP_INTERNAL void block_bits_avx2(const uint8_t *blk, int nchunks, int e_min,
                                            const float *x, float out[4]);
AVX2_FN SEOFP_INTERNAL const float *panel_fma(const seofp_layer *w, const uint8_t *blk,
                                              float *P);
/* fp32.c */
AVX2_FN SEOFP_INTERNAL void block_fp32_avx2(const float *blk, int nchunks, const float *x,
                                            float out[4]);
#endif

/* recurrent.c: the batch-1 product of an LSTM step or a GEMV (intadd layouts) */
#if SEOFP_HAVE_AVX2_PATH
AVX2_FN SEOFP_INTERNAL int rec_gemv_avx2(const seofp_layer *w, const float *h, float *y,
                                         float *scratch);
AVX2_FN SEOFP_INTERNAL void rec_blocks_avx2(const blocks_job *jb, int b0, int b1);
#endif

#if SEOFP_HAVE_AVX2_PATH
/* gemm_tiles.c: the batch > 1 product of every kind, prepared columns [i0, i1) times every
 * block (scale: DECODE_F16's 2^scale_exp, else 1) */
AVX2_FN SEOFP_INTERNAL void gemm_tiles4(const seofp_layer *w, const uint32_t *prep,
                                        const int *cmask, int i0, int i1, float *y, int ys_n,
                                        int ys_r, float scale, float *panel);
/* sparse.c: the zero-skipping batch > 1 intadd product, prepared columns [0, n) */
AVX2_FN SEOFP_INTERNAL void gemm_intadd_sparse(const seofp_layer *w, const uint32_t *prep,
                                               const int *cmask, int n, float *y, int ys_n,
                                               int ys_r, float *work);
#endif

#endif
