// The standard layers, with PyTorch's parameter names, shapes and default initialisation
// (kaiming-uniform with a = sqrt(5) for conv/linear weights, U(-1/sqrt(fan_in), +) for biases),
// drawn from a duet::Generator so that a seed fixes the whole model.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "duet/nn/module.h"
#include "duet/ops/conv.h"
#include "duet/ops/norm.h"
#include "duet/tensor/rng.h"

namespace duet::nn {

// What a convolution can run in place of its float weights at inference: compress/ plugs int8
// kernels in this way (compress/generator_int8.h). It has no backward.
class InferenceConv {
 public:
  virtual ~InferenceConv() = default;
  virtual Tensor forward(const Tensor& x) const = 0;
  // Channel-blocked output (ops/blocked.h) from a blocked or channel-major x, plus `residual`
  // (blocked like the output, or undefined) added in the store.
  virtual Tensor forward_blocked(const Tensor& x, const Tensor& residual) const = 0;
};

class Conv2d : public Module {
 public:
  Conv2d(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t kernel,
         const ops::Conv2dOptions& options = {}, bool bias = true);
  // With `inference` set: eval mode and no gradients only (Error otherwise), and the stand-in
  // computes the output. A channel-blocked x (ops/blocked.h; groups 1) gives a blocked output.
  Tensor forward(const Tensor& x) override;
  // A channel-blocked output from a blocked or channel-major x (groups 1), with `residual`
  // (blocked like the output, or undefined) added in the store: ops::conv2d_blocked, or the
  // stand-in's blocked form.
  Tensor forward_blocked(const Tensor& x, const Tensor& residual = Tensor());
  const ops::Conv2dOptions& options() const { return options_; }
  Tensor& weight;
  Tensor* bias;  // null when built without bias

  std::shared_ptr<const InferenceConv> inference;
  // Calibration: when set, called with every input before the convolution runs.
  std::function<void(const Tensor&)> on_input;

 private:
  ops::Conv2dOptions options_;
};

class Linear : public Module {
 public:
  Linear(Generator& gen, int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor& weight;
  Tensor* bias;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  // x channel-major or channel-blocked (ops/blocked.h); the output has x's layout.
  Tensor forward(const Tensor& x) override;
  // relu?(bn(x) + residual) as one op (ops::BatchNormTail): a residual block's tail.
  Tensor forward(const Tensor& x, const ops::BatchNormTail& tail);
  // After a load: Error when a running variance is negative (a square root of it follows).
  void state_changed() override;
  Tensor& weight;
  Tensor& bias;
  Tensor& running_mean;
  Tensor& running_var;
  Tensor& num_batches_tracked;  // int64 scalar, as in PyTorch's state_dict
  float eps, momentum;
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t groups, int64_t channels, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;
  // act(group_norm(x)) as one op (ops::group_norm's act): a UNet block's norm + SiLU.
  Tensor forward(const Tensor& x, ops::NormActivation act);
  Tensor& weight;
  Tensor& bias;
  int64_t groups;
  float eps;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t features, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;
  Tensor& weight;
  Tensor& bias;
  float eps;
};

class Embedding : public Module {
 public:
  Embedding(Generator& gen, int64_t count, int64_t dim);  // weights ~ N(0, 1) like PyTorch
  Tensor forward(const Tensor& indices) override;         // int32 indices
  Tensor& weight;
};

class Dropout : public Module {
 public:
  // The mask generator is seeded from `gen` at construction, so a model seed fixes it too.
  Dropout(Generator& gen, float p);
  Tensor forward(const Tensor& x) override;
  float p;
  Generator& generator() { return gen_; }

 private:
  Generator gen_;
};

enum class ActivationKind { relu, silu, gelu, sigmoid, tanh, identity };

// A parameter-free pointwise activation (ReLU, SiLU, GELU, Sigmoid, Tanh, Identity).
class Activation : public Module {
 public:
  explicit Activation(ActivationKind kind);
  Tensor forward(const Tensor& x) override;
  ActivationKind kind;
};

// [N, ...] -> [N, rest] (PyTorch's nn.Flatten with start_dim 1).
class Flatten : public Module {
 public:
  Flatten() : Module("Flatten") {}
  Tensor forward(const Tensor& x) override;
};

// Children named "0", "1", ... applied in order, like torch.nn.Sequential.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return children().size(); }
};

}  // namespace duet::nn
