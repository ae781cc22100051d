// Runs every C kernel of TinyShard (CFormatKernels, CTensorKernels) on fixed pseudo-random inputs and
// prints one FNV-1a hash of the output bits per kernel. The kernels promise bit-identical results on
// every dispatch path and architecture, so this program's output must be the same on x86-64 with AVX2,
// on x86-64 with TINYSHARD_SIMD=portable, and on arm64 (Tools/check_arm64_kernels.sh runs it under
// qemu-aarch64 and compares).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CFormatKernels.h"
#include "CKernelDispatch.h"
#include "CTensorKernels.h"

static uint64_t state = 0x9E3779B97F4A7C15u;

static uint64_t next(void) {  // SplitMix64
    uint64_t z = (state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/// Uniform in [-scale, scale), from 24 random bits (exact in float).
static float uniform(float scale) { return scale * ((float)(next() >> 40) * 0x1p-23f - 1.0f); }

static float *randoms(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = uniform(scale);
    return p;
}

static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001B3u; }
    return h;
}

static void report(const char *name, uint64_t h) { printf("%-34s %016llx\n", name, (unsigned long long)h); }

#define HASH(h, p, n) hash_bytes((h), (p), (n) * sizeof *(p))

int main(void) {
    const uint64_t basis = 0xCBF29CE484222325u;

    // Format kernels: every float16, float32 rounding cases, fills.
    {
        uint16_t *half = malloc(65536 * sizeof(uint16_t));
        float *wide = malloc(65536 * sizeof(float));
        for (uint32_t i = 0; i < 65536; i++) half[i] = (uint16_t)i;
        tinyshard_f16_to_f32(half, wide, 65536);
        report("f16_to_f32 (all 65536)", HASH(basis, wide, 65536));
        size_t n = 200003;
        float *values = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)next();
            if (i % 3 == 0) bits = (bits & 0x80000000u) | (0x33000000u + (bits & 0x0FFFFFFFu));  // near float16's range
            memcpy(&values[i], &bits, 4);
        }
        uint16_t *narrow = malloc(n * sizeof(uint16_t));
        tinyshard_f32_to_f16(values, narrow, n);
        report("f32_to_f16 (200003 patterns)", HASH(basis, narrow, n));
        float *row = malloc(1003 * sizeof(float));
        uint64_t h = basis;
        for (size_t length = 0; length <= 1003; length += 17) {
            memset(row, 0, 1003 * sizeof(float));
            tinyshard_fill_f32(row + 1, length > 1002 ? 1002 : length, 0.125f);
            h = HASH(h, row, 1003);
        }
        report("fill_f32", h);
        free(half); free(wide); free(values); free(narrow); free(row);
    }

    // Element-wise kernels, lengths with and without a tail.
    {
        uint64_t hg = basis, hb = basis, ha = basis, hs = basis;
        for (ptrdiff_t n = 1; n < 300; n += 37) {
            float *x = randoms(n, 9), *y = randoms(n, 2), *out = malloc(n * sizeof(float));
            tinyshard_gelu_forward(x, out, n); hg = HASH(hg, out, n);
            tinyshard_gelu_backward(y, x, out, n); hb = HASH(hb, out, n);
            tinyshard_add(x, y, out, n); ha = HASH(ha, out, n);
            tinyshard_add_scaled(x, y, 0.3f, out, n); hs = HASH(hs, out, n);
            free(x); free(y); free(out);
        }
        report("gelu_forward", hg); report("gelu_backward", hb); report("add", ha); report("add_scaled", hs);
        float scalars[6] = {tinyshard_gelu(-3.5f), tinyshard_gelu(0.7f), tinyshard_gelu_derivative(-0.2f),
                            tinyshard_gelu_derivative(5), tinyshard_exp(-50), tinyshard_exp(10.25f)};
        report("scalar gelu, gelu', exp", HASH(basis, scalars, 6));
    }
    {
        uint64_t hf = basis, hb = basis;
        for (ptrdiff_t n = 3; n < 220; n += 23) {
            float *row = randoms(n, 12), *g = randoms(n, 1);
            tinyshard_softmax_row(row, n); hf = HASH(hf, row, n);
            tinyshard_softmax_backward_row(g, row, n); hb = HASH(hb, g, n);
            free(row); free(g);
        }
        report("softmax_row", hf); report("softmax_backward_row", hb);
    }
    {
        ptrdiff_t n = 10007;
        float *w = randoms(n, 1), *g = randoms(n, 3), *m = randoms(n, 0.1f), *v = randoms(n, 0.01f);
        for (ptrdiff_t i = 0; i < n; i++) v[i] = v[i] < 0 ? -v[i] : v[i];
        for (int step = 0; step < 3; step++) tinyshard_adamw_update(w, g, m, v, n, 0.8f, 0.9995f, 0.9f, 0.999f, 1e-3f, 0.05f, 1e-8f);
        uint64_t h = HASH(basis, w, n);
        h = HASH(h, m, n);
        report("adamw_update", HASH(h, v, n));
        free(w); free(g); free(m); free(v);
    }

    // Normalisation: channel counts with and without a tail, more than one 64-row block.
    for (int variant = 0; variant < 2; variant++) {
        ptrdiff_t C = variant ? 24 : 13, rows = 150, n = rows * C;
        float *x = randoms(n, 3), *dy = randoms(n, 1), *res = randoms(n, 1), *a = randoms(C, 1), *b = randoms(C, 1);
        float *mean = randoms(C, 0.5f), *inv = randoms(C, 1), *k = randoms(C, 1), *m1 = randoms(C, 0.1f), *m2 = randoms(C, 0.1f);
        float scale[3] = {2, 0.5f, 1.25f};
        float *y = malloc(n * sizeof(float)), *dres = malloc(n * sizeof(float)), *dbr = malloc(n * sizeof(float));
        float *scratch = malloc(2 * C * sizeof(float));
        double *sums = calloc(2 * C, sizeof(double));
        char name[64];
        tinyshard_batchnorm_forward_rows(x, y, res, a, b, C, 0, rows, scale, rows / 3, 1);
        uint64_t h = HASH(basis, y, n);
        tinyshard_batchnorm_forward_rows(x, y, NULL, a, b, C, 0, rows, NULL, rows, 0);
        snprintf(name, sizeof name, "batchnorm_forward C=%td", C); report(name, HASH(h, y, n));
        tinyshard_batchnorm_backward_accumulate(x, dy, res, dres, dbr, a, b, mean, inv, C, 0, rows, scale, rows / 3, 1, scratch, sums);
        h = HASH(HASH(HASH(basis, dres, n), dbr, n), sums, 2 * C);
        snprintf(name, sizeof name, "batchnorm_backward C=%td", C); report(name, h);
        tinyshard_batchnorm_backward_input_rows(x, dbr, k, m1, m2, mean, inv, C, 0, rows);
        snprintf(name, sizeof name, "batchnorm_backward_input C=%td", C); report(name, HASH(basis, dbr, n));
        memset(sums, 0, 2 * C * sizeof(double));
        tinyshard_channel_moments(x, x, C, 0, rows, scratch, sums);
        tinyshard_channel_sums(x, NULL, C, 0, rows, scratch, sums);   // adds into the first C sums
        tinyshard_channel_sums(x, mean, C, 0, rows, scratch, sums + C);
        snprintf(name, sizeof name, "channel_moments+sums C=%td", C); report(name, HASH(basis, sums, 2 * C));
        float *rowMean = malloc(rows * sizeof(float)), *rowInv = malloc(rows * sizeof(float));
        tinyshard_layernorm_forward_rows(x, y, a, b, 1e-5f, C, 0, rows, rowMean, rowInv);
        h = HASH(HASH(HASH(basis, y, n), rowMean, rows), rowInv, rows);
        snprintf(name, sizeof name, "layernorm_forward C=%td", C); report(name, h);
        memset(sums, 0, 2 * C * sizeof(double));
        tinyshard_layernorm_backward_rows(x, dy, y, a, rowMean, rowInv, C, 0, rows, scratch, sums);
        snprintf(name, sizeof name, "layernorm_backward C=%td", C); report(name, HASH(HASH(basis, y, n), sums, 2 * C));
        free(x); free(dy); free(res); free(a); free(b); free(mean); free(inv); free(k); free(m1); free(m2);
        free(y); free(dres); free(dbr); free(scratch); free(sums); free(rowMean); free(rowInv);
    }

    // Depthwise convolution: stride 1 and 2, 3×3 and 5×5, channel tails.
    for (int variant = 0; variant < 3; variant++) {
        tinyshard_depthwise_geometry g = {.batch = 2, .channels = variant == 1 ? 16 : 11, .height = 9, .width = 7,
                                          .kernel = variant == 2 ? 5 : 3, .stride = variant == 1 ? 2 : 1};
        g.padding = g.kernel / 2;
        g.out_height = (g.height + 2 * g.padding - g.kernel) / g.stride + 1;
        g.out_width = (g.width + 2 * g.padding - g.kernel) / g.stride + 1;
        ptrdiff_t in = g.batch * g.height * g.width * g.channels, out = g.batch * g.out_height * g.out_width * g.channels;
        ptrdiff_t taps = g.kernel * g.kernel;
        float *x = randoms(in, 1), *w = randoms(taps * g.channels, 1), *dy = randoms(out, 1);
        float *y = malloc(out * sizeof(float)), *dx = malloc(in * sizeof(float)), *scratch = malloc(taps * g.channels * sizeof(float));
        double *sums = calloc(taps * g.channels, sizeof(double));
        ptrdiff_t *tapScratch = malloc(2 * taps * sizeof(ptrdiff_t));
        tinyshard_depthwise_forward_rows(x, w, y, &g, 0, g.batch * g.out_height);
        tinyshard_depthwise_backward_data_rows(dy, w, dx, &g, 0, g.batch * g.height, tapScratch);
        tinyshard_depthwise_backward_weights_rows(dy, x, &g, 0, g.batch * g.out_height, scratch, sums);
        char name[64];
        snprintf(name, sizeof name, "depthwise C=%td s=%td k=%td", g.channels, g.stride, g.kernel);
        report(name, HASH(HASH(HASH(basis, y, out), dx, in), sums, taps * g.channels));
        free(x); free(w); free(dy); free(y); free(dx); free(scratch); free(sums); free(tapScratch);
    }
    fprintf(stderr, "kernel_parity: %s path\n", tinyshard_simd_name(tinyshard_simd_active()));
    return 0;
}
