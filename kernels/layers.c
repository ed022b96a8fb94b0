/* SEOFP kernels, layers: LSTM (one direction, both directions interleaved, unidirectional
 * stacks), linear, conv1d, channel norm and activations, composed from seofp_gemm/seofp_gemv. */
#include "seofp_internal.h"

/* ------------------------------------------------------------------------ layers and LSTM */

/* Gate math (one exp formula for both code paths, so they agree bit for bit): exp by range
 * reduction to r in [-ln2/2, ln2/2] and a degree-7 polynomial (Cephes expf, <= 1 ulp on this
 * range), every step an IEEE operation or a fused multiply-add; sigmoid(v) = 1 / (1 + e^-v),
 * tanh(v) = 2 / (1 + e^-2v) - 1. Inputs are clamped where e^v over- or underflows. */
#define EXP_HI 88.0f /* n <= 127: 2^n stays a normal float */
#define EXP_LO -87.0f /* n >= -126 */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

static inline float exp_c(float v) {
    if (v != v) return v; /* NaN stays NaN, as in exp_avx2 (and is never converted to an int) */
    v = v > EXP_HI ? EXP_HI : v < EXP_LO ? EXP_LO : v;
    float n = rintf(v * LOG2E);
    float r = fmaf(-n, LN2_HI, v);
    r = fmaf(-n, LN2_LO, r);
    float p = fmaf(EXP_P0, r, EXP_P1);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    p = fmaf(p, r * r, r) + 1.0f;
    return p * u2f((uint32_t)((int32_t)n + 127) << 23);
}

static inline float sigmoid_c(float v) { return 1.0f / (1.0f + exp_c(-v)); }
static inline float tanh_c(float v) { return 2.0f / (1.0f + exp_c(-2.0f * v)) - 1.0f; }

/* layer activations: tanh and sigmoid by the gates' formulas, so that the AVX2 loop
 * (act_rows_avx2) gives the same bits */
static inline float act_apply(float v, int act, float slope) {
    switch (act) {
    case SEOFP_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case SEOFP_ACT_LEAKY: return v >= 0.0f ? v : v * slope;
    case SEOFP_ACT_TANH: return tanh_c(v);
    case SEOFP_ACT_SIGMOID: return sigmoid_c(v);
    default: return v;
    }
}

/* units j0 .. H-1 of one step: gx, bias, g are the (4H) gate pre-activations, c the cell state */
static void lstm_gates_c(int H, int j0, const float *gx, const float *bias, const float *g,
                         float *c, float *o) {
    for (int j = j0; j < H; j++) {
        float gi = sigmoid_c(gx[j] + bias[j] + g[j]);
        float gf = sigmoid_c(gx[H + j] + bias[H + j] + g[H + j]);
        float gg = tanh_c(gx[2 * H + j] + bias[2 * H + j] + g[2 * H + j]);
        float go = sigmoid_c(gx[3 * H + j] + bias[3 * H + j] + g[3 * H + j]);
        c[j] = gf * c[j] + gi * gg;
        o[j] = go * tanh_c(c[j]);
    }
}

#if SEOFP_HAVE_AVX2_PATH
AVX2_FN static inline __m256 neg_avx2(__m256 v) {
    return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f)); /* exactly -v, as the C path */
}

AVX2_FN static inline __m256 exp_avx2(__m256 v) {
    /* v second: max/min return their second operand when one is NaN, so a NaN pre-activation
     * (inf - inf in a product that overflowed) stays NaN as in exp_c, not EXP_LO */
    v = _mm256_min_ps(_mm256_set1_ps(EXP_HI), _mm256_max_ps(_mm256_set1_ps(EXP_LO), v));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(neg_avx2(n), _mm256_set1_ps(LN2_HI), v);
    r = _mm256_fmadd_ps(neg_avx2(n), _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(EXP_P0), r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2_FN static inline __m256 sigmoid_avx2(__m256 v) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp_avx2(neg_avx2(v))));
}

