// Reference activations: one element at a time in double, with relu/silu/gelu taken from the
// shared scalar definition in gemm.h so every kernel agrees on what "gelu" means.
#include <cmath>

#include "duet/kernels/activation.h"
#include "duet/kernels/gemm.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {
namespace {

double sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

float forward_one(ActFn act, float v) {
  switch (act) {
    case ActFn::relu:
      return apply_activation(Activation::relu, v);
    case ActFn::silu:
      return apply_activation(Activation::silu, v);
    case ActFn::gelu:
      return apply_activation(Activation::gelu, v);
    case ActFn::sigmoid:
      return static_cast<float>(sigmoid(v));
    case ActFn::tanh:
      return static_cast<float>(std::tanh(double(v)));
  }
  return v;
}

double derivative(ActFn act, double v) {
  switch (act) {
    case ActFn::relu:
      return v > 0 ? 1.0 : 0.0;
    case ActFn::silu: {
      const double s = sigmoid(v);
      return s * (1 + v * (1 - s));
    }
    case ActFn::gelu: {
      const double pi = 3.14159265358979323846;
      return 0.5 * (1 + std::erf(v / std::sqrt(2.0))) +
             v * std::exp(-0.5 * v * v) / std::sqrt(2 * pi);
    }
    case ActFn::sigmoid: {
      const double s = sigmoid(v);
      return s * (1 - s);
    }
    case ActFn::tanh: {
      const double t = std::tanh(v);
      return 1 - t * t;
    }
  }
  return 0;
}

}  // namespace

void activation_forward(ActFn act, int64_t n, const float* x, float* y) {
  DUET_CHECK(n >= 0, "activation_forward: negative element count ", n);
  for (int64_t i = 0; i < n; ++i) y[i] = forward_one(act, x[i]);
}

// Ignores y on purpose: the derivative from x alone is the definition the fast path must match.
void activation_backward(ActFn act, int64_t n, const float* x, const float* /*y*/, const float* dy,
                         float* dx) {
  DUET_CHECK(n >= 0, "activation_backward: negative element count ", n);
  for (int64_t i = 0; i < n; ++i) dx[i] = static_cast<float>(dy[i] * derivative(act, x[i]));
}

}  // namespace duet::kernels::ref
