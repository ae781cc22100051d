// Eight-lane float vectors and the math the kernels build on, written with the compiler's generic vector
// extension: one source that becomes AVX2 (one ymm register) in the AVX2 build, two SSE registers in
// the x86-64 baseline build and two NEON registers on arm64, with the same result in every lane.
//
// Included only by the kernel bodies, inside a build that defines TK_NAME (see KernelsAVX2.c). Every
// helper is static and always inlined, so that it takes on the including build's target features.
#ifndef TINYSHARD_VECTOR8_H
#define TINYSHARD_VECTOR8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// a·b + c stays a multiply and an add (no fused multiply-add): the same bits on every path and CPU.
#pragma STDC FP_CONTRACT OFF

// In the portable x86-64 build an 8-float vector passed by value has no AVX register to live in, which
// would change the calling convention of a real call; every helper here is always inlined, so no such
// call exists and the warning does not apply.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef uint32_t u8 __attribute__((vector_size(32)));
typedef float f4 __attribute__((vector_size(16)));

#define TK_INLINE static inline __attribute__((always_inline))

TK_INLINE f8 splat8(float x) { return (f8){x, x, x, x, x, x, x, x}; }
TK_INLINE f8 load8(const float *p) { f8 v; memcpy(&v, p, sizeof v); return v; }
TK_INLINE void store8(f8 v, float *p) { memcpy(p, &v, sizeof v); }

/// `mask ? yes : no` lane by lane (mask lanes are all ones or all zeros).
TK_INLINE f8 select8(i8 mask, f8 yes, f8 no) { return (f8)(((i8)yes & mask) | ((i8)no & ~mask)); }
TK_INLINE f8 max8(f8 a, f8 b) { return select8(a < b, b, a); }
TK_INLINE f8 min8(f8 a, f8 b) { return select8(a > b, b, a); }

/// Lanes 0–3 plus lanes 4–7, then pairwise: ((v0+v4) + (v2+v6)) + ((v1+v5) + (v3+v7)).
TK_INLINE float lane_sum8(f8 v) {
    f4 a = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
    float b0 = a[0] + a[2], b1 = a[1] + a[3];
    return b0 + b1;
}

/// max(y, x) as `y >= x ? y : x`, the scalar rule the lane reductions use.
TK_INLINE float max1(float x, float y) { return y >= x ? y : x; }

TK_INLINE float lane_max8(f8 v) {
    float a[4];
    for (int i = 0; i < 4; i++) a[i] = v[i] < v[i + 4] ? v[i + 4] : v[i];
    return max1(max1(a[0], a[1]), max1(a[2], a[3]));
}

/// exp(x) with ~1 ulp error for x in [-87.3, 88.7] (Cephes-style: range reduction by ln 2, degree-6
/// polynomial, exponent built from the rounding bits). Results below that range flush to 0.
TK_INLINE f8 exp8(f8 x0) {
    f8 x = min8(max8(x0, splat8(-87.3f)), splat8(88.7f));
    f8 magic = splat8(12582912.0f);  // 1.5 · 2^23: adding it rounds to an integer
    f8 t = x * 1.44269504f + magic;
    f8 n = t - magic;
    f8 r = x - n * 0.693359375f;
    r = r - n * -2.1219444e-4f;
    f8 p = splat8(1.98756915e-4f);
    p = p * r + 1.39819995e-3f;
    p = p * r + 8.3334519e-3f;
    p = p * r + 4.16657959e-2f;
    p = p * r + 1.66666655e-1f;
    p = p * r + 5.00000012e-1f;
    f8 y = p * r * r + r + 1.0f;
    u8 bits = (((u8)t - 0x4B400000u) + 127u) << 23;
    return y * (f8)bits;
}

/// erf(z) as an odd/even rational minimax fit on [-4, 4] (the form Eigen and XLA use), clamped outside
/// (where float erf is ±1): max error ≈ 7e-8 plus float rounding, one division, no exp.
TK_INLINE f8 erf8(f8 z0) {
    f8 z = min8(max8(z0, splat8(-4.0f)), splat8(4.0f));
    f8 z2 = z * z;
    f8 p = splat8(-2.72614225801306e-10f);
    p = p * z2 + 2.77068142495902e-08f;
    p = p * z2 - 2.10102402082508e-06f;
    p = p * z2 - 5.69250639462346e-05f;
    p = p * z2 - 7.34990630326855e-04f;
    p = p * z2 - 2.95459980854025e-03f;
    p = p * z2 - 1.60960333262415e-02f;
    p = p * z;
    f8 q = splat8(-1.45660718464996e-05f);
    q = q * z2 - 2.13374055278905e-04f;
    q = q * z2 - 1.68282697438203e-03f;
    q = q * z2 - 7.37332916720468e-03f;
    q = q * z2 - 1.42647390514189e-02f;
    return p / q;
}

/// The standard normal CDF Φ(x) = ½·(1 + erf(x/√2)), computed as PyTorch's GELU does.
TK_INLINE f8 normal_cdf8(f8 x) { return 0.5f + 0.5f * erf8(x * 0.70710677f); }

/// GELU (erf form): x·Φ(x).
TK_INLINE f8 gelu8(f8 x) { return x * normal_cdf8(x); }

/// d GELU / dx = Φ(x) + x·φ(x).
TK_INLINE f8 gelu_derivative8(f8 x) { return normal_cdf8(x) + x * (0.39894228f * exp8(-0.5f * x * x)); }

/// Scalar forms: lane 0 of the vector computation, so that loop tails match the vector body bit for bit.
TK_INLINE float gelu1(float x) { return gelu8(splat8(x))[0]; }
TK_INLINE float gelu_derivative1(float x) { return gelu_derivative8(splat8(x))[0]; }
TK_INLINE float exp1(float x) { return exp8(splat8(x))[0]; }

#endif