AVX2_FN static inline __m256 tanh_avx2(__m256 v) {
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    __m256 e = exp_avx2(_mm256_mul_ps(_mm256_set1_ps(-2.0f), v));
    return _mm256_sub_ps(_mm256_div_ps(two, _mm256_add_ps(one, e)), one);
}

/* Two passes over the units, each a run of independent vectors (no chain from the gates through c
 * to h inside one iteration, which left the core waiting on exp and divide latencies): first the
 * four gate activations, written over the pre-activations in g, then c and h. Every unit gets the
 * same operations in the same order as in lstm_gates_c. */
AVX2_FN static void lstm_gates_avx2(int H, const float *gx, const float *bias, float *g,
                                    float *c, float *o) {
    const int hv = H / 8 * 8; /* units [hv, H) by lstm_gates_c, on the raw g */
    for (int q = 0; q < 4; q++) {
        const float *gq = gx + (size_t)q * H, *bq = bias + (size_t)q * H;
        float *pq = g + (size_t)q * H;
        for (int j = 0; j < hv; j += 8) {
            __m256 v = _mm256_add_ps(
                _mm256_add_ps(_mm256_loadu_ps(gq + j), _mm256_loadu_ps(bq + j)),
                _mm256_loadu_ps(pq + j));
            _mm256_storeu_ps(pq + j, q == 2 ? tanh_avx2(v) : sigmoid_avx2(v));
        }
    }
    int j = 0;
    for (; j < hv; j += 8) {
        __m256 gi = _mm256_loadu_ps(g + j), gf = _mm256_loadu_ps(g + H + j);
        __m256 gg = _mm256_loadu_ps(g + 2 * H + j), go = _mm256_loadu_ps(g + 3 * H + j);
        /* c = gf * c + gi * gg as two rounded products and a rounded sum, like the C path */
        __m256 cv = _mm256_add_ps(_mm256_mul_ps(gf, _mm256_loadu_ps(c + j)),
                                  _mm256_mul_ps(gi, gg));
        _mm256_storeu_ps(c + j, cv);
        _mm256_storeu_ps(o + j, _mm256_mul_ps(go, tanh_avx2(cv)));
    }
    lstm_gates_c(H, j, gx, bias, g, c, o);
}

/* row[r] = act(row[r] + bias[r]) for r < n, 8 at a time, the rest by act_apply: the same
 * operations (max(v, +0) is v > 0 ? v : +0, NaN included; the blend picks v * slope where
 * v >= 0 is false) */
AVX2_FN static void act_rows_avx2(float *row, const float *bias, int n, int act, float slope) {
    const __m256 zero = _mm256_setzero_ps(), sl = _mm256_set1_ps(slope);
    int r = 0;
    for (; r + 8 <= n; r += 8) {
        __m256 v = _mm256_loadu_ps(row + r);
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + r));
        switch (act) {
        case SEOFP_ACT_RELU: v = _mm256_max_ps(v, zero); break;
        case SEOFP_ACT_LEAKY:
            v = _mm256_blendv_ps(_mm256_mul_ps(v, sl), v, _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
            break;
        case SEOFP_ACT_TANH: v = tanh_avx2(v); break;
        case SEOFP_ACT_SIGMOID: v = sigmoid_avx2(v); break;
        default: break;
        }
        _mm256_storeu_ps(row + r, v);
    }
    for (; r < n; r++) row[r] = act_apply(bias ? row[r] + bias[r] : row[r], act, slope);
}
#endif

size_t seofp_lstm_scratch_floats(const seofp_layer *wih, const seofp_layer *whh, int T) {
    if (!layer_ok(wih) || !layer_ok(whh) || T < 0) return 0;
    size_t g = seofp_gemm_scratch_floats(wih, T), s = seofp_gemm_scratch_floats(whh, 1);
    return (size_t)T * wih->rows + (size_t)whh->rows + (g > s ? g : s);
}

