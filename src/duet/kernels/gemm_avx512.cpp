// AVX-512 micro-kernel of the SGEMM: 12 x 16, two packed A micro-panels (rows 0-5 and 6-11)
// against one 16-wide B micro-panel, so the packing layout and driver are those of the AVX2
// kernel. Twelve zmm accumulators cover two 512-bit FMA pipes through their latency; each k
// costs one B load and twelve broadcasts (folded into the FMAs). Row tails of six or fewer go
// to the AVX2 kernel, and the epilogue runs through the AVX2 one on the cache-hot tile. Only
// called when isa_at_least(avx512); includes nothing with shared inline code (see the CMake rule).
#include <immintrin.h>

#include "duet/kernels/gemm_kernel.h"

namespace duet::kernels::gemm_detail {

void micro_kernel_avx512(int64_t kc, const float* pa, const float* pb, int64_t ldpb, float* c,
                         int64_t ldc, int64_t mr, int64_t nr, int64_t row0, int64_t col0,
                         const TileArgs& args) {
  if (mr <= kMR) return micro_kernel_avx2(kc, pa, pb, ldpb, c, ldc, mr, nr, row0, col0, args);
  const float* pa2 = pa + kMR * kc;
  __m512 acc[kMRWide];
#pragma GCC unroll 12
  for (int i = 0; i < kMRWide; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, pa += kMR, pa2 += kMR, pb += ldpb) {
    const __m512 b = _mm512_loadu_ps(pb);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
      acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(pa[i]), b, acc[i]);
      acc[kMR + i] = _mm512_fmadd_ps(_mm512_set1_ps(pa2[i]), b, acc[kMR + i]);
    }
  }
  const __mmask16 lanes = nr >= kNR ? __mmask16(0xffff) : __mmask16((1u << nr) - 1);
  const __m512 alpha = _mm512_set1_ps(args.alpha), beta = _mm512_set1_ps(args.beta);
  for (int64_t i = 0; i < mr; ++i) {
    float* cp = c + i * ldc;
    __m512 y;
    if (!args.first) {
      y = _mm512_fmadd_ps(alpha, acc[i], _mm512_maskz_loadu_ps(lanes, cp));
    } else {
      y = _mm512_mul_ps(alpha, acc[i]);
      // beta 0: C is not read, so NaN/Inf left in it do not leak.
      if (args.beta != 0.0f) y = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(lanes, cp), y);
    }
    // A plain store when all 16 columns are live, as in store_transposed_avx512.
    if (nr >= kNR)
      _mm512_storeu_ps(cp, y);
    else
      _mm512_mask_storeu_ps(cp, lanes, y);
  }
  if (args.epilogue) epilogue_block_avx2(*args.epilogue, c, ldc, mr, nr, row0, col0);
}

}  // namespace duet::kernels::gemm_detail
