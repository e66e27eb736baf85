// AVX-512 micro-tiles of the direct convolution (see conv2d_direct_tile.h). One zmm holds the
// 16 outputs of a packed weight panel. The wide tile takes two panels for kRows rows: 2 x kRows
// independent accumulators keep both 512-bit FMA pipes busy through their latency, and each k
// costs kRows broadcasts (folded into the FMAs) plus two weight loads for 2 x kRows FMAs. kRows
// row pointers stay in general registers (more would spill and add loads to the hot loop).
// Called only when isa_at_least(avx512).
#include <immintrin.h>

#include "duet/kernels/conv2d_direct_tile.h"

namespace duet::kernels::detail {
namespace {

constexpr int kRows = 8;

template <int Panels>
void tile(int64_t kc, const float* const* base, const int32_t* off, const float* pb,
          int64_t panel_stride, float* c, int64_t ldc, bool accumulate) {
  const float* a[kRows];
  __m512 acc[kRows][Panels];
#pragma GCC unroll 16
  for (int i = 0; i < kRows; ++i) {
    a[i] = base[i];
    for (int q = 0; q < Panels; ++q) acc[i][q] = _mm512_setzero_ps();
  }
  const float* pb1 = pb + (Panels > 1 ? panel_stride : 0);
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t o = off[k];
    const __m512 b0 = _mm512_load_ps(pb + k * kDirectLanes);
    const __m512 b1 = Panels > 1 ? _mm512_load_ps(pb1 + k * kDirectLanes) : b0;
#pragma GCC unroll 16
    for (int i = 0; i < kRows; ++i) {
      const __m512 av = _mm512_set1_ps(a[i][o]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      if constexpr (Panels > 1) acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kRows; ++i)
    for (int q = 0; q < Panels; ++q) {
      float* cp = c + i * ldc + q * kDirectLanes;
      __m512 v = acc[i][q];
      if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(cp));
      _mm512_storeu_ps(cp, v);
    }
}

}  // namespace

DirectTile direct_tile_avx512() {
  return {kRows, 2, tile<2>, tile<1>};
}

}  // namespace duet::kernels::detail