/* D (1 or 2) LSTM directions over the same T frames in lockstep: all input projections first,
 * then step s of every direction in turn, direction d at frame t = s (or T-1-s when reverse[d]).
 * The directions' recurrences are independent chains, so running them interleaved lets one
 * direction's gates and pre-pass overlap the other's product; each direction's operations are
 * exactly those of a call on its own (bit-identical). scratch: one seofp_lstm scratch per
 * direction, one after the other. */
/* Interleave the two directions only while both recurrent matrices fit in half of a 512 KiB L2
 * (Zen 3's, per core) with room for the gate buffers; beyond it they would evict each other. */
#define BLSTM_INTERLEAVE_BYTES (256 * 1024)

static int lstm_dirs(int D, const seofp_layer *const *wih, const seofp_layer *const *whh,
                     const float *const *bias, int T, const float *x, int ldx,
                     float *const *out, int ldo, float *const *h, float *const *c,
                     const int *reverse, float *scratch) {
    if (T < 0 || !x || !scratch || D < 1 || D > 2) return SEOFP_EARG;
    const int H = whh[0] ? whh[0]->cols : 0;
    float *G[2], *g[2], *work[2];
    float *sp = scratch;
    for (int d = 0; d < D; d++) {
        if (!layer_ok(wih[d]) || !layer_ok(whh[d]) || !bias[d] || !out[d] || !h[d] || !c[d])
            return SEOFP_EARG;
        if (whh[d]->cols != H || wih[d]->rows != 4 * H || whh[d]->rows != 4 * H || ldo < H)
            return SEOFP_EARG;
        if (!all_finite(bias[d], (size_t)4 * H) || !all_finite(h[d], (size_t)H) ||
            !all_finite(c[d], (size_t)H))
            return SEOFP_ENONFINITE;
        G[d] = sp;
        g[d] = sp + (size_t)T * 4 * H;
        work[d] = g[d] + 4 * H;
        sp += seofp_lstm_scratch_floats(wih[d], whh[d], T);
    }
    int clamps = 0;
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    int rec[2] = {0, 0};
    for (int d = 0; d < D; d++) rec[d] = avx2 && is_intadd(whh[d]);
    /* all input projections at once, then only W_hh per step
     * (docs/engine.md#batch-larger-than-one); one frame (a streaming step) is a GEMV, on the
     * recurrent product path where it applies */
    for (int d = 0; d < D; d++) {
        int rc;
#if SEOFP_HAVE_AVX2_PATH
        if (T == 1 && rec[d] && is_intadd(wih[d]) && ldx >= wih[d]->cols)
            rc = rec_gemv_avx2(wih[d], x, G[d], work[d]);
        else
#endif
            rc = seofp_gemm(wih[d], x, T, ldx, G[d], 4 * H, 1, work[d]);
        if (rc < 0) return rc;
        clamps += rc;
    }
    for (int s = 0; s < T; s++) {
        for (int d = 0; d < D; d++) {
            const int t = reverse[d] ? T - 1 - s : s;
            int rc;
#if SEOFP_HAVE_AVX2_PATH
            /* intadd: the recurrent product path (recurrent.c), same bits */
            if (rec[d]) rc = rec_gemv_avx2(whh[d], h[d], g[d], work[d]);
            else
#endif
                rc = seofp_gemv(whh[d], h[d], g[d], work[d]);
            if (rc < 0) return rc;
            clamps += rc;
            float *o = out[d] + (size_t)t * ldo;
            const float *gx = G[d] + (size_t)t * 4 * H;
#if SEOFP_HAVE_AVX2_PATH
            if (avx2) lstm_gates_avx2(H, gx, bias[d], g[d], c[d], o);
            else
#endif
                lstm_gates_c(H, 0, gx, bias[d], g[d], c[d], o);
            memcpy(h[d], o, (size_t)H * sizeof(float));
        }
    }
    (void)avx2;
    (void)rec;
    return clamps;
}

