// Element-wise kernels: GELU, adds, softmax rows, the AdamW update. Body of KernelsAVX2.c and
// KernelsPortable.c, which define TK_NAME; the arithmetic (and its order) is the contract of
// CTensorKernels.h: every build gives the same bits.
#include "vector8.h"

void TK_NAME(gelu_forward)(const float *x, float *y, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) store8(gelu8(load8(x + i)), y + i);
    for (; i < n; i++) y[i] = gelu1(x[i]);
}

void TK_NAME(gelu_backward)(const float *dy, const float *x, float *dx, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) store8(load8(dy + i) * gelu_derivative8(load8(x + i)), dx + i);
    for (; i < n; i++) dx[i] = dy[i] * gelu_derivative1(x[i]);
}

void TK_NAME(add)(const float *a, const float *b, float *z, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) store8(load8(a + i) + load8(b + i), z + i);
    for (; i < n; i++) z[i] = a[i] + b[i];
}

void TK_NAME(add_scaled)(const float *a, const float *b, float scale, float *z, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) store8(load8(a + i) + scale * load8(b + i), z + i);
    for (; i < n; i++) z[i] = a[i] + scale * b[i];
}

void TK_NAME(softmax_row)(float *row, ptrdiff_t n) {
    ptrdiff_t n8 = n / 8 * 8, c = 0;
    f8 m8 = splat8(-__builtin_inff());
    for (; c < n8; c += 8) m8 = max8(m8, load8(row + c));
    float m = lane_max8(m8);
    for (; c < n; c++) m = max1(m, row[c]);
    f8 s8 = splat8(0);
    for (c = 0; c < n8; c += 8) {
        f8 e = exp8(load8(row + c) - m);
        store8(e, row + c);
        s8 += e;
    }
    float s = lane_sum8(s8);
    for (; c < n; c++) {
        float e = exp1(row[c] - m);
        row[c] = e;
        s += e;
    }
    float inv = 1 / s;
    for (c = 0; c < n8; c += 8) store8(load8(row + c) * inv, row + c);
    for (; c < n; c++) row[c] *= inv;
}

void TK_NAME(softmax_backward_row)(float *g, const float *p, ptrdiff_t n) {
    ptrdiff_t n8 = n / 8 * 8, c = 0;
    f8 s8 = splat8(0);
    for (; c < n8; c += 8) s8 += load8(g + c) * load8(p + c);
    float s = lane_sum8(s8);
    for (; c < n; c++) s += g[c] * p[c];
    for (c = 0; c < n8; c += 8) store8(load8(p + c) * (load8(g + c) - s), g + c);
    for (; c < n; c++) g[c] = p[c] * (g[c] - s);
}

void TK_NAME(adamw_update)(float *w, const float *g, float *m, float *v, ptrdiff_t n, float clip, float decay,
                           float beta1, float beta2, float step, float c2, float epsilon) {
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        f8 gi = load8(g + i) * clip;
        f8 wi = load8(w + i) * decay;
        f8 mi = load8(m + i) + (gi - load8(m + i)) * (1 - beta1);
        f8 vi = load8(v + i) * beta2 + (1 - beta2) * gi * gi;
        store8(mi, m + i);
        store8(vi, v + i);
        store8(wi - step * mi / (__builtin_elementwise_sqrt(vi) / c2 + epsilon), w + i);
    }
    for (; i < n; i++) {
        float gi = g[i] * clip;
        float wi = w[i] * decay;
        float mi = m[i] + (gi - m[i]) * (1 - beta1);
        float vi = v[i] * beta2 + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step * mi / (__builtin_elementwise_sqrt(vi) / c2 + epsilon);
    }
}
