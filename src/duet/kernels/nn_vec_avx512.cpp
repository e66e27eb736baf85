// AVX-512 set of the nn row primitives (see nn_vec.h): the AVX2 set with the activations that
// cost arithmetic (SiLU and GELU, forward and backward) on 16 lanes, through the lane-generic
// formulas of activation_math_lanes.h. They run inside the norms' per-plane passes (a UNet's
// silu(group_norm(x)) and its backward), where the data is in L1 and the exp and division are
// the cost, so the width pays; the memory-bound rows stay on the AVX2 set.
// Called only when isa_at_least(avx512).
#include "duet/kernels/activation_math_lanes.h"
#include "duet/kernels/nn_vec.h"
#include "duet/kernels/simd_lanes_avx512.h"

namespace duet::kernels::detail {
namespace {

using L = simd::Lanes16;

// Applies op over [0, n) in 16-wide steps; the tail is one masked step, so every element goes
// through the same arithmetic.
template <class Op>
inline void map1(int64_t n, const float* x, float* y, Op&& op) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, op(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

template <class Op>
inline void map2(int64_t n, const float* a, const float* b, float* y, Op&& op) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m,
                          op(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void act_forward(ActFn act, int64_t n, const float* x, float* y) {
  switch (act) {
    case ActFn::silu:
      map1(n, x, y, [](__m512 v) { return act_math::silu_of<L>(v); });
      return;
    case ActFn::gelu:
      map1(n, x, y, [](__m512 v) { return act_math::gelu_of<L>(v); });
      return;
    case ActFn::relu:  // one max per load: memory-bound either way
    case ActFn::sigmoid:
    case ActFn::tanh:
      nn_vec_avx2().act_forward(act, n, x, y);
      return;
  }
}

void act_backward(ActFn act, int64_t n, const float* x, const float* y, const float* dy,
                  float* dx) {
  switch (act) {
    case ActFn::silu:
      map2(n, x, dy, dx,
           [](__m512 v, __m512 g) { return _mm512_mul_ps(g, act_math::silu_grad_of<L>(v)); });
      return;
    case ActFn::gelu:
      map2(n, x, dy, dx,
           [](__m512 v, __m512 g) { return _mm512_mul_ps(g, act_math::gelu_grad_of<L>(v)); });
      return;
    case ActFn::relu:
    case ActFn::sigmoid:
    case ActFn::tanh:
      nn_vec_avx2().act_backward(act, n, x, y, dy, dx);
      return;
  }
}

}  // namespace

const NnVec& nn_vec_avx512() {
  static const NnVec v = [] {
    NnVec t = nn_vec_avx2();
    t.act_forward = act_forward;
    t.act_backward = act_backward;
    return t;
  }();
  return v;
}

}  // namespace duet::kernels::detail
