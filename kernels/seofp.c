/* SEOFP kernels (KERNEL.md 4): intadd, decode, fp32; GEMV/GEMM; LSTM, linear, conv1d, norm.
 *
 * Two code paths with one reduction order (seofp.h): a portable C path and an AVX2/FMA/F16C path
 * compiled per function with __attribute__((target)), chosen at run time. Never build with
 * -ffast-math or -march=native: the first reorders sums and sets FTZ/DAZ process-wide.
 */
#include "seofp.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SEOFP_HAVE_AVX2_PATH 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#else
#define SEOFP_HAVE_AVX2_PATH 0
#endif

#define PREFETCH_BYTES 4096

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

static int active_variant(void) {
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

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ------------------------------------------------------------------------------ preparation */
/* intadd pre-pass (KERNEL.md 4.5), once per input vector: xb = bits(x) + (e_min - 1) << 23 and a
 * mask that is all ones only for activations whose products are all normal. Returns clamps. */
static int prep_intadd(const float *x, int cols, int cols_pad, int e_min, int e_max,
                       uint32_t *xb, uint32_t *mask) {
    int clamps = 0;
    const uint32_t fold = (uint32_t)(e_min - 1) << 23; /* mod 2^32, wrap-around is harmless */
    for (int k = 0; k < cols; k++) {
        uint32_t u = f2u(x[k]);
        int E = (int)((u >> 23) & 0xFF);
        /* zero, subnormal, or |x| * 2^e_min < 2^-126: every product is forced to +0 */
        int ok = E != 0 && E + e_min >= 1;
        if (E + e_max >= 255) { /* |x| * 2^e_max >= 2^128: clamp to the largest finite-safe x */
            u = (u & 0x80000000u) | ((uint32_t)(254 - e_max) << 23) | 0x007FFFFFu;
            clamps++;
        }
        xb[k] = u + fold;
        mask[k] = ok ? 0xFFFFFFFFu : 0u;
    }
    for (int k = cols; k < cols_pad; k++) { xb[k] = 0; mask[k] = 0; }
    return clamps;
}

static void prep_pad(const float *x, int cols, int cols_pad, float *xp) {
    memcpy(xp, x, (size_t)cols * sizeof(float));
    for (int k = cols; k < cols_pad; k++) xp[k] = 0.0f;
}

/* Exact fp16 value of a byte that is the top byte of an IEEE half. */
static float f16_top_byte(unsigned b) {
    unsigned E = (b >> 2) & 0x1F, m = (b & 3u) << 8;
    float v;
    if (E == 0) v = ldexpf((float)m, -24);
    else if (E == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(1024 + m), (int)E - 25);
    return (b & 0x80) ? -v : v;
}

/* The fixed horizontal reduction of seofp.h. */
static inline float reduce16(const float a[16]) {
    float s[8], q[4], d[2];
    for (int l = 0; l < 8; l++) s[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) q[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++) d[l] = q[l] + q[l + 2];
    return d[0] + d[1];
}

/* ------------------------------------------------------------------------- portable blocks */
/* Each block function computes the 4 row sums of one 4-row block for one prepared vector. */
static void block_intadd_c(const uint8_t *blk, int nchunks, const uint32_t *xb,
                           const uint32_t *mask, float out[4]) {
    for (int r = 0; r < 4; r++) {
        float a[16] = {0};
        for (int j = 0; j < nchunks; j++) {
            const uint8_t *p = blk + (size_t)j * 64 + r * 16;
            for (int l = 0; l < 16; l++) {
                uint32_t b = p[l], k = (uint32_t)(j * 16 + l);
                uint32_t prod = xb[k] + ((b & 0x7Fu) << 23) + ((b & 0x80u) << 24);
                prod &= mask[k] & (b ? 0xFFFFFFFFu : 0u);
                a[l] += u2f(prod);
            }
        }
        out[r] = reduce16(a);
    }
}

static void block_fma_c(const void *blk, int kind, int e_min, int nchunks, const float *x,
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

/* ----------------------------------------------------------------------------- AVX2 blocks */
#if SEOFP_HAVE_AVX2_PATH
AVX2_FN static inline float reduce_avx2(__m256 a0, __m256 a1) {
    __m256 s = _mm256_add_ps(a0, a1);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps(d, d, 1)));
}

/* product bits = xb + (c << 23) + (s << 31); t = zero-extended byte s<<7|c. vpsignd zeroes the
 * lanes whose byte is 0 (zero weights); the x mask zeroes guarded activations. */
#define INTADD_LANE(t, xbv, mv, acc)                                                   \
    do {                                                                               \
        __m256i u_ = _mm256_slli_epi32(t, 23); /* c<<23 | s<<30 */                    \
        __m256i p_ = _mm256_add_epi32(_mm256_add_epi32(xbv, u_), _mm256_and_si256(u_, c30)); \
        p_ = _mm256_and_si256(_mm256_sign_epi32(p_, t), mv);                           \
        acc = _mm256_add_ps(acc, _mm256_castsi256_ps(p_));                             \
    } while (0)

