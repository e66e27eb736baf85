// The 16-lane twin of simd_lanes_avx2.h: one zmm, a whole 16-channel block. Include only from
// *_avx512.cpp files; the type differs from Lanes8, so no instantiation is shared across ISAs.
#pragma once

#include <cstdint>

#include "duet/kernels/avx512_intrinsics.h"

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
  static V fmsub(V a, V b, V c) { return _mm512_fmsub_ps(a, b, c); }    // a b - c
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }  // b where either is NaN
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V round(V a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-126, 127], through the exponent field.
  static V pow2(V n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static V if_sign(V x, V negative, V otherwise) {  // by x's sign bit
    return _mm512_mask_blend_ps(_mm512_movepi32_mask(_mm512_castps_si512(x)), otherwise, negative);
  }
  static V keep_where_positive(V x, V v) {  // v where x > 0, else 0
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), v);
  }
};

}  // namespace duet::kernels::simd
