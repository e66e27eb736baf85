#include <immintrin.h>

#include "duet/kernels/fma_peak.h"

namespace duet::kernels::fma_peak_detail {

// The AVX-512 twin of run_chains_avx2: 12 independent zmm chains of x*m + a (m just below 1,
// so values converge and never overflow or go denormal).
double run_chains_avx512(long iters, float* sink) {
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  __m512 x[12];
#pragma GCC unroll 12
  for (int j = 0; j < 12; ++j) x[j] = _mm512_set1_ps(1.0f + 0.1f * float(j));
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) x[j] = _mm512_fmadd_ps(x[j], m, a);
  }
  __m512 s = x[0];
#pragma GCC unroll 11
  for (int j = 1; j < 12; ++j) s = _mm512_add_ps(s, x[j]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  *sink += total;
  return double(iters) * 12 * 16 * 2;
}

}  // namespace duet::kernels::fma_peak_detail
