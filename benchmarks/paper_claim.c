/* The paper's comparison in its own setting: a plain C loop with an fp32 multiply against the
 * same loop with the integer add on the float bits (benchmarks/bench_paper_claim.py builds this
 * file twice: scalar, vectorisation off, and vectorised for AVX2).
 *
 * y[i][r] = sum_k x[i][k] * w[r][k] for n input vectors; every row keeps 16 lane sums (lane =
 * k % 16, the engine's order, so the vectorised build needs no reassociation) then adds them.
 *   mul:    a[l] += x * w                    (fp32 multiply, then add; no contraction)
 *   intadd: a[l] += bits^-1(xb + wb)         (xb = bits(x) - 127 << 23 once per vector, wb =
 *                                             bits(w): the paper's x_bits + w_bits - bias)
 *   code8:  a[l] += bits^-1(xb + (c << 23) + (s << 31)), c, s from one byte per weight
 * Weights are powers of two and activations normal, so the three give the same sums. */
#include <stdint.h>
#include <string.h>

static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static float row_sum(const float a[16]) {
    float s = 0.0f;
    for (int l = 0; l < 16; l++) s += a[l];
    return s;
}

void mul_gemm(const float *w, int rows, int cols, const float *x, int n, float *y, int reps) {
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++) {
                const float *wr = w + (size_t)r * cols, *xi = x + (size_t)i * cols;
                float a[16] = {0};
                for (int k = 0; k < cols; k += 16)
                    for (int l = 0; l < 16; l++) a[l] += xi[k + l] * wr[k + l];
                y[(size_t)i * rows + r] = row_sum(a);
            }
}

void intadd_gemm(const uint32_t *wb, int rows, int cols, const uint32_t *xb, int n, float *y,
                 int reps) {
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++) {
                const uint32_t *wr = wb + (size_t)r * cols, *xi = xb + (size_t)i * cols;
                float a[16] = {0};
                for (int k = 0; k < cols; k += 16)
                    for (int l = 0; l < 16; l++) a[l] += u2f(xi[k + l] + wr[k + l]);
                y[(size_t)i * rows + r] = row_sum(a);
            }
}

void code8_gemm(const uint8_t *code, int rows, int cols, const uint32_t *xb, int n, float *y,
                int reps) {
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++) {
                const uint8_t *cr = code + (size_t)r * cols;
                const uint32_t *xi = xb + (size_t)i * cols;
                float a[16] = {0};
                for (int k = 0; k < cols; k += 16)
                    for (int l = 0; l < 16; l++) {
                        uint32_t c = cr[k + l];
                        a[l] += u2f(xi[k + l] + ((c & 0x7Fu) << 23) + ((c >> 7) << 31));
                    }
                y[(size_t)i * rows + r] = row_sum(a);
            }
}

#ifdef __AVX2__
#include <immintrin.h>
/* This core's arithmetic peak: 12 independent accumulators, 8 lanes each, iters rounds.
 * fma: one fused multiply-add per 8 products; intadd: one integer add and one float add per
 * 8 products (the engine's inner operation; here on the accumulator's own bits, so that no add
 * can be hoisted). Returns the products computed. */
double peak_fma(long iters) {
    __m256 a[12], x = _mm256_set1_ps(1.0f), w = _mm256_set1_ps(0.0f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(x, w, a[i]);
    float s = 0.0f, out[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(out, a[i]);
        s += out[0];
    }
    return s >= 0.0f ? 96.0 * (double)iters : 0.0; /* s keeps the loop alive */
}

double peak_intadd(long iters) {
    __m256 a[12];
    const __m256i w = _mm256_set1_epi32(0);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) /* the integer add on the accumulator's own bits */
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_add_ps(
                a[i], _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(a[i]), w)));
    float s = 0.0f, out[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(out, a[i]);
        s += out[0];
    }
    return s >= 0.0f ? 96.0 * (double)iters : 0.0;
}
#else
double peak_fma(long iters) { (void)iters; return 0.0; }
double peak_intadd(long iters) { (void)iters; return 0.0; }
#endif
