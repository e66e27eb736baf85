#include "duet/nn/layers.h"

#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/nn/profile.h"
#include "duet/ops/activation.h"
#include "duet/ops/blocked.h"
#include "duet/ops/embedding.h"
#include "duet/ops/linear.h"
#include "duet/ops/norm.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::nn {
namespace {

// PyTorch's default for conv and linear: kaiming_uniform_(a = sqrt(5)) gives
// bound = sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(fan_in); biases use the same bound.
Tensor uniform_fan_in(Generator& gen, const Shape& shape, int64_t fan_in) {
  const float bound = fan_in > 0 ? 1.0f / std::sqrt(static_cast<float>(fan_in)) : 0.0f;
  return Tensor::uniform(shape, gen, -bound, bound);
}

// Registers "bias" (after "weight", matching PyTorch's key order) when asked; null otherwise.
Tensor* maybe_bias(Module& m, Generator& gen, bool bias, int64_t n, int64_t fan_in) {
  return bias ? &m.register_parameter("bias", uniform_fan_in(gen, {n}, fan_in)) : nullptr;
}

}  // namespace

Conv2d::Conv2d(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t kernel,
               const ops::Conv2dOptions& options, bool with_bias)
    : Module("Conv2d"),
      weight(register_parameter(
          "weight",
          uniform_fan_in(gen, {out_channels, in_channels / options.groups, kernel, kernel},
                         in_channels / options.groups * kernel * kernel))),
      bias(nullptr),
      options_(options) {
  DUET_CHECK(in_channels > 0 && out_channels > 0 && kernel > 0,
             "Conv2d: channels and kernel must "
             "be positive (got ",
             in_channels, " -> ", out_channels, ", kernel ", kernel, ")");
  DUET_CHECK(in_channels % options.groups == 0 && out_channels % options.groups == 0,
             "Conv2d: channels ", in_channels, " -> ", out_channels, " not divisible by groups ",
             options.groups);
  bias = maybe_bias(*this, gen, with_bias, out_channels,
                    in_channels / options.groups * kernel * kernel);
}

namespace {

void check_inference_only(const Module& m, const Tensor& weight, const Tensor& x) {
  if (m.is_training() || autograd::any_requires_grad({&x}))
    fail("Conv2d ", weight.shape().str(), ": its int8 form is inference only (no backward); ",
         "call eval() and run under autograd::NoGradGuard, or train the float model");
}

// Outputs without a blocked tensor's padding lanes, times the multiply-adds of each.
double conv_macs(const Tensor& weight, const Tensor& y) {
  const double outputs = ops::is_blocked(y) ? double(y.dim(0)) * double(weight.dim(0)) *
                                                  double(y.dim(2)) * double(y.dim(3))
                                            : double(y.numel());
  return outputs * double(weight.dim(1) * weight.dim(2) * weight.dim(3));
}

}  // namespace

Tensor Conv2d::forward(const Tensor& x) {
  if (ops::is_blocked(x)) return forward_blocked(x);
  if (on_input) on_input(x);
  Tensor y;
  if (inference) {
    check_inference_only(*this, weight, x);
    y = inference->forward(x);
  } else {
    y = ops::conv2d(x, weight, bias ? *bias : Tensor(), options_);
  }
  record_layer(this, y, conv_macs(weight, y));
  return y;
}

Tensor Conv2d::forward_blocked(const Tensor& x, const Tensor& residual) {
  if (on_input) on_input(x);
  Tensor y;
  if (inference) {
    check_inference_only(*this, weight, x);
    y = inference->forward_blocked(x, residual);
  } else {
    y = ops::conv2d_blocked(x, weight, bias ? *bias : Tensor(), options_, residual);
  }
  record_layer(this, y, conv_macs(weight, y));
  return y;
}

Linear::Linear(Generator& gen, int64_t in_features, int64_t out_features, bool with_bias)
    : Module("Linear"),
      weight(register_parameter("weight",
                                uniform_fan_in(gen, {out_features, in_features}, in_features))),
      bias(nullptr) {
  bias = maybe_bias(*this, gen, with_bias, out_features, in_features);
}

Tensor Linear::forward(const Tensor& x) {
  Tensor y = ops::linear(x, weight, bias ? *bias : Tensor());
  record_layer(this, y, static_cast<double>(y.numel()) * weight.dim(1));
  return y;
}

