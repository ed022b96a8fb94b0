/* SEOFP kernels, the recurrent product of an LSTM step (AVX2, intadd layouts): y = W_hh h for one
 * state vector h, as seofp_gemv computes it, bit for bit, with less work per step.
 *
 * What seofp_gemv does per call and this path avoids or shortens:
 *   - the argument and layer checks (lstm_dirs checks the layer once per call; seofp_gemm
 *     routes its batch-1 intadd products here after its own checks);
 *   - one block function call per 4 rows, each zeroing, spilling and reloading its 8
 *     accumulators, then 4 horizontal reductions of 7 operations: here one loop over every block,
 *     and the rows of two blocks reduced together by a transpose-add tree (29 operations for 8
 *     rows instead of 56), stored as one vector;
 *   - the dword path for layers with zero weights, 1-byte codes and nibbles: here every layout is
 *     turned into the 16-bit addends a = s << 15 | c << 7 in registers (1-byte codes by one
 *     vpmaddubsw and an AND, rec_xw_codes) and added to the high halves of the prepared
 *     activations (xw, as in block_intadd16w_avx2), so a product costs one 16-bit add and half
 *     of two unpacks; zero weights zero both halves of their products by one 16-bit compare
 *     (8 operations per 16 products instead of 10), masked activations by a zeroed low half and
 *     one AND of the high half.
 *
 * Same bits as seofp_gemv: the product bits are (bits(x) + fold + (a << 16)) mod 2^32 in both,
 * forced to +0 for a zero weight (a = 0, the 32-bit addend is 0 exactly then) or a masked
 * activation; each row keeps its 16 lane sums a[l] accumulated in increasing k and reduces them
 * in the order of reduce16 (seofp_internal.h): s = a[l] + a[l+8], q = s[l] + s[l+4],
 * d = q[l] + q[l+2], y = d[0] + d[1]. The pre-pass is prep_intadd itself (clamps, masks and the
 * non-finite check unchanged). docs/recurrent_step.md has the whole argument and the numbers. */
#include "seofp_internal.h"

#if SEOFP_HAVE_AVX2_PATH
/* xw per 16-column chunk j: 16 low halves, 16 high halves, then (masked vectors only) 16 mask
 * words, all in the W16_PERM order; a masked activation's low half is 0, so its products are
 * +0 once the high half is ANDed with the mask. */
AVX2_FN static void rec_xw(const uint32_t *xb, const uint32_t *mask, int cols_pad, int masked,
                           uint16_t *xw) {
    const __m256i low = _mm256_set1_epi32(0xFFFF);
    for (int j = 0; j < cols_pad / 16; j++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(xb + j * 16));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + j * 16 + 8));
        __m256i l0 = _mm256_and_si256(x0, low), l1 = _mm256_and_si256(x1, low);
        uint16_t *p = xw + (size_t)j * 48;
        if (masked) {
            __m256i m0 = _mm256_loadu_si256((const __m256i *)(mask + j * 16));
            __m256i m1 = _mm256_loadu_si256((const __m256i *)(mask + j * 16 + 8));
            l0 = _mm256_and_si256(l0, m0);
            l1 = _mm256_and_si256(l1, m1);
            /* 0 or -1 words pack to 0 or 0xFFFF */
            _mm256_store_si256((__m256i *)(p + 32), _mm256_packs_epi32(m0, m1));
        }
        /* in-lane packs: k 0-3, 8-11, 4-7, 12-15 = W16_PERM (exact: every value <= 0xFFFF) */
        _mm256_store_si256((__m256i *)p, _mm256_packus_epi32(l0, l1));
        _mm256_store_si256((__m256i *)(p + 16),
                           _mm256_packus_epi32(_mm256_srli_epi32(x0, 16),
                                               _mm256_srli_epi32(x1, 16)));
    }
}

/* 1-byte codes take their addends straight from the bytes (rec_block_codes): a vpmaddubsw with
 * 128 in the even (odd) bytes and 0 in the others gives 128 * int8(b) = c << 7 - s << 14 for the
 * even (odd) bytes of a row pair, and clearing bit 14 makes it s << 15 | c << 7 (c <= 127: the
 * bit is the sign's alone). By W8_POS, the even bytes' words hold rows 2p (words 0-3, 8-11) and
 * 2p+1 (4-7, 12-15) at l = 0, 2, 8, 10 | 4, 6, 12, 14, the odd bytes' at l + 1; the activations'
 * halves are laid out to match: per chunk, low and high halves for the even words, the same for
 * the odd words, then (masked vectors) the masks of both. */
