// The element-wise and row kernels of the Tensor module (everything that is not a oneDNN GEMM), in C so
// that they run 8 floats wide with AVX2 on CPUs that have it while the libraries stay built for the
// baseline CPU (no -target-cpu flag, which SwiftPM refuses in versioned dependencies).
//
// Each kernel exists twice, compiled from one source: a portable build (x86-64 baseline SSE2; on arm64
// the baseline NEON) and, on x86-64, an AVX2 build. CKernelDispatch picks one per call. Both builds do the
// same float operations in the same order, with contraction into fused multiply-add turned off, so the
// results are bit-identical on every path and machine.
//
// Conventions: sizes and indices are ptrdiff_t (Swift's Int); `*_rows` kernels handle rows
// [row_begin, row_end) of a channels-last (rows, channels) layout, so that the caller splits rows across
// threads; pointers marked "may be NULL" are optional inputs. Scratch buffers belong to the caller.
#ifndef TINYSHARD_CTENSOR_KERNELS_H
#define TINYSHARD_CTENSOR_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: Element-wise

/// y[i] = gelu(x[i]) (erf form, PyTorch's default).
void tinyshard_gelu_forward(const float *x, float *y, ptrdiff_t n);
/// dx[i] = dy[i] · gelu'(x[i]).
void tinyshard_gelu_backward(const float *dy, const float *x, float *dx, ptrdiff_t n);
/// z[i] = a[i] + b[i]; z may be a.
void tinyshard_add(const float *a, const float *b, float *z, ptrdiff_t n);
/// z[i] = a[i] + scale · b[i]; z may be a.
void tinyshard_add_scaled(const float *a, const float *b, float scale, float *z, ptrdiff_t n);
/// In place: row = softmax(row).
void tinyshard_softmax_row(float *row, ptrdiff_t n);
/// In place: g = p ⊙ (g − Σ g·p), the softmax input's gradient from the output's.
void tinyshard_softmax_backward_row(float *g, const float *p, ptrdiff_t n);
/// One AdamW update of n parameters (PyTorch's torch.optim.AdamW arithmetic):
/// g' = g·clip; m = m + (g' − m)(1 − β1); v = v·β2 + (1 − β2)·g'²; w = w·decay − step·m / (√v / c2 + ε).
void tinyshard_adamw_update(float *w, const float *g, float *m, float *v, ptrdiff_t n, float clip, float decay,
                            float beta1, float beta2, float step, float c2, float epsilon);

/// Scalar forms (the tails of the vector loops use the same arithmetic): gelu, gelu', and the
/// polynomial exp (~1 ulp on [-87.3, 88.7], 0 below).
float tinyshard_gelu(float x);
float tinyshard_gelu_derivative(float x);
float tinyshard_exp(float x);

// MARK: Normalisation

/// BatchNorm forward with what follows it in TinyViT: y = act(scale[n]·(A·x + B) + residual) per row,
/// where n = row / rows_per_sample. `residual` and `sample_scale` may be NULL (scale 1).
void tinyshard_batchnorm_forward_rows(const float *x, float *y, const float *residual, const float *a, const float *b,
                                      ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end,
                                      const float *sample_scale, ptrdiff_t rows_per_sample, int gelu);
/// BatchNorm backward, first pass over rows: the gradient after the activation and drop-path scale
/// (into `d_branch`, and into `d_residual` when not NULL), and per channel Σ d and Σ d·x̂ added into
/// `sums` (2·channels doubles) from float partial sums of 64 rows. `scratch`: 2·channels floats.
void tinyshard_batchnorm_backward_accumulate(const float *x, const float *dy, const float *residual, float *d_residual,
                                             float *d_branch, const float *a, const float *b, const float *mean,
                                             const float *inv_std, ptrdiff_t channels, ptrdiff_t row_begin,
                                             ptrdiff_t row_end, const float *sample_scale, ptrdiff_t rows_per_sample,
                                             int gelu, float *scratch, double *sums);
/// BatchNorm backward, second pass: in place d = k·(d − m1 − x̂·m2) with x̂ = (x − mean)·inv_std.
void tinyshard_batchnorm_backward_input_rows(const float *x, float *d, const float *k, const float *m1, const float *m2,
                                             const float *mean, const float *inv_std, ptrdiff_t channels,
                                             ptrdiff_t row_begin, ptrdiff_t row_end);
/// Per channel Σ (x − shift) and Σ (x − shift)² added into `sums` (2·channels doubles) from float partial
/// sums of 64 rows. `scratch`: 2·channels floats.
void tinyshard_channel_moments(const float *x, const float *shift, ptrdiff_t channels, ptrdiff_t row_begin,
                               ptrdiff_t row_end, float *scratch, double *sums);
/// Per channel Σ x, or with `centre` (may be NULL) Σ (x − centre)², added into `sums` (channels doubles),
/// 64-row float partial sums. `scratch`: channels floats.
void tinyshard_channel_sums(const float *x, const float *centre, ptrdiff_t channels, ptrdiff_t row_begin,
                            ptrdiff_t row_end, float *scratch, double *sums);
/// LayerNorm forward over the last dimension: y = (x − mean)·inv_std·γ + β; writes each row's mean
/// and inv_std = 1/√(var + ε).
void tinyshard_layernorm_forward_rows(const float *x, float *y, const float *gamma, const float *beta, float epsilon,
                                      ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, float *mean,
                                      float *inv_std);
/// LayerNorm backward: the input gradient rows, and per channel Σ dy·x̂ and Σ dy added into `sums`
/// (2·channels doubles) every 64 rows. `scratch`: 2·channels floats.
void tinyshard_layernorm_backward_rows(const float *x, const float *dy, float *dx, const float *gamma,
                                       const float *mean, const float *inv_std, ptrdiff_t channels,
                                       ptrdiff_t row_begin, ptrdiff_t row_end, float *scratch, double *sums);

// MARK: Depthwise convolution (NHWC, weights tap-major: [kernel·kernel][channels])

typedef struct {
    ptrdiff_t batch, channels, height, width, kernel, stride, padding, out_height, out_width;
} tinyshard_depthwise_geometry;

/// Output rows [row_begin, row_end) of batch·out_height.
void tinyshard_depthwise_forward_rows(const float *x, const float *w, float *y, const tinyshard_depthwise_geometry *g,
                                      ptrdiff_t row_begin, ptrdiff_t row_end);
/// Input-gradient rows [row_begin, row_end) of batch·height. `taps`: 2·kernel² scratch.
void tinyshard_depthwise_backward_data_rows(const float *dy, const float *w, float *dx,
                                            const tinyshard_depthwise_geometry *g, ptrdiff_t row_begin,
                                            ptrdiff_t row_end, ptrdiff_t *taps);
/// Weight gradient of output rows [row_begin, row_end), tap-major, added into `sums` (kernel²·channels
/// doubles) from float partial sums of 8 rows. `scratch`: kernel²·channels floats.
void tinyshard_depthwise_backward_weights_rows(const float *dy, const float *x, const tinyshard_depthwise_geometry *g,
                                               ptrdiff_t row_begin, ptrdiff_t row_end, float *scratch, double *sums);

#ifdef __cplusplus
}
#endif

#endif