BatchNorm2d::BatchNorm2d(int64_t channels, float eps_, float momentum_)
    : Module("BatchNorm2d"),
      weight(register_parameter("weight", Tensor::ones({channels}))),
      bias(register_parameter("bias", Tensor::zeros({channels}))),
      running_mean(register_buffer("running_mean", Tensor::zeros({channels}))),
      running_var(register_buffer("running_var", Tensor::ones({channels}))),
      num_batches_tracked(register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64))),
      eps(eps_),
      momentum(momentum_) {}

void BatchNorm2d::state_changed() {
  const float* var = running_var.data<float>();
  for (int64_t c = 0; c < running_var.numel(); ++c)
    if (var[c] < 0.0f) fail("running_var[", c, "] is ", var[c], "; a variance must be >= 0");
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return forward(x, ops::BatchNormTail{});
}

Tensor BatchNorm2d::forward(const Tensor& x, const ops::BatchNormTail& tail) {
  Tensor y = ops::is_blocked(x)
                 ? ops::batch_norm_blocked(x, weight, bias, running_mean, running_var,
                                           is_training(), momentum, eps, tail)
                 : ops::batch_norm(x, weight, bias, running_mean, running_var, is_training(),
                                   momentum, eps, tail);
  // Counted once the step ran: a call the op refuses (bad input) changes nothing.
  if (is_training()) ++*num_batches_tracked.data<int64_t>();
  record_layer(this, y, 0);
  return y;
}

GroupNorm::GroupNorm(int64_t groups_, int64_t channels, float eps_)
    : Module("GroupNorm"),
      weight(register_parameter("weight", Tensor::ones({channels}))),
      bias(register_parameter("bias", Tensor::zeros({channels}))),
      groups(groups_),
      eps(eps_) {
  DUET_CHECK(groups > 0 && channels % groups == 0, "GroupNorm: ", channels,
             " channels are not divisible into ", groups, " groups");
}

Tensor GroupNorm::forward(const Tensor& x) {
  return forward(x, ops::NormActivation::none);
}

Tensor GroupNorm::forward(const Tensor& x, ops::NormActivation act) {
  Tensor y = ops::is_blocked(x)
                 ? ops::group_norm_blocked(x, weight.dim(0), groups, weight, bias, eps, act)
                 : ops::group_norm(x, groups, weight, bias, eps, act);
  record_layer(this, y, 0);
  return y;
}

LayerNorm::LayerNorm(int64_t features, float eps_)
    : Module("LayerNorm"),
      weight(register_parameter("weight", Tensor::ones({features}))),
      bias(register_parameter("bias", Tensor::zeros({features}))),
      eps(eps_) {}

Tensor LayerNorm::forward(const Tensor& x) {
  Tensor y = ops::layer_norm(x, weight, bias, eps);
  record_layer(this, y, 0);
  return y;
}

Embedding::Embedding(Generator& gen, int64_t count, int64_t dim)
    : Module("Embedding"),
      weight(register_parameter("weight", Tensor::normal({count, dim}, gen))) {}

Tensor Embedding::forward(const Tensor& indices) {
  return ops::embedding(weight, indices);
}

Dropout::Dropout(Generator& gen, float p_)
    : Module("Dropout"), p(p_), gen_(gen.next_below(uint64_t{1} << 62)) {
  DUET_CHECK(p >= 0.0f && p < 1.0f, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  return ops::dropout(x, p, is_training(), gen_);
}

namespace {
const char* activation_name(ActivationKind k) {
  switch (k) {
    case ActivationKind::relu:
      return "ReLU";
    case ActivationKind::silu:
      return "SiLU";
    case ActivationKind::gelu:
      return "GELU";
    case ActivationKind::sigmoid:
      return "Sigmoid";
    case ActivationKind::tanh:
      return "Tanh";
    case ActivationKind::identity:
      return "Identity";
  }
  return "Activation";
}
}  // namespace

Activation::Activation(ActivationKind k) : Module(activation_name(k)), kind(k) {}

Tensor Activation::forward(const Tensor& x) {
  switch (kind) {
    case ActivationKind::relu:
      return ops::relu(x);
    case ActivationKind::silu:
      return ops::silu(x);
    case ActivationKind::gelu:
      return ops::gelu(x);
    case ActivationKind::sigmoid:
      return ops::sigmoid(x);
    case ActivationKind::tanh:
      return ops::tanh(x);
    case ActivationKind::identity:
      return x;
  }
  return x;
}

Tensor Flatten::forward(const Tensor& x) {
  return ops::flatten(x, 1);
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> m) {
  add_child(std::to_string(children().size()), std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, child] : children()) y = child->forward(y);
  return y;
}

}  // namespace duet::nn
