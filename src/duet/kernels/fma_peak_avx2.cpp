#include <immintrin.h>

#include "duet/kernels/fma_peak.h"

namespace duet::kernels::fma_peak_detail {

// 12 independent chains cover FMA latency (4-5 cycles) x 2 pipes with room to spare; x*m + a
// with m just below 1 converges, so no value ever overflows or goes denormal.
double run_chains_avx2(long iters, float* sink) {
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  __m256 x0 = _mm256_set1_ps(1.0f), x1 = _mm256_set1_ps(1.1f), x2 = _mm256_set1_ps(1.2f);
  __m256 x3 = _mm256_set1_ps(1.3f), x4 = _mm256_set1_ps(1.4f), x5 = _mm256_set1_ps(1.5f);
  __m256 x6 = _mm256_set1_ps(1.6f), x7 = _mm256_set1_ps(1.7f), x8 = _mm256_set1_ps(1.8f);
  __m256 x9 = _mm256_set1_ps(1.9f), x10 = _mm256_set1_ps(2.0f), x11 = _mm256_set1_ps(2.1f);
  for (long i = 0; i < iters; ++i) {
    x0 = _mm256_fmadd_ps(x0, m, a);
    x1 = _mm256_fmadd_ps(x1, m, a);
    x2 = _mm256_fmadd_ps(x2, m, a);
    x3 = _mm256_fmadd_ps(x3, m, a);
    x4 = _mm256_fmadd_ps(x4, m, a);
    x5 = _mm256_fmadd_ps(x5, m, a);
    x6 = _mm256_fmadd_ps(x6, m, a);
    x7 = _mm256_fmadd_ps(x7, m, a);
    x8 = _mm256_fmadd_ps(x8, m, a);
    x9 = _mm256_fmadd_ps(x9, m, a);
    x10 = _mm256_fmadd_ps(x10, m, a);
    x11 = _mm256_fmadd_ps(x11, m, a);
  }
  const __m256 s =
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                                  _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7))),
                    _mm256_add_ps(_mm256_add_ps(x8, x9), _mm256_add_ps(x10, x11)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  *sink += total;
  return double(iters) * 12 * 8 * 2;
}

}  // namespace duet::kernels::fma_peak_detail
