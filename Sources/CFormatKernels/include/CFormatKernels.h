// The shard format's hot numeric loops: float16 <-> float32 conversion of the values column and the fill
// of dense soft-label rows.
//
// Format-level helpers only (ShardFormat depends on this target and must not depend on ML code).
// On x86-64 with F16C the conversions run 8 values per instruction; elsewhere a portable bit-exact
// version (on arm64 the hardware conversion the baseline already has). All builds give the same bits:
// widening is exact; narrowing rounds to nearest, ties to even; a NaN stays a NaN of the same sign with
// its quiet bit set and its payload kept (truncated when narrowing), as the hardware instructions do.
#ifndef TINYSHARD_CFORMAT_KERNELS_H
#define TINYSHARD_CFORMAT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// dst[i] = (float)src[i] for n float16 bit patterns. The ranges must not overlap.
void tinyshard_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/// dst[i] = float16 bit pattern of src[i] rounded to nearest even, for n floats. The ranges must not overlap.
void tinyshard_f32_to_f16(const float *src, uint16_t *dst, size_t n);

/// dst[i] = value for i < n: the residual every class outside a record's top-K gets in a dense row
/// (32-byte stores with AVX2, where the baseline has 16-byte ones).
void tinyshard_fill_f32(float *dst, size_t n, float value);

#ifdef __cplusplus
}
#endif

#endif
