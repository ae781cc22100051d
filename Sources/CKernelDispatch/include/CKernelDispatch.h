// Which SIMD code path TinyShard's C kernels take on this CPU, chosen at run time.
//
// The libraries are built for the baseline of their architecture (no -march / -target-cpu flags, which
// SwiftPM refuses in versioned dependencies). Hot kernels exist twice: a portable build, and on x86-64 a
// build for AVX2 + F16C that is taken only when the CPU and the OS support it. Both builds compute the
// same operations in the same order (no fused multiply-add), so they give bit-identical results.
#ifndef TINYSHARD_CKERNEL_DISPATCH_H
#define TINYSHARD_CKERNEL_DISPATCH_H

#ifdef __cplusplus
extern "C" {
#endif

/// A family of kernel builds.
typedef enum {
    /// Baseline code for any CPU (on arm64 the compiler's baseline includes NEON).
    TINYSHARD_SIMD_PORTABLE = 0,
    /// x86-64 with AVX2 and F16C (Haswell and later, AMD Zen and later), with the OS saving YMM state.
    TINYSHARD_SIMD_AVX2 = 1,
} tinyshard_simd_level;

/// The best family this CPU supports (detected once).
tinyshard_simd_level tinyshard_simd_supported(void);

/// The family kernels use now: the supported one, unless the environment variable
/// `TINYSHARD_SIMD=portable` was set when it was first read, or ``tinyshard_simd_force_portable`` says so.
tinyshard_simd_level tinyshard_simd_active(void);

/// Forces the portable family (`force` ≠ 0) or returns to the default (`force` = 0: the supported family,
/// or portable if the environment asks for it). For tests and comparisons; safe to call at any time from
/// any thread, because both families give identical results.
void tinyshard_simd_force_portable(int force);

/// "portable" or "avx2+f16c".
const char *tinyshard_simd_name(tinyshard_simd_level level);

#ifdef __cplusplus
}
#endif

#endif
