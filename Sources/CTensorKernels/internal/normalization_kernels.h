// BatchNorm and LayerNorm row kernels and the per-channel reductions. Body of KernelsAVX2.c and
// KernelsPortable.c (see elementwise_kernels.h). Per-channel sums are kept in float over at most 64 rows
// and then added into the caller's doubles, which bounds float rounding whatever the row count.
#include "vector8.h"

void TK_NAME(batchnorm_forward_rows)(const float *x, float *y, const float *residual, const float *a, const float *b,
                                     ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end,
                                     const float *sample_scale, ptrdiff_t rows_per_sample, int gelu) {
    ptrdiff_t C = channels, C8 = C / 8 * 8;
    for (ptrdiff_t row = row_begin; row < row_end; row++) {
        float s = sample_scale ? sample_scale[row / rows_per_sample] : 1;
        const float *xr = x + row * C;
        float *yr = y + row * C;
        ptrdiff_t c = 0;
        for (; c < C8; c += 8) {
            f8 v = (load8(xr + c) * load8(a + c) + load8(b + c)) * s;
            if (residual) v += load8(residual + row * C + c);
            if (gelu) v = gelu8(v);
            store8(v, yr + c);
        }
        for (; c < C; c++) {
            float v = (xr[c] * a[c] + b[c]) * s;
            if (residual) v += residual[row * C + c];
            yr[c] = gelu ? gelu1(v) : v;
        }
    }
}

void TK_NAME(batchnorm_backward_accumulate)(const float *x, const float *dy, const float *residual, float *d_residual,
                                            float *d_branch, const float *a, const float *b, const float *mean,
                                            const float *inv_std, ptrdiff_t channels, ptrdiff_t row_begin,
                                            ptrdiff_t row_end, const float *sample_scale, ptrdiff_t rows_per_sample,
                                            int gelu, float *acc, double *sums) {
    ptrdiff_t C = channels, C8 = C / 8 * 8;
    for (ptrdiff_t block = row_begin; block < row_end; block += 64) {
        ptrdiff_t block_end = block + 64 < row_end ? block + 64 : row_end;
        for (ptrdiff_t i = 0; i < 2 * C; i++) acc[i] = 0;
        for (ptrdiff_t row = block; row < block_end; row++) {
            float s = sample_scale ? sample_scale[row / rows_per_sample] : 1;
            ptrdiff_t o = row * C, c = 0;
            for (; c < C8; c += 8) {
                f8 xv = load8(x + o + c);
                f8 bn = xv * load8(a + c) + load8(b + c);
                f8 g = load8(dy + o + c);
                if (gelu) {
                    f8 pre = bn * s;
                    if (residual) pre += load8(residual + o + c);
                    g = g * gelu_derivative8(pre);
                }
                if (d_residual) store8(g, d_residual + o + c);
                f8 gb = g * s;
                store8(gb, d_branch + o + c);
                f8 xh = (xv - load8(mean + c)) * load8(inv_std + c);
                store8(load8(acc + c) + gb, acc + c);
                store8(load8(acc + C + c) + gb * xh, acc + C + c);
            }
            for (; c < C; c++) {
                float bn = x[o + c] * a[c] + b[c];
                float g = dy[o + c];
                if (gelu) {
                    float pre = bn * s;
                    if (residual) pre += residual[o + c];
                    g *= gelu_derivative1(pre);
                }
                if (d_residual) d_residual[o + c] = g;
                float gb = g * s;
                d_branch[o + c] = gb;
                acc[c] += gb;
                acc[C + c] += gb * (x[o + c] - mean[c]) * inv_std[c];
            }
        }
        for (ptrdiff_t i = 0; i < 2 * C; i++) sums[i] += (double)acc[i];
    }
}

void TK_NAME(batchnorm_backward_input_rows)(const float *x, float *d, const float *k, const float *m1, const float *m2,
                                            const float *mean, const float *inv_std, ptrdiff_t channels,
                                            ptrdiff_t row_begin, ptrdiff_t row_end) {
    ptrdiff_t C = channels, C8 = C / 8 * 8;
    for (ptrdiff_t row = row_begin; row < row_end; row++) {
        ptrdiff_t o = row * C, c = 0;
        for (; c < C8; c += 8) {
            f8 xh = (load8(x + o + c) - load8(mean + c)) * load8(inv_std + c);
            store8(load8(k + c) * (load8(d + o + c) - load8(m1 + c) - xh * load8(m2 + c)), d + o + c);
        }
        for (; c < C; c++) {
            float xh = (x[o + c] - mean[c]) * inv_std[c];
            d[o + c] = k[c] * (d[o + c] - m1[c] - xh * m2[c]);
        }
    }
}

void TK_NAME(channel_moments)(const float *x, const float *shift, ptrdiff_t channels, ptrdiff_t row_begin,
                              ptrdiff_t row_end, float *acc, double *sums) {
    ptrdiff_t C = channels, C8 = C / 8 * 8;
    for (ptrdiff_t block = row_begin; block < row_end; block += 64) {
        ptrdiff_t block_end = block + 64 < row_end ? block + 64 : row_end;
        for (ptrdiff_t i = 0; i < 2 * C; i++) acc[i] = 0;
        for (ptrdiff_t row = block; row < block_end; row++) {
            ptrdiff_t o = row * C, c = 0;
            for (; c < C8; c += 8) {
                f8 dv = load8(x + o + c) - load8(shift + c);
                store8(load8(acc + c) + dv, acc + c);
                store8(load8(acc + C + c) + dv * dv, acc + C + c);
            }
            for (; c < C; c++) {
                float dv = x[o + c] - shift[c];
                acc[c] += dv;
                acc[C + c] += dv * dv;
            }
        }
        for (ptrdiff_t i = 0; i < 2 * C; i++) sums[i] += (double)acc[i];
    }
}