int seofp_lstm(const seofp_layer *wih, const seofp_layer *whh, const float *bias, int T,
               const float *x, int ldx, float *out, int ldo, float *h, float *c, int reverse,
               float *scratch) {
    if (!wih || !whh || !bias || !x || !out || !h || !c || !scratch || T < 0) return SEOFP_EARG;
    return lstm_dirs(1, &wih, &whh, &bias, T, x, ldx, &out, ldo, &h, &c, &reverse, scratch);
}

size_t seofp_blstm_scratch_floats(const seofp_layer *const *wih, const seofp_layer *const *whh,
                                  int T) {
    if (!wih || !whh) return 0;
    size_t a = seofp_lstm_scratch_floats(wih[0], whh[0], T);
    size_t b = seofp_lstm_scratch_floats(wih[1], whh[1], T);
    return a && b ? a + b : 0;
}

int seofp_blstm(const seofp_layer *const *wih, const seofp_layer *const *whh,
                const float *const *bias, int T, const float *x, int ldx, float *out, int ldo,
                float *state, float *scratch) {
    if (!wih || !whh || !bias || !out || !state || !whh[0] || !whh[1]) return SEOFP_EARG;
    const int H = whh[0]->cols;
    if (ldo < 2 * H) return SEOFP_EARG;
    float *outs[2] = {out, out + H};
    float *h[2] = {state, state + 2 * (size_t)H}, *c[2] = {state + H, state + 3 * (size_t)H};
    const int reverse[2] = {0, 1};
    if (!layer_ok(whh[0]) || !layer_ok(whh[1])) return SEOFP_EARG;
    const size_t both = block_bytes(whh[0]) * (size_t)(whh[0]->rows_pad / 4) +
                        block_bytes(whh[1]) * (size_t)(whh[1]->rows_pad / 4);
    if (both <= BLSTM_INTERLEAVE_BYTES)
        return lstm_dirs(2, wih, whh, bias, T, x, ldx, outs, ldo, h, c, reverse, scratch);
    /* W_hh of both directions would not stay in L2 together: one direction after the other */
    int clamps = 0;
    float *sp = scratch;
    for (int d = 0; d < 2; d++) {
        int rc = lstm_dirs(1, wih + d, whh + d, bias + d, T, x, ldx, outs + d, ldo, h + d, c + d,
                           reverse + d, sp);
        if (rc < 0) return rc;
        clamps += rc;
        sp += seofp_lstm_scratch_floats(wih[d], whh[d], T);
    }
    return clamps;
}

/* A unidirectional stack: two T x H activation buffers between layers, then one layer's
 * seofp_lstm scratch (the largest of any layer). */
size_t seofp_lstm_stack_scratch_floats(const seofp_layer *const *wih,
                                       const seofp_layer *const *whh, int layers, int T) {
    if (!wih || !whh || layers < 1 || T < 0) return 0;
    size_t most = 0;
    for (int l = 0; l < layers; l++) {
        size_t s = seofp_lstm_scratch_floats(wih[l], whh[l], T);
        if (s == 0) return 0;
        most = s > most ? s : most;
    }
    return 2 * (size_t)T * whh[0]->cols + most;
}

/* Every layer in one call (the streaming step: Python crosses into C once per chunk). Each layer
 * is exactly seofp_lstm on the previous layer's output, so the result is bit-identical to calling
 * the layers one by one. */
int seofp_lstm_stack(const seofp_layer *const *wih, const seofp_layer *const *whh,
                     const float *const *bias, int layers, int T, const float *x, int ldx,
                     float *out, float *state, float *scratch) {
    if (!wih || !whh || !bias || !x || !out || !state || !scratch || layers < 1 || T < 0)
        return SEOFP_EARG;
    for (int l = 0; l < layers; l++)
        if (!layer_ok(wih[l]) || !layer_ok(whh[l]) || whh[l]->cols != whh[0]->cols ||
            (l ? wih[l]->cols != whh[0]->cols : ldx < wih[0]->cols))
            return SEOFP_EARG;
    const int H = whh[0]->cols;
    float *buf[2] = {scratch, scratch + (size_t)T * H}, *work = scratch + 2 * (size_t)T * H;
    const float *in = x;
    int in_ld = ldx, clamps = 0;
    for (int l = 0; l < layers; l++) {
        float *o = l == layers - 1 ? out : buf[l & 1];
        int rc = seofp_lstm(wih[l], whh[l], bias[l], T, in, in_ld, o, H,
                            state + (size_t)2 * l * H, state + (size_t)(2 * l + 1) * H, 0, work);
        if (rc < 0) return rc;
        clamps += rc;
        in = o;
        in_ld = H;
    }
    return clamps;
}

