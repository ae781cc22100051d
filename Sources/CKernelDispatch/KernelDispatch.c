#include "CKernelDispatch.h"

#include <stdlib.h>
#include <string.h>

// -1: not decided yet. Racing first calls compute the same value, so relaxed atomics suffice.
static int supported_level = -1;
static int active_level = -1;

static int detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    // __builtin_cpu_supports reads CPUID and, for AVX, checks that the OS enabled YMM state (XGETBV).
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) return TINYSHARD_SIMD_AVX2;
#endif
    return TINYSHARD_SIMD_PORTABLE;
}

tinyshard_simd_level tinyshard_simd_supported(void) {
    int level = __atomic_load_n(&supported_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = detect();
        __atomic_store_n(&supported_level, level, __ATOMIC_RELAXED);
    }
    return (tinyshard_simd_level)level;
}

/// The supported family, or portable when the environment asks for it (`TINYSHARD_SIMD=portable`).
static int default_level(void) {
    const char *request = getenv("TINYSHARD_SIMD");
    return (request && strcmp(request, "portable") == 0) ? TINYSHARD_SIMD_PORTABLE : (int)tinyshard_simd_supported();
}

tinyshard_simd_level tinyshard_simd_active(void) {
    int level = __atomic_load_n(&active_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = default_level();
        __atomic_store_n(&active_level, level, __ATOMIC_RELAXED);
    }
    return (tinyshard_simd_level)level;
}

void tinyshard_simd_force_portable(int force) {
    __atomic_store_n(&active_level, force ? TINYSHARD_SIMD_PORTABLE : default_level(), __ATOMIC_RELAXED);
}

const char *tinyshard_simd_name(tinyshard_simd_level level) {
    return level == TINYSHARD_SIMD_AVX2 ? "avx2+f16c" : "portable";
}
