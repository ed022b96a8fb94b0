/* SEOFP kernels: sign-exponent-only weights, products by integer addition (docs/engine.md).
 *
 * This header is the public interface (every entry point below, built by cffi from
 * kernels/build.py). The implementation is split by concern: dispatch.c (code path, checks,
 * GEMM/GEMV), intadd.c, decode.c, fp32.c (the three kinds' blocks and tiles), layers.c (LSTM,
 * linear, conv1d, norm) and threading.c (the optional second thread); seofp_internal.h is the
 * interface between them.
 *
 * Weights live in a repacked layout: rows padded to a multiple of 4 (SEOFP_ROWS), columns to a
 * multiple of 16 (SEOFP_KSTEP) with zero codes. Block b holds rows 4b..4b+3; its chunk j holds
 * columns 16j..16j+15 as 4 consecutive runs of 16 elements, one per row, so every block is one
 * sequential stream. Element (r, k) sits at ((r/4)*(cols_pad/16) + k/16)*64 + (r%4)*16 + k%16.
 *
 * Element kinds (seofp_layer.kind):
 *   SEOFP_INTADD      uint8 sign<<7 | c, c = e - e_min + 1 (0 = zero): the paper's integer adder;
 *                     each chunk's rows stored in pairs of 32 bytes in the order W8_POS (seofp_internal.h)
 *   SEOFP_DECODE_F16  uint8 = top byte of an IEEE fp16 (2^-16..2^15), output scaled by 2^scale_exp
 *   SEOFP_DECODE_BITS uint8 sign<<7 | c, decoded to fp32 by bit construction (wide windows)
 *   SEOFP_FP32        float, the control
 *   SEOFP_INTADD16    uint16 a = s<<15 | c<<7 (0 = zero), the same integer adder with the addend
 *                     a << 16 one unpack away; each 16-run stored as k 0-3, 8-11, 4-7, 12-15;
 *                     with ianet = 1, a = top half of bits(w * 2^-63) (IA-NET's stored weight)
 *   SEOFP_INTADD4     nibbles s<<3 | c (c <= 7: windows of <= 7 exponents, e.g. s1e3), a chunk in
 *                     32 bytes in the order W4_BYTE (seofp_internal.h); two 16-entry tables + unpacks
 *
 * Reduction order (the same in every kind and variant, which makes them bit-identical under the
 * conditions of docs/engine.md#reduction-order-and-bit-identity): output row r keeps 16 lane sums
 * a[l], l = k % 16, each accumulated in increasing k; then s[l] = a[l] + a[l+8] (l < 8),
 * q[l] = s[l] + s[l+4] (l < 4),
 * d[l] = q[l] + q[l+2] (l < 2), y = d[0] + d[1]; DECODE_F16 then multiplies by 2^scale_exp.
 * intadd adds the integer-adder product as a float; the other kinds use a fused multiply-add,
 * which equals the same sum whenever the product x*w is exact
 * (docs/method.md#the-integer-add-identity).
 *
 * Batch > 1 (AVX2): each 4-row block is decoded once per column group into an L1 panel (decode:
 * fp32 floats; fp32: its own blocks; intadd: the integer addends (c << 23) + (s << 31) and zero
 * masks), then tiles of 4 rows x 3 columns run over it, lanes 0-7 and 8-15 of each 16-run in
 * separate passes with 12 accumulators (kernels/gemm_tiles.c, the same tile for every kind);
 * every (row, column) keeps the 16 lane sums and the reduction above, so batch > 1 is
 * bit-identical to batch 1. intadd skips the masks when no activation of a column is masked and
 * the layer has no zero weight (seofp_layer.zeros, set by the packer: a layer that has zero
 * weights but says it has none gets wrong sums for them); a layer with a zero-skipping index
 * (seofp_layer.sparse) skips its zero weights instead (kernels/sparse.c).
 *
 * LSTM gates use one exp formula (range reduction + Cephes polynomial, IEEE operations and fused
 * multiply-adds only) in both code paths, vectorized over the 4H gate vector on AVX2; the
 * portable path computes the same operations, so both agree bit for bit.
 *
 * Return values: >= 0 is the number of activations clamped by intadd's overflow guard (0 for the
 * other kinds); < 0 is an error (SEOFP_EARG bad argument, SEOFP_EKIND unknown kind,
 * SEOFP_ENONFINITE a NaN or inf in the activations, bias or state: found by the pre-pass, before
 * any product is computed and before any output is written).
 * No function allocates: callers pass every buffer, sized by the *_scratch_floats functions.
 *
 * These kernels know nothing of the .seofp file (docs/MODEL_FILE.md). The engine
 * (seofp_lab/infer/engine.py) reads its header and composes these calls; the steps around them
 * run there in numpy: the STFT and LPS features with their standardisation, and a mask model's
 * gain mask_floor + (1 - mask_floor) * sigmoid(y) (float32) after seofp_linear(SEOFP_ACT_SIGMOID).
 */