int seofp_linear(const seofp_layer *w, const float *bias, int n, const float *x, float *y,
                 int act, float slope, float *scratch) {
    if (!layer_ok(w) || !y || n < 0) return SEOFP_EARG;
    int rc = seofp_gemm(w, x, n, w->cols, y, w->rows, 1, scratch);
    if (rc < 0) return rc;
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * w->rows;
#if SEOFP_HAVE_AVX2_PATH
        if (avx2) {
            act_rows_avx2(row, bias, w->rows, act, slope);
            continue;
        }
#endif
        for (int r = 0; r < w->rows; r++)
            row[r] = act_apply(bias ? row[r] + bias[r] : row[r], act, slope);
    }
    (void)avx2;
    return rc;
}

#define CONV_TB 48 /* time steps per im2col block (a multiple of the 3-column tile) */

/* Scratch: the prepared input (intadd: bits and masks, 2 * cin * T words; else none), per time
 * step a "window has a masked activation" flag, then CONV_TB prepared im2col columns. */
size_t seofp_conv1d_scratch_floats(const seofp_layer *w, int ksize, int T) {
    if (!layer_ok(w) || ksize < 1 || T < 0) return 0;
    const size_t xin = is_intadd(w) ? 2 * (size_t)(w->cols / ksize) * T : 0;
    return xin + (size_t)T + 1 + seofp_gemm_scratch_floats(w, CONV_TB);
}

/* im2col straight into the prepared-column layout: column i of block t0 holds, for each input
 * channel ci, the window x[ci][t - pad .. t - pad + ksize) (zero outside), then zero padding
 * to cols_pad. For intadd both words (bits, mask) are copied from the prepared input. */
static void conv_columns(const seofp_layer *w, int cin, int T, int ksize, const uint32_t *src,
                         size_t plane, int t0, int nb, const int *need_mask, float *prep) {
    const int pad = ksize / 2, K = w->cols, cp = w->cols_pad;
    const int words = is_intadd(w) ? 2 : 1;
    const size_t pf = prep_floats(w);
    for (int i = 0; i < nb; i++) {
        const int t = t0 + i, lo = t - pad, hi = t - pad + ksize;
        for (int q = 0; q < (need_mask[i] ? words : 1); q++) {
            uint32_t *col = (uint32_t *)(prep + (size_t)i * pf) + (size_t)q * cp;
            const uint32_t *xs = src + (size_t)q * plane;
            for (int ci = 0; ci < cin; ci++) {
                const uint32_t *xc = xs + (size_t)ci * T;
                uint32_t *dst = col + (size_t)ci * ksize;
                if (lo >= 0 && hi <= T) {
                    memcpy(dst, xc + lo, (size_t)ksize * 4); /* interior */
                } else {
                    for (int j = 0; j < ksize; j++) {
                        int tt = lo + j;
                        dst[j] = (tt >= 0 && tt < T) ? xc[tt] : 0u; /* +0, masked for intadd */
                    }
                }
            }
            memset(col + K, 0, (size_t)(cp - K) * 4);
        }
    }
}

