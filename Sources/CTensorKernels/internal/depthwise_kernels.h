// Depthwise convolution on NHWC data with tap-major weights ([kernel²][channels]): every tap is a
// contiguous run of channels, so each output pixel is a loop of 8-wide multiply-adds. Body of
// KernelsAVX2.c and KernelsPortable.c (see elementwise_kernels.h).
#include "vector8.h"

/// Along one axis, the taps of output position `o` that land inside the input (size `size`): the input
/// position of tap 0 (`*start`, may be negative) and the tap range [*first, *end).
TK_INLINE void tap_range(ptrdiff_t o, ptrdiff_t stride, ptrdiff_t padding, ptrdiff_t kernel, ptrdiff_t size,
                         ptrdiff_t *start, ptrdiff_t *first, ptrdiff_t *end) {
    *start = o * stride - padding;
    *first = *start < 0 ? -*start : 0;
    *end = size - *start < kernel ? size - *start : kernel;
}

void TK_NAME(depthwise_forward_rows)(const float *x, const float *w, float *y, const tinyshard_depthwise_geometry *g,
                                     ptrdiff_t row_begin, ptrdiff_t row_end) {
    ptrdiff_t C = g->channels, H = g->height, W = g->width, K = g->kernel, OH = g->out_height, OW = g->out_width;
    ptrdiff_t C8 = C / 8 * 8;
    for (ptrdiff_t r = row_begin; r < row_end; r++) {
        ptrdiff_t n = r / OH, oy = r % OH, iy0, ky0, ky1;
        tap_range(oy, g->stride, g->padding, K, H, &iy0, &ky0, &ky1);
        for (ptrdiff_t ox = 0; ox < OW; ox++) {
            ptrdiff_t ix0, kx0, kx1;
            tap_range(ox, g->stride, g->padding, K, W, &ix0, &kx0, &kx1);
            ptrdiff_t yo = ((n * OH + oy) * OW + ox) * C;
            ptrdiff_t c = 0;
            for (; c < C8; c += 8) {
                f8 acc = splat8(0);
                for (ptrdiff_t ky = ky0; ky < ky1; ky++) {
                    ptrdiff_t row_base = ((n * H + iy0 + ky) * W + ix0) * C + c;
                    for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
                        acc += load8(x + row_base + kx * C) * load8(w + (ky * K + kx) * C + c);
                    }
                }
                store8(acc, y + yo + c);
            }
            for (; c < C; c++) {
                float acc = 0;
                for (ptrdiff_t ky = ky0; ky < ky1; ky++) {
                    for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
                        acc += x[((n * H + iy0 + ky) * W + ix0 + kx) * C + c] * w[(ky * K + kx) * C + c];
                    }
                }
                y[yo + c] = acc;
            }
        }
    }
}

void TK_NAME(depthwise_backward_data_rows)(const float *dy, const float *w, float *dx,
                                           const tinyshard_depthwise_geometry *g, ptrdiff_t row_begin,
                                           ptrdiff_t row_end, ptrdiff_t *taps) {
    ptrdiff_t C = g->channels, H = g->height, W = g->width, K = g->kernel, S = g->stride, P = g->padding;
    ptrdiff_t OH = g->out_height, OW = g->out_width, C8 = C / 8 * 8;
    for (ptrdiff_t r = row_begin; r < row_end; r++) {
        ptrdiff_t n = r / H, iy = r % H;
        for (ptrdiff_t ix = 0; ix < W; ix++) {
            // The taps that reach this input pixel: (offset into dy, offset into w) pairs.
            ptrdiff_t count = 0;
            for (ptrdiff_t ky = 0; ky < K; ky++) {
                ptrdiff_t ty = iy + P - ky;
                if (ty < 0 || ty % S != 0 || ty / S >= OH) continue;
                for (ptrdiff_t kx = 0; kx < K; kx++) {
                    ptrdiff_t tx = ix + P - kx;
                    if (tx < 0 || tx % S != 0 || tx / S >= OW) continue;
                    taps[2 * count] = ((n * OH + ty / S) * OW + tx / S) * C;
                    taps[2 * count + 1] = (ky * K + kx) * C;
                    count++;
                }
            }
            ptrdiff_t o = ((n * H + iy) * W + ix) * C, c = 0;
            for (; c < C8; c += 8) {
                f8 acc = splat8(0);
                for (ptrdiff_t t = 0; t < count; t++) acc += load8(dy + taps[2 * t] + c) * load8(w + taps[2 * t + 1] + c);
                store8(acc, dx + o + c);
            }
            for (; c < C; c++) {
                float acc = 0;
                for (ptrdiff_t t = 0; t < count; t++) acc += dy[taps[2 * t] + c] * w[taps[2 * t + 1] + c];
                dx[o + c] = acc;
            }
        }
    }
}

void TK_NAME(depthwise_backward_weights_rows)(const float *dy, const float *x, const tinyshard_depthwise_geometry *g,
                                              ptrdiff_t row_begin, ptrdiff_t row_end, float *acc, double *sums) {
    ptrdiff_t C = g->channels, H = g->height, W = g->width, K = g->kernel, OH = g->out_height, OW = g->out_width;
    ptrdiff_t T = K * K, C8 = C / 8 * 8;
    for (ptrdiff_t i = 0; i < T * C; i++) acc[i] = 0;
    for (ptrdiff_t r = row_begin; r < row_end; r++) {
        ptrdiff_t n = r / OH, oy = r % OH, iy0, ky0, ky1;
        tap_range(oy, g->stride, g->padding, K, H, &iy0, &ky0, &ky1);
        for (ptrdiff_t ox = 0; ox < OW; ox++) {
            ptrdiff_t ix0, kx0, kx1;
            tap_range(ox, g->stride, g->padding, K, W, &ix0, &kx0, &kx1);
            ptrdiff_t yo = ((n * OH + oy) * OW + ox) * C;
            for (ptrdiff_t ky = ky0; ky < ky1; ky++) {
                for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
                    ptrdiff_t xo = ((n * H + iy0 + ky) * W + ix0 + kx) * C;
                    ptrdiff_t ao = (ky * K + kx) * C, c = 0;
                    for (; c < C8; c += 8) store8(load8(acc + ao + c) + load8(dy + yo + c) * load8(x + xo + c), acc + ao + c);
                    for (; c < C; c++) acc[ao + c] += dy[yo + c] * x[xo + c];
                }
            }
        }
        // Flush to double every few rows to keep the float sums short.
        if ((r - row_begin) % 8 == 7 || r == row_end - 1) {
            for (ptrdiff_t i = 0; i < T * C; i++) {
                sums[i] += (double)acc[i];
                acc[i] = 0;
            }
        }
    }
}
