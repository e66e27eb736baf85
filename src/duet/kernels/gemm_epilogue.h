// The epilogue arithmetic of gemm.h in scalar and AVX2 form, shared by the SGEMM micro-kernels
// and the convolution paths that apply the same epilogue on their own stores. Not public.
#pragma once

#include <cstdint>

#include "duet/kernels/activation_math.h"
#include "duet/kernels/gemm.h"

namespace duet::kernels::gemm_detail {

inline float activate(Activation act, float x) {
  switch (act) {
    case Activation::none:
      return x;
    case Activation::relu:
      return act_math::relu(x);
    case Activation::silu:
      return act_math::silu(x);
    case Activation::gelu:
      return act_math::gelu(x);
  }
  return x;
}

#if defined(__AVX2__) && defined(__FMA__)
// The vector twin of activate(), for the AVX2 epilogues.
inline __m256 activate_ps(Activation act, __m256 y) {
  switch (act) {
    case Activation::none:
      return y;
    case Activation::relu:
      return act_math::relu_ps(y);
    case Activation::silu:
      return act_math::silu_ps(y);
    case Activation::gelu:
      return act_math::gelu_ps(y);
  }
  return y;
}
#endif

// The epilogue for one element y at C[i, j] (global indices), in gemm.h's order.
inline float epilogue_scalar(const Epilogue& e, float y, int64_t i, int64_t j) {
  const int64_t ch = e.axis == ChannelAxis::row ? i : j;
  if (e.scale) y *= e.scale[ch];
  if (e.shift) y += e.shift[ch];
  if (e.bias) y += e.bias[ch];
  if (e.residual) y += e.residual[i * e.ld_residual + j];
  return activate(e.act, y);
}

}  // namespace duet::kernels::gemm_detail
