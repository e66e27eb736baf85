// The epilogue activations of activation_math.h on 16 lanes, for the AVX-512 kernels: the same
// formulas, so the two vector twins agree to rounding. Include only from *_avx512.cpp files
// (compiled with AVX-512 F/BW/DQ/VL); the functions take and return __m512, so they never
// collide with the AVX2 versions at link time.
#pragma once

#include <immintrin.h>

#include "duet/kernels/gemm.h"

namespace duet::kernels::act_math512 {

// e^x with x clamped to [-87.3, 88.37]: Cody-Waite reduction and a degree-7 Taylor polynomial,
// as exp_ps in activation_math.h.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.37f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i e =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// erfc(z) for z >= 0, the Numerical Recipes fit of erfc_nonneg_ps in activation_math.h.
inline __m512 erfc_nonneg_ps(__m512 z) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), one));
  __m512 p = _mm512_set1_ps(0.17087277f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
  const __m512 zz = _mm512_mul_ps(z, z);
  const __m512 zz_lo = _mm512_fmsub_ps(z, z, zz);
  const __m512 head = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), zz));
  return _mm512_mul_ps(_mm512_mul_ps(t, head), exp_ps(_mm512_sub_ps(p, zz_lo)));
}

inline __m512 silu_ps(__m512 x) {
  const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// gelu(x) = x/2 * erfc(-x/sqrt2), erfc(-z) = 2 - erfc(z) on the positive side.
inline __m512 gelu_ps(__m512 x) {
  const __m512 a = _mm512_abs_ps(x);
  const __m512 e = erfc_nonneg_ps(_mm512_mul_ps(a, _mm512_set1_ps(0.70710678f)));
  const __mmask16 negative = _mm512_movepi32_mask(_mm512_castps_si512(x));  // sign bits
  const __m512 cdf2 = _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(2.0f), e), e);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), cdf2);
}

// max(0, x) with NaN passing through, as act_math::relu.
inline __m512 relu_ps(__m512 x) {
  return _mm512_max_ps(_mm512_setzero_ps(), x);
}

inline __m512 activate_ps(Activation act, __m512 y) {
  switch (act) {
    case Activation::none:
      return y;
    case Activation::relu:
      return relu_ps(y);
    case Activation::silu:
      return silu_ps(y);
    case Activation::gelu:
      return gelu_ps(y);
  }
  return y;
}

}  // namespace duet::kernels::act_math512
