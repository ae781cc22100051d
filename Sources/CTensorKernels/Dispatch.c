// The public kernels: each calls the AVX2 build when CKernelDispatch selects it, else the portable build.
#include "CTensorKernels.h"
#include "CKernelDispatch.h"
#include "internal/kernel_list.h"

#define DECLARE_BUILDS(name, parameters, arguments) \
    void tinyshard_portable_##name parameters; \
    void tinyshard_avx2_##name parameters;
TINYSHARD_TENSOR_KERNELS(DECLARE_BUILDS)

#if defined(__x86_64__)
#define DISPATCH(name, parameters, arguments) \
    void tinyshard_##name parameters { \
        if (tinyshard_simd_active() == TINYSHARD_SIMD_AVX2) tinyshard_avx2_##name arguments; \
        else tinyshard_portable_##name arguments; \
    }
#else
#define DISPATCH(name, parameters, arguments) \
    void tinyshard_##name parameters { tinyshard_portable_##name arguments; }
#endif
TINYSHARD_TENSOR_KERNELS(DISPATCH)
