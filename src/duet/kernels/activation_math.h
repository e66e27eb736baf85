// The GEMM epilogue's activations as scalar definitions and (in AVX2 translation units) vector
// twins accurate to about 1e-6 relative. GELU goes through erfc so the negative tail keeps its
// relative accuracy instead of cancelling in 1 + erf(x).
#pragma once

#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace duet::kernels::act_math {

inline float relu(float x) {
  return x < 0.0f ? 0.0f : x;
}  // NaN passes through
inline float silu(float x) {
  return x / (1.0f + std::exp(-x));
}
inline float gelu(float x) {
  return 0.5f * x * std::erfc(-x * 0.70710678118654752f);
}

#if defined(__AVX2__) && defined(__FMA__)

// e^x with x clamped to [-87.3, 88.37] so the exponent trick below stays in the normal range.
inline __m256 exp_ps(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.37f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2 in two steps: the high part of ln2 has few bits, so n * hi is exact.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  // Taylor series to degree 7 on |r| <= ln2/2: truncation error below 1e-8 relative.
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// erfc(z) for z >= 0 as t * exp(-z^2 + P(t)), t = 1 / (1 + z/2): the Chebyshev fit published
// in Numerical Recipes (2nd ed., sec. 6.2), fractional error below 1.2e-7 for all z >= 0.
// exp(-z^2) is taken apart from exp(P(t)) with z^2 split as hi + lo (FMA): rounding a sum of
// magnitude z^2 would otherwise cost ~1e-6 relative in the tail.
inline __m256 erfc_nonneg_ps(__m256 z) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), one));
  __m256 p = _mm256_set1_ps(0.17087277f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
  const __m256 zz = _mm256_mul_ps(z, z);
  const __m256 zz_lo = _mm256_fmsub_ps(z, z, zz);
  const __m256 head = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), zz));
  return _mm256_mul_ps(_mm256_mul_ps(t, head), exp_ps(_mm256_sub_ps(p, zz_lo)));
}

inline __m256 relu_ps(__m256 x) {
  return _mm256_max_ps(_mm256_setzero_ps(), x);
}

inline __m256 silu_ps(__m256 x) {
  const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// gelu(x) = x/2 * erfc(-x/sqrt2); erfc(-z) = 2 - erfc(z) for the positive side.
inline __m256 gelu_ps(__m256 x) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign_mask, x), _mm256_set1_ps(0.70710678f));
  const __m256 e = erfc_nonneg_ps(z);
  const __m256 pos = _mm256_sub_ps(_mm256_set1_ps(2.0f), e);
  const __m256 cdf2 = _mm256_blendv_ps(pos, e, x);  // sign bit of x picks the erfc branch
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), cdf2);
}

#endif

}  // namespace duet::kernels::act_math
