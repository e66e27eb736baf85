// The 8-lane float vector of the AVX2 kernels as a type the lane-generic kernels
// (conv2d_winograd_variants.h, activation_math_lanes.h) are instantiated with;
// simd_lanes_avx512.h is its 16-lane twin.
// Include only from *_avx2.cpp files: the inline code here is compiled for AVX2 + FMA.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace duet::kernels::simd {

struct Lanes8 {
  using V = __m256;
  static constexpr int64_t width = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }    // a b + c
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a b
  static V fmsub(V a, V b, V c) { return _mm256_fmsub_ps(a, b, c); }    // a b - c
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }  // b where either is NaN
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127], through the exponent field.
  static V pow2(V n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static V if_sign(V x, V negative, V otherwise) {  // by x's sign bit
    return _mm256_blendv_ps(otherwise, negative, x);
  }
  static V keep_where_positive(V x, V v) {  // v where x > 0, else 0
    return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), v);
  }
};

}  // namespace duet::kernels::simd