#ifndef SEOFP_H
#define SEOFP_H
#include <stdint.h>
#include <stddef.h>

/* cffi-cdef-begin */
#define SEOFP_ROWS 4
#define SEOFP_KSTEP 16
#define SEOFP_INTADD 0
#define SEOFP_DECODE_F16 1
#define SEOFP_DECODE_BITS 2
#define SEOFP_FP32 3
#define SEOFP_INTADD16 4
#define SEOFP_INTADD4 5
#define SEOFP_VARIANT_AUTO 0
#define SEOFP_VARIANT_PORTABLE 1
#define SEOFP_VARIANT_AVX2 2
#define SEOFP_EARG -1
#define SEOFP_EKIND -2
#define SEOFP_ENONFINITE -3
#define SEOFP_ACT_NONE 0
#define SEOFP_ACT_RELU 1
#define SEOFP_ACT_LEAKY 2
#define SEOFP_ACT_TANH 3
#define SEOFP_ACT_SIGMOID 4

typedef struct {
    int kind;           /* SEOFP_INTADD ... SEOFP_INTADD4 */
    int rows, cols;     /* logical shape (out, in) */
    int rows_pad, cols_pad;
    int e_min, e_max;   /* the layer's real exponent window (INTADD, DECODE_BITS) */
    int scale_exp;      /* DECODE_F16: y = 2^scale_exp * sum */
    int zeros;          /* INTADD, INTADD16: 1 if a real weight is zero (then they are masked) */
    int ianet;          /* INTADD16 only: addends are IA-NET's bits(w * 2^-63) >> 16 and the
                           pre-pass puts the activations in its 2^-64 domain
                           (docs/method.md#the-integer-add-identity) */
    const void *data;   /* repacked elements, rows_pad * cols_pad of them */
    const void *sparse; /* intadd, optional (NULL: none): the layer's zero-skipping index, written
                           by seofp_sparse_build from this layer's data; batch > 1 products then
                           skip zero weights (same bits, docs/engine_sparse.md) */
} seofp_layer;

/* "avx2" or "portable": the code path the kernels dispatch to now. */
const char *seofp_variant(void);
/* 1 if this CPU can run the AVX2/FMA/F16C path. */
int seofp_avx2_supported(void);
/* Select SEOFP_VARIANT_AUTO | _PORTABLE | _AVX2 (process-wide); SEOFP_EARG if unsupported. */
int seofp_set_variant(int variant);

/* 1 (default) or 2 threads for batch-1 products of at least 64K weights (process-wide; the
 * second thread spins briefly after each job, then sleeps); SEOFP_EARG if not possible. */
int seofp_set_threads(int n);
int seofp_threads(void);

/* Bytes of the zero-skipping index of an intadd layer (0 for other kinds or a bad layer). */
size_t seofp_sparse_bytes(const seofp_layer *w);
/* Write that index into buf (8-byte aligned, bytes >= seofp_sparse_bytes(w)); the caller then
 * points w->sparse at it and keeps buf alive as long as w. SEOFP_EARG if anything is off. */
int seofp_sparse_build(const seofp_layer *w, void *buf, size_t bytes);

