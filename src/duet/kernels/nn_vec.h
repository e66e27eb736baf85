// Internal to kernels/: the row-level vector primitives that the softmax, norm, loss and
// activation kernels are built from, in three sets (portable, AVX2/FMA, and AVX-512 for the
// activations) behind one table picked by active_isa(). Keeping the ISA split here lets the kernel
// files hold only the algorithm.
#pragma once

#include <cstdint>

#include "duet/kernels/activation.h"

namespace duet::kernels::detail {

struct NnVec {
  // Activations over n elements (semantics of activation.h; y may be null for backward).
  void (*act_forward)(ActFn act, int64_t n, const float* x, float* y);
  void (*act_backward)(ActFn act, int64_t n, const float* x, const float* y, const float* dy,
                       float* dx);
  float (*max)(int64_t n, const float* x);  // n >= 1
  float (*sum)(int64_t n, const float* x);
  float (*dot)(int64_t n, const float* a, const float* b);
  // sum((x - mean)^2): two-pass variance, robust when |mean| >> stddev.
  float (*sum_sq_dev)(int64_t n, const float* x, float mean);
  // y = exp(x - shift) when y is not null; returns sum(exp(x - shift)) either way.
  float (*exp_sum)(int64_t n, const float* x, float shift, float* y);
  // y = a * x + b.
  void (*affine)(int64_t n, const float* x, float a, float b, float* y);
  // *s_dy = sum(dy), *s_dyx = sum(dy * (x - shift)); the shift (a mean) avoids cancellation.
  void (*sum_dy_dyx)(int64_t n, const float* dy, const float* x, float shift, float* s_dy,
                     float* s_dyx);
  // y = x * g + b elementwise; g null means 1, b null means 0.
  void (*mul_add)(int64_t n, const float* x, const float* g, const float* b, float* y);
  // dx = a * dy + b * x + c.
  void (*affine2)(int64_t n, const float* dy, const float* x, float a, float b, float c, float* dx);
  // dx = y * (dy - s)   (softmax backward).
  void (*softmax_bwd)(int64_t n, const float* y, const float* dy, float s, float* dx);
  // dx = dy - exp(y) * s   (log-softmax backward).
  void (*log_softmax_bwd)(int64_t n, const float* y, const float* dy, float s, float* dx);
  // y = a * x + b + r (r null: no r), then max(0, .) when relu (a fused norm's tail).
  void (*affine_tail)(int64_t n, const float* x, float a, float b, const float* r, bool relu,
                      float* y);
};

const NnVec& nn_vec();  // the set for active_isa()
const NnVec& nn_vec_generic();
const NnVec& nn_vec_avx2();    // only valid to call on a CPU with AVX2+FMA
const NnVec& nn_vec_avx512();  // only valid to call on a CPU with AVX-512 F/BW/DQ/VL

}  // namespace duet::kernels::detail
