// The AVX2 build of every kernel (x86-64 only): the same source as KernelsPortable.c with every function,
// the inlined vector helpers included, compiled for AVX2. Taken only when CKernelDispatch finds AVX2 and OS
// support at run time; no fused multiply-add (vector8.h), so the results equal the portable build's.
#include "CTensorKernels.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define TK_NAME(name) tinyshard_avx2_##name
#include "internal/elementwise_kernels.h"
#include "internal/normalization_kernels.h"
#include "internal/depthwise_kernels.h"
#pragma clang attribute pop
#endif
