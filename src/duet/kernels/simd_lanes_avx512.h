// The 16-lane twin of simd_lanes_avx2.h: one zmm, a whole 16-channel block. Include only from
// *_avx512.cpp files; the type differs from Lanes8, so no instantiation is shared across ISAs.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace duet::kernels::simd {

struct Lanes16 {
  using V = __m512;
  static constexpr int64_t width = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a b + c
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
};

}  // namespace duet::kernels::simd
