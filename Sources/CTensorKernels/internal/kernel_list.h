// Every dispatched kernel as X(name, parameters, arguments), matching the declarations of
// CTensorKernels.h (a mismatch does not compile: Dispatch.c defines each public function from this list).
#define TINYSHARD_TENSOR_KERNELS(X) \
    X(gelu_forward, (const float *x, float *y, ptrdiff_t n), (x, y, n)) \
    X(gelu_backward, (const float *dy, const float *x, float *dx, ptrdiff_t n), (dy, x, dx, n)) \
    X(add, (const float *a, const float *b, float *z, ptrdiff_t n), (a, b, z, n)) \
    X(add_scaled, (const float *a, const float *b, float scale, float *z, ptrdiff_t n), (a, b, scale, z, n)) \
    X(softmax_row, (float *row, ptrdiff_t n), (row, n)) \
    X(softmax_backward_row, (float *g, const float *p, ptrdiff_t n), (g, p, n)) \
    X(adamw_update, (float *w, const float *g, float *m, float *v, ptrdiff_t n, float clip, float decay, float beta1, \
                     float beta2, float step, float c2, float epsilon), \
      (w, g, m, v, n, clip, decay, beta1, beta2, step, c2, epsilon)) \
    X(batchnorm_forward_rows, (const float *x, float *y, const float *residual, const float *a, const float *b, \
                               ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, const float *sample_scale, \
                               ptrdiff_t rows_per_sample, int gelu), \
      (x, y, residual, a, b, channels, row_begin, row_end, sample_scale, rows_per_sample, gelu)) \
    X(batchnorm_backward_accumulate, (const float *x, const float *dy, const float *residual, float *d_residual, \
                                      float *d_branch, const float *a, const float *b, const float *mean, \
                                      const float *inv_std, ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, \
                                      const float *sample_scale, ptrdiff_t rows_per_sample, int gelu, float *scratch, \
                                      double *sums), \
      (x, dy, residual, d_residual, d_branch, a, b, mean, inv_std, channels, row_begin, row_end, sample_scale, \
       rows_per_sample, gelu, scratch, sums)) \
    X(batchnorm_backward_input_rows, (const float *x, float *d, const float *k, const float *m1, const float *m2, \
                                      const float *mean, const float *inv_std, ptrdiff_t channels, ptrdiff_t row_begin, \
                                      ptrdiff_t row_end), \
      (x, d, k, m1, m2, mean, inv_std, channels, row_begin, row_end)) \
    X(channel_moments, (const float *x, const float *shift, ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, \
                        float *scratch, double *sums), \
      (x, shift, channels, row_begin, row_end, scratch, sums)) \
    X(channel_sums, (const float *x, const float *centre, ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, \
                     float *scratch, double *sums), \
      (x, centre, channels, row_begin, row_end, scratch, sums)) \
    X(layernorm_forward_rows, (const float *x, float *y, const float *gamma, const float *beta, float epsilon, \
                               ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, float *mean, float *inv_std), \
      (x, y, gamma, beta, epsilon, channels, row_begin, row_end, mean, inv_std)) \
    X(layernorm_backward_rows, (const float *x, const float *dy, float *dx, const float *gamma, const float *mean, \
                                const float *inv_std, ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, \
                                float *scratch, double *sums), \
      (x, dy, dx, gamma, mean, inv_std, channels, row_begin, row_end, scratch, sums)) \
    X(depthwise_forward_rows, (const float *x, const float *w, float *y, const tinyshard_depthwise_geometry *g, \
                               ptrdiff_t row_begin, ptrdiff_t row_end), \
      (x, w, y, g, row_begin, row_end)) \
    X(depthwise_backward_data_rows, (const float *dy, const float *w, float *dx, const tinyshard_depthwise_geometry *g, \
                                     ptrdiff_t row_begin, ptrdiff_t row_end, ptrdiff_t *taps), \
      (dy, w, dx, g, row_begin, row_end, taps)) \
    X(depthwise_backward_weights_rows, (const float *dy, const float *x, const tinyshard_depthwise_geometry *g, \
                                        ptrdiff_t row_begin, ptrdiff_t row_end, float *scratch, double *sums), \
      (dy, x, g, row_begin, row_end, scratch, sums))