int seofp_conv1d(const seofp_layer *w, const float *bias, int cin, int T, int ksize,
                 const float *x, float *y, float *scratch) {
    if (!layer_ok(w) || !x || !y || !scratch || T < 1 || ksize < 1 || ksize % 2 == 0 ||
        w->cols != cin * ksize)
        return SEOFP_EARG;
    const int pad = ksize / 2, intadd = is_intadd(w);
    const size_t plane = (size_t)cin * T;
    /* each input value is prepared once (not once per window it appears in) */
    uint32_t *xin = (uint32_t *)scratch;
    int *bad = (int *)(scratch + (intadd ? 2 * plane : 0)); /* masked activations up to t */
    float *gemm_scratch = (float *)(bad + T + 1);
    float *prep = prep_area(w, gemm_scratch);
    int *cmask = (int *)(prep + prep_floats(w) * CONV_TB);
    const uint32_t *src = (const uint32_t *)x;
    int clamps = 0;
    if (!all_finite(x, plane)) return SEOFP_ENONFINITE;
    for (int t = 0; t <= T; t++) bad[t] = 0;
    if (intadd) {
        for (int ci = 0; ci < cin; ci++) {
            int masked = 0;
            uint32_t *m = xin + plane + (size_t)ci * T;
            clamps += prep_intadd(x + (size_t)ci * T, T, T, w->e_min, w->e_max,
                                  intadd_fold(w), xin + (size_t)ci * T, m, &masked);
            if (masked)
                for (int t = 0; t < T; t++) bad[t + 1] += m[t] == 0;
        }
        for (int t = 0; t < T; t++) bad[t + 1] += bad[t]; /* prefix counts over time */
        src = xin;
    }
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    int need_mask[CONV_TB];
    for (int t0 = 0; t0 < T; t0 += CONV_TB) {
        const int nb = T - t0 < CONV_TB ? T - t0 : CONV_TB;
        for (int i = 0; i < nb; i++) {
            const int t = t0 + i, lo = t - pad, hi = t - pad + ksize;
            /* a window reaching past either end holds zeros: masked for intadd */
            cmask[i] = intadd && (lo < 0 || hi > T ||
                                  bad[hi < T ? hi : T] - bad[lo > 0 ? lo : 0] > 0);
        }
        /* the AVX2 GEMM reads a column's mask words only when its 3-column tile (or, at batch
         * 1, the column itself) is masked, or the layer has zero weights (5-column tiles that
         * start wherever the column groups put them: every mask is copied): the others are not
         * copied (half the im2col bytes); the portable path reads every mask. The zero-skipping
         * product, which gemm_run takes for these nb columns exactly when `skip` holds, reads
         * the masks of a group of SPARSE_F columns when one of them is masked. */
        const int skip = w->sparse && nb >= SPARSE_MIN_COLS, grp = skip ? SPARSE_F : 3;
        for (int i = 0; i < nb; i++) {
            const int g = i / grp * grp;
            int any = 0;
            for (int c = g; c < g + grp && c < nb; c++) any |= cmask[c];
            need_mask[i] = !avx2 || (w->zeros && !skip) || any;
        }
        conv_columns(w, cin, T, ksize, src, plane, t0, nb, need_mask, prep);
        gemm_run(w, prep, cmask, nb, y + t0, 1, T, gemm_scratch);
    }
    if (bias)
        for (int o = 0; o < w->rows; o++)
            for (int t = 0; t < T; t++) y[(size_t)o * T + t] += bias[o];
    return clamps;
}

int seofp_channel_norm_act(int C, int T, float *x, const float *mean, const float *var,
                           const float *gamma, const float *beta, float eps, int act,
                           float slope) {
    if (!x || C < 0 || T < 0 || (mean && (!var || !gamma || !beta))) return SEOFP_EARG;
    for (int ch = 0; ch < C; ch++) {
        float *row = x + (size_t)ch * T;
        if (mean) {
            /* torch's inference form: alpha = gamma / sqrt(var + eps), y = x * alpha + shift */
            const float alpha = gamma[ch] / sqrtf(var[ch] + eps);
            const float shift = beta[ch] - mean[ch] * alpha;
            for (int t = 0; t < T; t++) row[t] = act_apply(row[t] * alpha + shift, act, slope);
        } else {
            for (int t = 0; t < T; t++) row[t] = act_apply(row[t], act, slope);
        }
    }
    return 0;
}
