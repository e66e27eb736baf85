#include "duet/ops/activation.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/activation.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

// One implementation for every pointwise activation: forward through the kernel, backward from
// the saved input and output (each kernel's backward reads whichever it needs).
Tensor pointwise(const Tensor& x_in, kernels::ActFn fn, const char* name) {
  detail::check_f32(x_in, name, "input");
  const Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty(x.shape());
  kernels::activation_forward(fn, x.numel(), x.data<float>(), y.data<float>());
  autograd::record(y, name, {x_in},
                   [x = autograd::detached(x), y = autograd::detached(y), fn](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dx = Tensor::empty(x.shape());
                     kernels::activation_backward(fn, x.numel(), x.data<float>(), y.data<float>(),
                                                  g.data<float>(), dx.data<float>());
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace

Tensor relu(const Tensor& x) {
  return pointwise(x, kernels::ActFn::relu, "relu");
}
Tensor silu(const Tensor& x) {
  return pointwise(x, kernels::ActFn::silu, "silu");
}
Tensor gelu(const Tensor& x) {
  return pointwise(x, kernels::ActFn::gelu, "gelu");
}
Tensor sigmoid(const Tensor& x) {
  return pointwise(x, kernels::ActFn::sigmoid, "sigmoid");
}
Tensor tanh(const Tensor& x) {
  return pointwise(x, kernels::ActFn::tanh, "tanh");
}

}  // namespace duet::ops
