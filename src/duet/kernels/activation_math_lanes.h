// The epilogue activations of activation_math.h, and the derivatives the AVX-512 row kernels
// need, as templates over a lane type L (Lanes8 of simd_lanes_avx2.h, Lanes16 of
// simd_lanes_avx512.h): one definition of each formula for every vector width, accurate to about
// 1e-6 relative. The AVX2 files reach them through activation_math.h's *_ps wrappers, the
// AVX-512 files instantiate them with simd::Lanes16. Templates only and no intrinsics, so an
// instantiation belongs to the one ISA whose lane type it names.
#pragma once

#include "duet/kernels/gemm.h"

namespace duet::kernels::act_math {

// e^x with x clamped to [-87.3, 88.37] so the exponent trick below stays in the normal range.
template <class L>
typename L::V exp_of(typename L::V x) {
  using V = typename L::V;
  x = L::min(L::max(x, L::set1(-87.3f)), L::set1(88.37f));
  const V n = L::round(L::mul(x, L::set1(1.44269504088896341f)));
  // r = x - n ln2 in two steps: the high part of ln2 has few bits, so n * hi is exact.
  V r = L::fnmadd(n, L::set1(0.693359375f), x);
  r = L::fnmadd(n, L::set1(-2.12194440e-4f), r);
  // Taylor series to degree 7 on |r| <= ln2/2: truncation error below 1e-8 relative.
  V p = L::set1(1.0f / 5040.0f);
  p = L::fmadd(p, r, L::set1(1.0f / 720.0f));
  p = L::fmadd(p, r, L::set1(1.0f / 120.0f));
  p = L::fmadd(p, r, L::set1(1.0f / 24.0f));
  p = L::fmadd(p, r, L::set1(1.0f / 6.0f));
  p = L::fmadd(p, r, L::set1(0.5f));
  p = L::fmadd(p, r, L::set1(1.0f));
  p = L::fmadd(p, r, L::set1(1.0f));
  return L::mul(p, L::pow2(n));
}

// erfc(z) for z >= 0 as t * exp(-z^2 + P(t)), t = 1 / (1 + z/2): the Chebyshev fit published
// in Numerical Recipes (2nd ed., sec. 6.2), fractional error below 1.2e-7 for all z >= 0.
// exp(-z^2) is taken apart from exp(P(t)) with z^2 split as hi + lo (FMA): rounding a sum of
// magnitude z^2 would otherwise cost ~1e-6 relative in the tail.
template <class L>
typename L::V erfc_nonneg_of(typename L::V z) {
  using V = typename L::V;
  const V one = L::set1(1.0f);
  const V t = L::div(one, L::fmadd(z, L::set1(0.5f), one));
  V p = L::set1(0.17087277f);
  p = L::fmadd(p, t, L::set1(-0.82215223f));
  p = L::fmadd(p, t, L::set1(1.48851587f));
  p = L::fmadd(p, t, L::set1(-1.13520398f));
  p = L::fmadd(p, t, L::set1(0.27886807f));
  p = L::fmadd(p, t, L::set1(-0.18628806f));
  p = L::fmadd(p, t, L::set1(0.09678418f));
  p = L::fmadd(p, t, L::set1(0.37409196f));
  p = L::fmadd(p, t, L::set1(1.00002368f));
  p = L::fmadd(p, t, L::set1(-1.26551223f));
  const V zz = L::mul(z, z);
  const V zz_lo = L::fmsub(z, z, zz);
  const V head = exp_of<L>(L::sub(L::zero(), zz));
  return L::mul(L::mul(t, head), exp_of<L>(L::sub(p, zz_lo)));
}

// max(0, x); a NaN passes through.
template <class L>
typename L::V relu_of(typename L::V x) {
  return L::max(L::zero(), x);
}

template <class L>
typename L::V silu_of(typename L::V x) {
  const typename L::V e = exp_of<L>(L::sub(L::zero(), x));
  return L::div(x, L::add(L::set1(1.0f), e));
}

// gelu(x) = x/2 * erfc(-x/sqrt2); erfc(-z) = 2 - erfc(z) for the positive side.
template <class L>
typename L::V gelu_of(typename L::V x) {
  using V = typename L::V;
  const V e = erfc_nonneg_of<L>(L::mul(L::abs(x), L::set1(0.70710678f)));
  const V cdf2 = L::if_sign(x, e, L::sub(L::set1(2.0f), e));  // x's sign bit picks erfc(z)
  return L::mul(L::mul(L::set1(0.5f), x), cdf2);
}

template <class L>
typename L::V sigmoid_of(typename L::V x) {
  const typename L::V one = L::set1(1.0f);
  return L::div(one, L::add(one, exp_of<L>(L::sub(L::zero(), x))));
}

// d silu / dx = s (1 + x (1 - s)), s = sigmoid(x).
template <class L>
typename L::V silu_grad_of(typename L::V x) {
  using V = typename L::V;
  const V one = L::set1(1.0f);
  const V s = sigmoid_of<L>(x);
  return L::mul(s, L::fmadd(x, L::sub(one, s), one));
}

// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
template <class L>
typename L::V gelu_grad_of(typename L::V x) {
  using V = typename L::V;
  const V e = erfc_nonneg_of<L>(L::mul(L::abs(x), L::set1(0.70710678f)));
  const V cdf = L::mul(L::set1(0.5f), L::if_sign(x, e, L::sub(L::set1(2.0f), e)));
  const V phi =
      L::mul(L::set1(0.39894228040143268f), exp_of<L>(L::mul(L::set1(-0.5f), L::mul(x, x))));
  return L::fmadd(x, phi, cdf);
}

template <class L>
typename L::V activate_of(Activation act, typename L::V y) {
  switch (act) {
    case Activation::none:
      return y;
    case Activation::relu:
      return relu_of<L>(y);
    case Activation::silu:
      return silu_of<L>(y);
    case Activation::gelu:
      return gelu_of<L>(y);
  }
  return y;
}

}  // namespace duet::kernels::act_math
