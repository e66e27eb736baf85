#include <immintrin.h>

#include <cmath>

#include "duet/train/adamw_update.h"

namespace duet::train::detail {

void adamw_update_avx2(float* p, const float* g, float* m, float* v, int64_t n,
                       const AdamWCoefs& c) {
  // The portable loop's operations with its three multiply-adds fused (as ATen's vectorised
  // add-with-alpha does). The tail uses std::fma in the same places, so an element's result does
  // not depend on whether it falls in a vector or in the tail, i.e. on the thread split.
  const __m256 decay = _mm256_set1_ps(c.decay), neg_step = _mm256_set1_ps(c.neg_step);
  const __m256 bias2_sqrt = _mm256_set1_ps(c.bias2_sqrt), eps = _mm256_set1_ps(c.eps);
  const __m256 b1 = _mm256_set1_ps(c.beta1), b2 = _mm256_set1_ps(c.beta2);
  const __m256 one_b1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 one_b2 = _mm256_set1_ps(c.one_minus_beta2);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 mi = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(one_b1, gi));
    const __m256 vi =
        _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(_mm256_mul_ps(one_b2, gi), gi));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bias2_sqrt), eps);
    const __m256 step = _mm256_div_ps(_mm256_mul_ps(neg_step, mi), denom);
    _mm256_storeu_ps(p + i, _mm256_fmadd_ps(_mm256_loadu_ps(p + i), decay, step));
  }
  for (; i < n; ++i) {
    const float mi = std::fma(c.beta1, m[i], c.one_minus_beta1 * g[i]);
    const float vi = std::fma(c.beta2, v[i], c.one_minus_beta2 * g[i] * g[i]);
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / c.bias2_sqrt + c.eps;
    p[i] = std::fma(p[i], c.decay, c.neg_step * mi / denom);
  }
}

}  // namespace duet::train::detail
