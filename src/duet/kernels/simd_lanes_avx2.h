// The 8-lane float vector of the AVX2 kernels as a type the lane-generic kernels
// (conv2d_winograd_variants.h) are instantiated with; simd_lanes_avx512.h is its 16-lane twin.
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
};

}  // namespace duet::kernels::simd
