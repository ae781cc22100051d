// The portable build of every kernel: the architecture's baseline (SSE2 on x86-64, NEON on arm64).
#include "CTensorKernels.h"

#define TK_NAME(name) tinyshard_portable_##name
#include "internal/elementwise_kernels.h"
#include "internal/normalization_kernels.h"
#include "internal/depthwise_kernels.h"

// The scalar functions need no dispatch: one lane of the vector code, the same on every path.
float tinyshard_gelu(float x) { return gelu1(x); }
float tinyshard_gelu_derivative(float x) { return gelu_derivative1(x); }
float tinyshard_exp(float x) { return exp1(x); }