AVX2_FN static void block_intadd_avx2(const uint8_t *blk, int nchunks, const uint32_t *xb,
                                      const uint32_t *mask, float out[4]) {
    const __m256i c30 = _mm256_set1_epi32(0x40000000);
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int j = 0; j < nchunks; j++) {
        const uint8_t *p = blk + (size_t)j * 64;
        _mm_prefetch((const char *)p + PREFETCH_BYTES, _MM_HINT_T0);
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(xb + j * 16));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + j * 16 + 8));
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(mask + j * 16));
        __m256i m1 = _mm256_loadu_si256((const __m256i *)(mask + j * 16 + 8));
        for (int r = 0; r < 4; r++) {
            __m256i t0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + r * 16)));
            __m256i t1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + r * 16 + 8)));
            INTADD_LANE(t0, x0, m0, a[2 * r]);
            INTADD_LANE(t1, x1, m1, a[2 * r + 1]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = reduce_avx2(a[2 * r], a[2 * r + 1]);
}

AVX2_FN static void block_f16_avx2(const uint8_t *blk, int nchunks, const float *x,
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

AVX2_FN static void block_bits_avx2(const uint8_t *blk, int nchunks, int e_min, const float *x,
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

AVX2_FN static void block_fp32_avx2(const float *blk, int nchunks, const float *x, float out[4]) {
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

/* --------------------------------------------------------------------------------- GEMM */
static int layer_ok(const seofp_layer *w) {
    if (!w || !w->data || w->rows < 1 || w->cols < 1) return 0;
    if (w->rows_pad != (w->rows + 3) / 4 * 4 || w->cols_pad != (w->cols + 15) / 16 * 16) return 0;
    if (w->kind < SEOFP_INTADD || w->kind > SEOFP_FP32) return 0;
    if (w->kind != SEOFP_FP32 && (w->e_min < -126 || w->e_max > 127 || w->e_min > w->e_max))
        return 0;
    return 1;
}

static size_t prep_floats(const seofp_layer *w) {
    return (size_t)w->cols_pad * (w->kind == SEOFP_INTADD ? 2 : 1);
}

size_t seofp_gemm_scratch_floats(const seofp_layer *w, int n) {
    if (!layer_ok(w) || n < 0) return 0;
    return prep_floats(w) * (size_t)n;
}

int seofp_gemm(const seofp_layer *w, const float *x, int n, int ldx, float *y, int ys_n,
               int ys_r, float *scratch) {
    if (!layer_ok(w) || !x || !y || !scratch || n < 0 || ldx < w->cols) return SEOFP_EARG;
    const int cp = w->cols_pad, nchunks = cp / 16, nblocks = w->rows_pad / 4;
    const size_t pf = prep_floats(w), elem = w->kind == SEOFP_FP32 ? 4 : 1;
    int clamps = 0;
    for (int i = 0; i < n; i++) {
        float *s = scratch + (size_t)i * pf;
        if (w->kind == SEOFP_INTADD)
            clamps += prep_intadd(x + (size_t)i * ldx, w->cols, cp, w->e_min, w->e_max,
                                  (uint32_t *)s, (uint32_t *)s + cp);
        else
            prep_pad(x + (size_t)i * ldx, w->cols, cp, s);
    }
    const float scale = w->kind == SEOFP_DECODE_F16 ? ldexpf(1.0f, w->scale_exp) : 1.0f;
    const int avx2 = active_variant() == SEOFP_VARIANT_AVX2;
    for (int b = 0; b < nblocks; b++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)b * cp * 4 * elem;
        for (int i = 0; i < n; i++) {
            const float *s = scratch + (size_t)i * pf;
            float out[4];
#if SEOFP_HAVE_AVX2_PATH
            if (avx2) {
                switch (w->kind) {
                case SEOFP_INTADD:
                    block_intadd_avx2(blk, nchunks, (const uint32_t *)s, (const uint32_t *)s + cp,
                                      out);
                    break;
                case SEOFP_DECODE_F16: block_f16_avx2(blk, nchunks, s, out); break;
                case SEOFP_DECODE_BITS: block_bits_avx2(blk, nchunks, w->e_min, s, out); break;
                default: block_fp32_avx2((const float *)blk, nchunks, s, out); break;
                }
            } else
#endif
            {
                (void)avx2;
                if (w->kind == SEOFP_INTADD)
                    block_intadd_c(blk, nchunks, (const uint32_t *)s, (const uint32_t *)s + cp,
                                   out);
                else
                    block_fma_c(blk, w->kind, w->e_min, nchunks, s, out);
            }
            for (int r = 0; r < 4 && b * 4 + r < w->rows; r++)
                y[(size_t)i * ys_n + (size_t)(b * 4 + r) * ys_r] =
                    scale == 1.0f ? out[r] : out[r] * scale;
        }
    }
    return clamps;
}

int seofp_gemv(const seofp_layer *w, const float *x, float *y, float *scratch) {
    return w ? seofp_gemm(w, x, 1, w->cols, y, 0, 1, scratch) : SEOFP_EARG;
}

/* ------------------------------------------------------------------------ layers and LSTM */
/* expf-based formulas, the same as the engine's numpy reference */
static inline float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

static inline float act_apply(float v, int act, float slope) {
    switch (act) {
    case SEOFP_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case SEOFP_ACT_LEAKY: return v >= 0.0f ? v : v * slope;
    case SEOFP_ACT_TANH: return tanhf(v);
    case SEOFP_ACT_SIGMOID: return sigmoidf(v);
    default: return v;
    }
}

size_t seofp_lstm_scratch_floats(const seofp_layer *wih, const seofp_layer *whh, int T) {
    if (!layer_ok(wih) || !layer_ok(whh) || T < 0) return 0;
    size_t g = seofp_gemm_scratch_floats(wih, T), s = seofp_gemm_scratch_floats(whh, 1);
    return (size_t)T * wih->rows + (size_t)whh->rows + (g > s ? g : s);
}

int seofp_lstm(const seofp_layer *wih, const seofp_layer *whh, const float *bias, int T,
               const float *x, int ldx, float *out, int ldo, float *h, float *c, int reverse,
               float *scratch) {
    if (!layer_ok(wih) || !layer_ok(whh) || !bias || !x || !out || !h || !c || !scratch || T < 0)
        return SEOFP_EARG;
    const int H = whh->cols;
    if (wih->rows != 4 * H || whh->rows != 4 * H || ldo < H) return SEOFP_EARG;
    float *G = scratch, *g = scratch + (size_t)T * 4 * H, *work = g + 4 * H;
    /* all input projections at once, then only W_hh per step (KERNEL.md 4.7) */
    int rc = seofp_gemm(wih, x, T, ldx, G, 4 * H, 1, work);
    if (rc < 0) return rc;
    int clamps = rc;
    for (int s = 0; s < T; s++) {
        const int t = reverse ? T - 1 - s : s;
        rc = seofp_gemv(whh, h, g, work);
        if (rc < 0) return rc;
        clamps += rc;
        const float *gx = G + (size_t)t * 4 * H;
        float *o = out + (size_t)t * ldo;
        for (int j = 0; j < H; j++) {
            float gi = sigmoidf(gx[j] + bias[j] + g[j]);
            float gf = sigmoidf(gx[H + j] + bias[H + j] + g[H + j]);
            float gg = tanhf(gx[2 * H + j] + bias[2 * H + j] + g[2 * H + j]);
            float go = sigmoidf(gx[3 * H + j] + bias[3 * H + j] + g[3 * H + j]);
            c[j] = gf * c[j] + gi * gg;
            o[j] = go * tanhf(c[j]);
        }
        memcpy(h, o, (size_t)H * sizeof(float));
    }
    return clamps;
}

int seofp_linear(const seofp_layer *w, const float *bias, int n, const float *x, float *y,
                 int act, float slope, float *scratch) {
    if (!layer_ok(w) || !y || n < 0) return SEOFP_EARG;
    int rc = seofp_gemm(w, x, n, w->cols, y, w->rows, 1, scratch);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++) {
        float *row = y + (size_t)i * w->rows;
        for (int r = 0; r < w->rows; r++)
            row[r] = act_apply(bias ? row[r] + bias[r] : row[r], act, slope);
    }
    return rc;
}

#define CONV_TB 64 /* time steps per im2col block: the block stays in L2 */

size_t seofp_conv1d_scratch_floats(const seofp_layer *w, int ksize) {
    if (!layer_ok(w) || ksize < 1) return 0;
    return (size_t)CONV_TB * w->cols + seofp_gemm_scratch_floats(w, CONV_TB);
}

int seofp_conv1d(const seofp_layer *w, const float *bias, int cin, int T, int ksize,
                 const float *x, float *y, float *scratch) {
    if (!layer_ok(w) || !x || !y || !scratch || T < 1 || ksize < 1 || ksize % 2 == 0 ||
        w->cols != cin * ksize)
        return SEOFP_EARG;
    const int pad = ksize / 2, K = w->cols;
    float *cols = scratch, *work = scratch + (size_t)CONV_TB * K;
    int clamps = 0;
    for (int t0 = 0; t0 < T; t0 += CONV_TB) {
        const int nb = T - t0 < CONV_TB ? T - t0 : CONV_TB;
        for (int i = 0; i < nb; i++) {
            float *col = cols + (size_t)i * K;
            for (int ci = 0; ci < cin; ci++) {
                const float *xc = x + (size_t)ci * T;
                for (int j = 0; j < ksize; j++) {
                    int tt = t0 + i + j - pad;
                    col[ci * ksize + j] = (tt >= 0 && tt < T) ? xc[tt] : 0.0f;
                }
            }
        }
        int rc = seofp_gemm(w, cols, nb, K, y + t0, 1, T, work);
        if (rc < 0) return rc;
        clamps += rc;
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
