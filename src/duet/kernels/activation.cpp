#include "duet/kernels/activation.h"

#include "duet/kernels/nn_vec.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {
// Below this many elements a thread hand-off costs more than the work (gelu is ~20 ns/8 lanes).
constexpr int64_t kGrain = 16384;
}  // namespace

void activation_forward(ActFn act, int64_t n, const float* x, float* y) {
  DUET_CHECK(n >= 0, "activation_forward: negative element count ", n);
  const auto& v = detail::nn_vec();
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) { v.act_forward(act, e - b, x + b, y + b); });
}

void activation_backward(ActFn act, int64_t n, const float* x, const float* y, const float* dy,
                         float* dx) {
  DUET_CHECK(n >= 0, "activation_backward: negative element count ", n);
  DUET_CHECK(x || (y && (act == ActFn::sigmoid || act == ActFn::tanh)),
             "activation_backward: this activation needs its input x");
  const auto& v = detail::nn_vec();
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    v.act_backward(act, e - b, x ? x + b : nullptr, y ? y + b : nullptr, dy + b, dx + b);
  });
}

}  // namespace duet::kernels
