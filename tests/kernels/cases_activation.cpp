// activation compare cases: forward and backward of relu/silu/gelu/sigmoid/tanh, fast vs the
// double-precision twin, on lengths that hit SIMD tails (1, 5, 127, 128) and one long enough to
// be split over threads; inputs span [-10, 10] so sigmoid/tanh saturate. Perf "GFLOP/s" here
// reads as giga-elements per second (flops = element count).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/activation.h"

namespace {

using duet::kernels::ActFn;

const char* name(ActFn a) {
  switch (a) {
    case ActFn::relu:
      return "relu";
    case ActFn::silu:
      return "silu";
    case ActFn::gelu:
      return "gelu";
    case ActFn::sigmoid:
      return "sigmoid";
    case ActFn::tanh:
      return "tanh";
  }
  return "?";
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void add_activation(ActFn act, int64_t n) {
  const std::string tag = std::string(name(act)) + "/n" + std::to_string(n);
  const size_t sz = size_t(n);
  duet::test::add_kernel_case({"activation/fwd/" + tag, double(n), 1e-6, 2e-5, [=] {
                                 auto x = duet::test::random_vector(sz, 11 + n, -10.0f, 10.0f);
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(sz, kNaN);
                                   (fast ? duet::kernels::activation_forward
                                         : duet::kernels::ref::activation_forward)(act, n, x.data(),
                                                                                   out.data());
                                 };
                               }});
  // Backward twice: with the forward output y (the cheap path for sigmoid/tanh) and without.
  for (bool with_y : {true, false}) {
    duet::test::add_kernel_case(
        {"activation/bwd/" + tag + (with_y ? "/y" : "/x"), double(n), 1e-6, 2e-5, [=] {
           auto x = duet::test::random_vector(sz, 21 + n, -10.0f, 10.0f);
           auto dy = duet::test::random_vector(sz, 31 + n);
           std::vector<float> y(sz);
           duet::kernels::ref::activation_forward(act, n, x.data(), y.data());
           return [=](bool fast, std::vector<float>& out) {
             out.assign(sz, kNaN);
             (fast ? duet::kernels::activation_backward : duet::kernels::ref::activation_backward)(
                 act, n, x.data(), with_y ? y.data() : nullptr, dy.data(), out.data());
           };
         }});
  }
}

duet::test::Register reg([] {
  for (ActFn act : {ActFn::relu, ActFn::silu, ActFn::gelu, ActFn::sigmoid, ActFn::tanh})
    for (int64_t n : {1, 5, 127, 128, 1000, 100003}) add_activation(act, n);
});

}  // namespace
