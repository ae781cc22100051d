#include "CFormatKernels.h"
#include "CKernelDispatch.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// MARK: Portable (bit manipulation; the compiler vectorises the branch-free loops with baseline SIMD)

#if !defined(__aarch64__)   // arm64 converts in hardware (below)
static inline uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline uint32_t widen_one(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    // Normal: rebias the exponent (127 - 15 = 112) and widen the mantissa.
    uint32_t normal = ((exponent + 112u) << 23) | (mantissa << 13);
    // Zero and subnormal: mantissa · 2^-24, exact in float.
    uint32_t small = float_bits((float)mantissa * 0x1p-24f);
    // Infinity and NaN: all-ones exponent; a NaN gets its quiet bit (as vcvtph2ps and fcvt do).
    uint32_t special = 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0u);
    uint32_t magnitude = exponent == 0 ? small : (exponent == 0x1f ? special : normal);
    return sign | magnitude;
}

static inline uint16_t narrow_one(float f) {
    uint32_t x = float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    // NaN: quiet bit set, payload truncated to 9 bits. Overflow (≥ 65520 rounds up): infinity.
    uint32_t nan = 0x7e00u | ((x >> 13) & 0x3ffu);
    // Below 2^-14 (subnormal or zero result): adding 0.5 lines the half's subnormal ulp (2^-24) up with
    // the float's last mantissa bit, so the FPU's round-to-nearest-even does the rounding.
    uint32_t subnormal = float_bits(bits_float(x) + 0.5f) - 0x3f000000u;
    // Normal: rebias, then round to nearest even on the 13 dropped bits.
    uint32_t odd = (x >> 13) & 1u;
    uint32_t normal = (x + 0xc8000fffu + odd) >> 13;   // 0xc8000000 = (15 - 127) << 23 mod 2^32
    uint32_t magnitude = x > 0x7f800000u ? nan : x >= 0x477ff000u ? 0x7c00u : x < 0x38800000u ? subnormal : normal;
    return (uint16_t)(sign | magnitude);
}
#endif

static void widen_portable(const uint16_t *src, float *dst, size_t n) {
#if defined(__aarch64__)
    // The baseline has the conversion (FCVT, vectorised to FCVTL); same results as the bit version.
    const __fp16 *half = (const __fp16 *)src;
    for (size_t i = 0; i < n; i++) dst[i] = (float)half[i];
#else
    uint32_t *out = (uint32_t *)dst;
    for (size_t i = 0; i < n; i++) out[i] = widen_one(src[i]);
#endif
}

static void narrow_portable(const float *src, uint16_t *dst, size_t n) {
#if defined(__aarch64__)
    __fp16 *half = (__fp16 *)dst;
    for (size_t i = 0; i < n; i++) half[i] = (__fp16)src[i];
#else
    for (size_t i = 0; i < n; i++) dst[i] = narrow_one(src[i]);
#endif
}

// MARK: x86-64 F16C

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,f16c")))
static void widen_f16c(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    }
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

__attribute__((target("avx2,f16c")))
static void narrow_f16c(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#endif

// MARK: Dispatch

void tinyshard_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (tinyshard_simd_active() == TINYSHARD_SIMD_AVX2) { widen_f16c(src, dst, n); return; }
#endif
    widen_portable(src, dst, n);
}

void tinyshard_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (tinyshard_simd_active() == TINYSHARD_SIMD_AVX2) { narrow_f16c(src, dst, n); return; }
#endif
    narrow_portable(src, dst, n);
}