/* Floats of scratch that seofp_gemm needs for n input vectors. */
size_t seofp_gemm_scratch_floats(const seofp_layer *w, int n);
/* y[i*ys_n + r*ys_r] = sum_k W[r,k] * x[i*ldx + k] for i < n, r < rows. */
int seofp_gemm(const seofp_layer *w, const float *x, int n, int ldx,
               float *y, int ys_n, int ys_r, float *scratch);
/* y = W x (batch 1); x has cols floats, y rows floats. */
int seofp_gemv(const seofp_layer *w, const float *x, float *y, float *scratch);

/* Floats of scratch that seofp_lstm needs for T frames. */
size_t seofp_lstm_scratch_floats(const seofp_layer *wih, const seofp_layer *whh, int T);
/* One LSTM direction over T frames (torch gate order i, f, g, o; one bias per gate):
 * x (T, ldx) in, out (T, ldo) written with h_t, h and c (hidden) updated in place (the state);
 * reverse != 0 runs t = T-1 ... 0. wih is (4H, in), whh is (4H, H), bias is (4H). */
int seofp_lstm(const seofp_layer *wih, const seofp_layer *whh, const float *bias, int T,
               const float *x, int ldx, float *out, int ldo, float *h, float *c, int reverse,
               float *scratch);

/* Floats of scratch that seofp_blstm needs for T frames. */
size_t seofp_blstm_scratch_floats(const seofp_layer *const *wih, const seofp_layer *const *whh,
                                  int T);
/* Both directions of a bidirectional LSTM layer over T frames in one call, their recurrent
 * steps interleaved (forward step s, then backward step s) while both W_hh fit in 256 KiB
 * together, else one direction after the other: bit-identical to seofp_lstm on
 * wih[0], whh[0], bias[0] forward into out[:, 0:H] and on wih[1], whh[1], bias[1] reversed into
 * out[:, H:2H] (ldo >= 2H). state (4, H): h then c of the forward, then of the backward
 * direction, updated in place. */
int seofp_blstm(const seofp_layer *const *wih, const seofp_layer *const *whh,
                const float *const *bias, int T, const float *x, int ldx, float *out, int ldo,
                float *state, float *scratch);

/* Floats of scratch that seofp_lstm_stack needs for T frames. */
size_t seofp_lstm_stack_scratch_floats(const seofp_layer *const *wih,
                                       const seofp_layer *const *whh, int layers, int T);
/* A unidirectional LSTM stack over T frames in one call: layer l is seofp_lstm(wih[l], whh[l],
 * bias[l]) on layer l-1's output (layer 0 on x (T, ldx), ldx >= wih[0]->cols); out (T, H) gets the
 * last layer's h_t. state (2 * layers, H) holds h then c of each layer, updated in place. */
int seofp_lstm_stack(const seofp_layer *const *wih, const seofp_layer *const *whh,
                     const float *const *bias, int layers, int T, const float *x, int ldx,
                     float *out, float *state, float *scratch);

/* y (n, rows) = act(x (n, cols) W^T + bias); bias may be NULL. */
int seofp_linear(const seofp_layer *w, const float *bias, int n, const float *x, float *y,
                 int act, float slope, float *scratch);

/* Floats of scratch that seofp_conv1d needs for T time steps. */
size_t seofp_conv1d_scratch_floats(const seofp_layer *w, int ksize, int T);
/* "same" zero-padded 1-D convolution, stride 1, odd ksize: x (cin, T) -> y (cout, T);
 * w is (cout, cin*ksize) with column index ci*ksize + j, as torch's weight.reshape(cout, -1). */
int seofp_conv1d(const seofp_layer *w, const float *bias, int cin, int T, int ksize,
                 const float *x, float *y, float *scratch);

/* x (C, T) in place: x = act((x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]) when
 * mean != NULL (inference batch norm, never folded into weights), else x = act(x). */
int seofp_channel_norm_act(int C, int T, float *x, const float *mean, const float *var,
                           const float *gamma, const float *beta, float eps, int act,
                           float slope);
/* cffi-cdef-end */

#endif