void TK_NAME(channel_sums)(const float *x, const float *centre, ptrdiff_t channels, ptrdiff_t row_begin,
                           ptrdiff_t row_end, float *acc, double *sums) {
    ptrdiff_t C = channels, C8 = C / 8 * 8;
    for (ptrdiff_t block = row_begin; block < row_end; block += 64) {
        ptrdiff_t block_end = block + 64 < row_end ? block + 64 : row_end;
        for (ptrdiff_t i = 0; i < C; i++) acc[i] = 0;
        for (ptrdiff_t row = block; row < block_end; row++) {
            ptrdiff_t o = row * C, c = 0;
            if (centre) {
                for (; c < C8; c += 8) {
                    f8 dv = load8(x + o + c) - load8(centre + c);
                    store8(load8(acc + c) + dv * dv, acc + c);
                }
                for (; c < C; c++) {
                    float dv = x[o + c] - centre[c];
                    acc[c] += dv * dv;
                }
            } else {
                for (; c < C8; c += 8) store8(load8(acc + c) + load8(x + o + c), acc + c);
                for (; c < C; c++) acc[c] += x[o + c];
            }
        }
        for (ptrdiff_t c = 0; c < C; c++) sums[c] += (double)acc[c];
    }
}

void TK_NAME(layernorm_forward_rows)(const float *x, float *y, const float *gamma, const float *beta, float epsilon,
                                     ptrdiff_t channels, ptrdiff_t row_begin, ptrdiff_t row_end, float *mean,
                                     float *inv_std) {
    ptrdiff_t C = channels, C8 = C / 8 * 8;
    for (ptrdiff_t row = row_begin; row < row_end; row++) {
        const float *xr = x + row * C;
        float *yr = y + row * C;
        f8 s8 = splat8(0);
        ptrdiff_t c = 0;
        for (; c < C8; c += 8) s8 += load8(xr + c);
        float s = lane_sum8(s8);
        for (; c < C; c++) s += xr[c];
        float m = s / (float)C;
        f8 v8 = splat8(0);
        for (c = 0; c < C8; c += 8) {
            f8 dv = load8(xr + c) - m;
            v8 += dv * dv;
        }
        float v = lane_sum8(v8);
        for (; c < C; c++) {
            float dv = xr[c] - m;
            v += dv * dv;
        }
        float r = 1 / __builtin_elementwise_sqrt(v / (float)C + epsilon);
        mean[row] = m;
        inv_std[row] = r;
        for (c = 0; c < C8; c += 8) store8((load8(xr + c) - m) * r * load8(gamma + c) + load8(beta + c), yr + c);
        for (; c < C; c++) yr[c] = (xr[c] - m) * r * gamma[c] + beta[c];
    }
}

void TK_NAME(layernorm_backward_rows)(const float *x, const float *dy, float *dx, const float *gamma,
                                      const float *mean, const float *inv_std, ptrdiff_t channels,
                                      ptrdiff_t row_begin, ptrdiff_t row_end, float *acc, double *sums) {
    ptrdiff_t C = channels, C8 = C / 8 * 8;
    for (ptrdiff_t i = 0; i < 2 * C; i++) acc[i] = 0;
    for (ptrdiff_t row = row_begin; row < row_end; row++) {
        ptrdiff_t o = row * C, c = 0;
        float m = mean[row], r = inv_std[row];
        f8 s1 = splat8(0), s2 = splat8(0);
        for (; c < C8; c += 8) {
            f8 xh = (load8(x + o + c) - m) * r;
            f8 gy = load8(dy + o + c);
            f8 dxh = gy * load8(gamma + c);
            s1 += dxh;
            s2 += dxh * xh;
            store8(load8(acc + c) + gy * xh, acc + c);
            store8(load8(acc + C + c) + gy, acc + C + c);
        }
        float a1 = lane_sum8(s1), a2 = lane_sum8(s2);
        for (; c < C; c++) {
            float xh = (x[o + c] - m) * r;
            float dxh = dy[o + c] * gamma[c];
            a1 += dxh;
            a2 += dxh * xh;
            acc[c] += dy[o + c] * xh;
            acc[C + c] += dy[o + c];
        }
        a1 /= (float)C;
        a2 /= (float)C;
        for (c = 0; c < C8; c += 8) {
            f8 xh = (load8(x + o + c) - m) * r;
            store8(r * (load8(dy + o + c) * load8(gamma + c) - a1 - xh * a2), dx + o + c);
        }
        for (; c < C; c++) {
            float xh = (x[o + c] - m) * r;
            dx[o + c] = r * (dy[o + c] * gamma[c] - a1 - xh * a2);
        }
        if ((row - row_begin) % 64 == 63 || row == row_end - 1) {
            for (ptrdiff_t i = 0; i < 2 * C; i++) {
                sums[i] += (double)acc[i];
                acc[i] = 0;
            }
        }
    }
}