AVX2_FN static void rec_xw_codes(const uint32_t *xb, const uint32_t *mask, int cols_pad,
                                 int masked, uint16_t *xw) {
    const __m256i low = _mm256_set1_epi32(0xFFFF);
    for (int j = 0; j < cols_pad / 16; j++) {
        const __m256 x0 = _mm256_loadu_ps((const float *)(xb + j * 16));
        const __m256 x1 = _mm256_loadu_ps((const float *)(xb + j * 16 + 8));
        uint16_t *p = xw + (size_t)j * 96;
        for (int o = 0; o < 2; o++) {
            /* k 0, 2, 8, 10 | 4, 6, 12, 14 (o = 0) or k + 1 (o = 1), twice (both rows) */
            __m256i a = _mm256_castps_si256(o ? _mm256_shuffle_ps(x0, x1, 0xDD)   /* 3131 */
                                              : _mm256_shuffle_ps(x0, x1, 0x88)); /* 2020 */
            __m256i l = _mm256_and_si256(a, low);
            if (masked) {
                const __m256 m0 = _mm256_loadu_ps((const float *)(mask + j * 16));
                const __m256 m1 = _mm256_loadu_ps((const float *)(mask + j * 16 + 8));
                __m256i m = _mm256_castps_si256(o ? _mm256_shuffle_ps(m0, m1, 0xDD)
                                                  : _mm256_shuffle_ps(m0, m1, 0x88));
                l = _mm256_and_si256(l, m);
                _mm256_store_si256((__m256i *)(p + 64 + 16 * o), _mm256_packs_epi32(m, m));
            }
            __m256i hi = _mm256_srli_epi32(a, 16);
            _mm256_store_si256((__m256i *)(p + 32 * o), _mm256_packus_epi32(l, l));
            _mm256_store_si256((__m256i *)(p + 32 * o + 16), _mm256_packus_epi32(hi, hi));
        }
    }
}

/* The 16-bit addends s << 15 | c << 7 of rows 2h, 2h+1 of chunk j (16 words each, W16_PERM
 * order) of 16-bit addends or nibbles (1-byte codes: rec_block_codes); a word is 0 exactly when
 * the 32-bit addend is. */
AVX2_FN static inline __attribute__((always_inline)) void rec_addends(const uint8_t *blk, int j,
                                                                      int h, const int kind,
                                                                      __m256i a[2]) {
    if (kind == SEOFP_INTADD16) {
        const uint8_t *p = blk + (size_t)j * 128 + h * 64;
        a[0] = _mm256_loadu_si256((const __m256i *)p);
        a[1] = _mm256_loadu_si256((const __m256i *)(p + 32));
    } else { /* INTADD4: the tables of nib_addends (intadd.c), high and low byte of a */
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        const __m256i th = _mm256_setr_epi8(
            0, 0, 1, 1, 2, 2, 3, 3, -128, -128, -127, -127, -126, -126, -125, -125, 0, 0, 1, 1,
            2, 2, 3, 3, -128, -128, -127, -127, -126, -126, -125, -125);
        const __m256i tl = _mm256_setr_epi8(
            0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0,
            -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128);
        __m256i v = _mm256_loadu_si256((const __m256i *)(blk + (size_t)j * 32));
        __m256i nib = _mm256_and_si256(h ? _mm256_srli_epi16(v, 4) : v, low4);
        __m256i hb = _mm256_shuffle_epi8(th, nib), lb = _mm256_shuffle_epi8(tl, nib);
        a[0] = _mm256_unpacklo_epi8(lb, hb);
        a[1] = _mm256_unpackhi_epi8(lb, hb);
    }
}

/* 4 rows' lane sums (a[2r] k 0-7, a[2r+1] k 8-15) to d = (d0[0], d0[1], d2[0], d2[1] |
 * d1[0], d1[1], d3[0], d3[1]): s = a[l] + a[l+8], q = s[l] + s[l+4], d = q[l] + q[l+2]. */
