#include "CFormatKernels.h"
#include "CKernelDispatch.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx2")))
static void fill_avx2(float *dst, size_t n, float value) {
    __m256 v = _mm256_set1_ps(value);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm256_storeu_ps(dst + i, v);
        _mm256_storeu_ps(dst + i + 8, v);
        _mm256_storeu_ps(dst + i + 16, v);
        _mm256_storeu_ps(dst + i + 24, v);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, v);
    for (; i < n; i++) dst[i] = value;
}
#endif

void tinyshard_fill_f32(float *dst, size_t n, float value) {
#if defined(__x86_64__) || defined(__i386__)
    if (tinyshard_simd_active() == TINYSHARD_SIMD_AVX2) { fill_avx2(dst, n, value); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = value;
}
