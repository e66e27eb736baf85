// The GEMM epilogue's activations as scalar definitions and (in AVX2 translation units) vector
// twins accurate to about 1e-6 relative. GELU goes through erfc so the negative tail keeps its
// relative accuracy instead of cancelling in 1 + erf(x).
#pragma once

#include <cmath>

#include "duet/kernels/activation_math_lanes.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "duet/kernels/simd_lanes_avx2.h"
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

// The AVX2 twins, 8 lanes: activation_math_lanes.h's formulas on simd::Lanes8.
inline __m256 exp_ps(__m256 x) {
  return exp_of<simd::Lanes8>(x);
}
inline __m256 erfc_nonneg_ps(__m256 z) {
  return erfc_nonneg_of<simd::Lanes8>(z);
}
inline __m256 relu_ps(__m256 x) {
  return relu_of<simd::Lanes8>(x);
}
inline __m256 silu_ps(__m256 x) {
  return silu_of<simd::Lanes8>(x);
}
inline __m256 gelu_ps(__m256 x) {
  return gelu_of<simd::Lanes8>(x);
}

#endif

}  // namespace duet::kernels::act_math