AVX2_FN static inline __attribute__((always_inline)) __m256 rec_reduce4(const __m256 a[8]) {
    __m256 s0 = _mm256_add_ps(a[0], a[1]), s1 = _mm256_add_ps(a[2], a[3]);
    __m256 s2 = _mm256_add_ps(a[4], a[5]), s3 = _mm256_add_ps(a[6], a[7]);
    __m256 q01 = _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20),
                               _mm256_permute2f128_ps(s0, s1, 0x31)); /* q0 | q1 */
    __m256 q23 = _mm256_add_ps(_mm256_permute2f128_ps(s2, s3, 0x20),
                               _mm256_permute2f128_ps(s2, s3, 0x31)); /* q2 | q3 */
    return _mm256_add_ps(_mm256_shuffle_ps(q01, q23, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(q01, q23, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* rows 0-3 (d) and 4-7 (e) of rec_reduce4 to y0 .. y7 = d[0] + d[1] in row order */
AVX2_FN static inline __attribute__((always_inline)) __m256 rec_reduce8(__m256 d, __m256 e) {
    __m256 y = _mm256_add_ps(_mm256_shuffle_ps(d, e, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm256_shuffle_ps(d, e, _MM_SHUFFLE(3, 1, 3, 1)));
    /* y0 y2 y4 y6 | y1 y3 y5 y7 */
    return _mm256_permutevar8x32_ps(y, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* The 4 rows of block blk reduced to rec_reduce4's vector. */
AVX2_FN static inline __attribute__((always_inline)) __m256 rec_block(
    const uint8_t *blk, int nchunks, const uint16_t *xw, const int kind, const int xmask,
    const int wzero) {
    const __m256i zero = _mm256_setzero_si256();
    __m256 acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const uint16_t *px = xw + (size_t)j * 48; /* rec_xw: lo, hi, mask */
        const __m256i xl = _mm256_load_si256((const __m256i *)px);
        const __m256i xh = _mm256_load_si256((const __m256i *)(px + 16));
        __m256i m = xh;
        if (xmask) m = _mm256_load_si256((const __m256i *)(px + 32));
        for (int h = 0; h < 2; h++) {
            __m256i a[2];
            rec_addends(blk, j, h, kind, a);
            for (int q = 0; q < 2; q++) {
                __m256i hi = _mm256_add_epi16(xh, a[q]), lo = xl;
                if (xmask) hi = _mm256_and_si256(hi, m);
                if (wzero) {
                    const __m256i z = _mm256_cmpeq_epi16(a[q], zero);
                    hi = _mm256_andnot_si256(z, hi);
                    lo = _mm256_andnot_si256(z, lo);
                }
                const int r = 2 * h + q;
                acc[2 * r] = _mm256_add_ps(acc[2 * r],
                                           _mm256_castsi256_ps(_mm256_unpacklo_epi16(lo, hi)));
                acc[2 * r + 1] = _mm256_add_ps(
                    acc[2 * r + 1], _mm256_castsi256_ps(_mm256_unpackhi_epi16(lo, hi)));
            }
        }
    }
    return rec_reduce4(acc);
}

/* rec_block for 1-byte codes, the activations laid out by rec_xw_codes: rows r keep their lane
 * sums for the even l in e[r] (l = 0, 2, 8, 10 | 4, 6, 12, 14) and the odd l in od[r]; two
 * unpacks put them back in l order before the common reduction. */
AVX2_FN static inline __attribute__((always_inline)) __m256 rec_block_codes(
    const uint8_t *blk, int nchunks, const uint16_t *xw, const int xmask, const int wzero) {
    const __m256i zero = _mm256_setzero_si256(), keep = _mm256_set1_epi16((short)0xBFFF);
    const __m256i k_even = _mm256_set1_epi16(0x0080), k_odd = _mm256_set1_epi16(0x8000);
    __m256 e[4], od[4];
    for (int i = 0; i < 4; i++) e[i] = od[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const uint16_t *px = xw + (size_t)j * 96; /* rec_xw_codes */
        for (int h = 0; h < 2; h++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + (size_t)j * 64 + h * 32));
            for (int o = 0; o < 2; o++) {
                const __m256i xl = _mm256_load_si256((const __m256i *)(px + 32 * o));
                const __m256i xh = _mm256_load_si256((const __m256i *)(px + 32 * o + 16));
                const __m256i a = _mm256_and_si256(
                    _mm256_maddubs_epi16(o ? k_odd : k_even, v), keep);
                __m256i hi = _mm256_add_epi16(xh, a), lo = xl;
                if (xmask)
                    hi = _mm256_and_si256(hi,
                                          _mm256_load_si256((const __m256i *)(px + 64 + 16 * o)));
                if (wzero) {
                    const __m256i z = _mm256_cmpeq_epi16(a, zero);
                    hi = _mm256_andnot_si256(z, hi);
                    lo = _mm256_andnot_si256(z, lo);
                }
                __m256 *acc = o ? od : e;
                acc[2 * h] = _mm256_add_ps(acc[2 * h],
                                           _mm256_castsi256_ps(_mm256_unpacklo_epi16(lo, hi)));
                acc[2 * h + 1] = _mm256_add_ps(acc[2 * h + 1],
                                               _mm256_castsi256_ps(_mm256_unpackhi_epi16(lo, hi)));
            }
        }
    }
    __m256 a[8];
    for (int r = 0; r < 4; r++) {
        a[2 * r] = _mm256_unpacklo_ps(e[r], od[r]);     /* l 0-3 | 4-7 */
        a[2 * r + 1] = _mm256_unpackhi_ps(e[r], od[r]); /* l 8-11 | 12-15 */
    }
    return rec_reduce4(a);
}

/* rows of blocks [b0, b1) of y = W xw, two blocks (8 rows) per reduced vector. */
AVX2_FN static inline __attribute__((always_inline)) void rec_body(
    const seofp_layer *w, const uint16_t *xw, float *y, int b0, int b1, const int kind,
    const int xmask, const int wzero) {
    const int nchunks = w->cols_pad / 16;
    const size_t bb = block_bytes(w);
    const uint8_t *data = (const uint8_t *)w->data;
#define REC_BLOCK(B)                                                                           \
    (kind == SEOFP_INTADD                                                                      \
         ? rec_block_codes(data + (size_t)(B) * bb, nchunks, xw, xmask, wzero)                 \
         : rec_block(data + (size_t)(B) * bb, nchunks, xw, kind, xmask, wzero))
    int b = b0;
    for (; b + 2 <= b1; b += 2) {
        __m256 d = REC_BLOCK(b);
        __m256 e = REC_BLOCK(b + 1);
        __m256 v = rec_reduce8(d, e);
        if (b * 4 + 8 <= w->rows) {
            _mm256_storeu_ps(y + (size_t)b * 4, v);
        } else {
            float t[8];
            _mm256_storeu_ps(t, v);
            for (int r = 0; b * 4 + r < w->rows; r++) y[b * 4 + r] = t[r];
        }
    }
    if (b < b1) {
        __m256 d = REC_BLOCK(b);
        float t[8];
        _mm256_storeu_ps(t, rec_reduce8(d, d));
        for (int r = 0; r < 4 && b * 4 + r < w->rows; r++) y[b * 4 + r] = t[r];
    }
#undef REC_BLOCK
}

#define REC_BODY(KIND)                                                                         \
    do {                                                                                       \
        if (xmask && wzero) rec_body(w, xw, y, b0, b1, KIND, 1, 1);                            \
        else if (xmask) rec_body(w, xw, y, b0, b1, KIND, 1, 0);                                \
        else if (wzero) rec_body(w, xw, y, b0, b1, KIND, 0, 1);                                \
        else rec_body(w, xw, y, b0, b1, KIND, 0, 0);                                           \
    } while (0)

/* blocks [b0, b1) of a job of rec_gemv_avx2, on either thread of blocks_run_split */
AVX2_FN SEOFP_INTERNAL void rec_blocks_avx2(const blocks_job *jb, int b0, int b1) {
    const seofp_layer *w = jb->w;
    const uint16_t *xw = jb->xw;
    float *y = jb->y;
    const int xmask = jb->any_masked != 0, wzero = w->zeros != 0;
    if (w->kind == SEOFP_INTADD16) REC_BODY(SEOFP_INTADD16);
    else if (w->kind == SEOFP_INTADD) REC_BODY(SEOFP_INTADD);
    else REC_BODY(SEOFP_INTADD4);
}
#undef REC_BODY

/* y = W h for an intadd layer already checked (layer_ok) by the caller. scratch: xb and mask
 * words (2 cols_pad floats), then 32-byte aligned the 16-bit halves and masks (1.5 cols_pad
 * floats; 3 for codes), within seofp_gemv's scratch (seofp_gemm_scratch_floats(w, 1): 10 cols_pad).
 * Returns the clamps of the pre-pass or its SEOFP_ENONFINITE, like seofp_gemv. */
AVX2_FN SEOFP_INTERNAL int rec_gemv_avx2(const seofp_layer *w, const float *h, float *y,
                                         float *scratch) {
    const int cp = w->cols_pad;
    uint32_t *xb = (uint32_t *)scratch, *mask = xb + cp;
    uint16_t *xw = (uint16_t *)(((uintptr_t)(mask + cp) + 31) & ~(uintptr_t)31);
    int masked = 0;
    int rc = prep_intadd(h, w->cols, cp, w->e_min, w->e_max, intadd_fold(w), xb, mask, &masked);
    if (rc < 0) return rc;
    if (w->kind == SEOFP_INTADD) rec_xw_codes(xb, mask, cp, masked != 0, xw);
    else rec_xw(xb, mask, cp, masked != 0, xw);
    /* the block loop: rec_blocks_avx2, split over the second thread where seofp_set_threads(2)
     * and the product is large enough (threading.c) */
    const blocks_job jb = {w, NULL, 1, 0, 1, masked != 0, 1, y, 1.0f, xw, 1};
    blocks_run_split(&jb, w->rows_pad / 4);
    return rc;
}
#endif
