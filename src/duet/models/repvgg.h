// RepVGG (Ding et al. 2021): plain VGG-style stacks whose training-time blocks sum a 3x3 conv+BN,
// a 1x1 conv+BN and (stride 1, in == out) an identity BN, then ReLU; after training each block
// fuses into one 3x3 conv with bias (the "deploy" form). state_dict names follow the official code.
#pragma once

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "duet/models/classifier.h"
#include "duet/nn/layers.h"

namespace duet::models {

// Stage widths: min(64, 64a), 64a, 128a, 256a, 512b (truncated like Python's int()); blocks per
// stage, stage0 being the single stem block. Every stage's first block is strided by 2, except
// stage0 on small inputs: image_size < 64 keeps stage0 at stride 1, so 28x28 runs at
// 28 -> 28 -> 14 -> 7 -> 4 -> 2 instead of collapsing to 1x1 before the last stage.
struct RepVGGConfig {
  double a = 0.75;
  double b = 2.5;
  std::vector<int> blocks = {1, 2, 4, 14, 1};  // RepVGG-A0
  int in_channels = 1;
  int num_classes = 10;
  int image_size = 28;
  bool deploy = false;  // true: every block is the fused rbr_reparam conv

  std::array<int64_t, 5> widths() const;
  int64_t stage0_stride() const { return image_size < 64 ? 1 : 2; }

  nlohmann::json to_json() const;
  static RepVGGConfig from_json(const nlohmann::json& j);  // Error naming the bad field
};

// The official conv_bn: a bias-free conv followed by BN, as children "conv" and "bn".
class ConvBN : public nn::Module {
 public:
  ConvBN(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
         int64_t padding);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
};

class RepVGGBlock : public nn::Module {
 public:
  RepVGGBlock(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t stride,
              bool deploy);
  Tensor forward(const Tensor& x) override;

  // The 3x3 kernel [out, in, 3, 3] and bias [out] of one conv equal to the sum of the branches
  // with BN in eval mode (running statistics). Train form only.
  std::pair<Tensor, Tensor> fused_kernel_bias();

  int64_t in_channels, out_channels, stride;
  // Train form (null in the deploy form; rbr_identity is also null when stride != 1 or in != out).
  std::shared_ptr<nn::BatchNorm2d> rbr_identity;
  std::shared_ptr<ConvBN> rbr_dense, rbr_1x1;
  // Deploy form (null in the train form).
  std::shared_ptr<nn::Conv2d> rbr_reparam;
};

class RepVGG : public Classifier {
 public:
  RepVGG(Generator& gen, const RepVGGConfig& config);
  // forward: [N, C, H, W] -> logits [N, classes]. Features: the globally pooled stage4
  // [N, widths()[4]], the input of linear.
  Tensor features(const Tensor& x) override;
  Tensor logits(const Tensor& features) override;
  const RepVGGConfig& config() const { return config_; }
  // Every block in execution order (stage0 first).
  const std::vector<std::shared_ptr<RepVGGBlock>>& blocks() const { return blocks_; }

  std::shared_ptr<RepVGGBlock> stage0;
  std::shared_ptr<nn::Sequential> stage1, stage2, stage3, stage4;
  std::shared_ptr<nn::Linear> linear;

 private:
  RepVGGConfig config_;
  std::vector<std::shared_ptr<RepVGGBlock>> blocks_;
};

// Structural re-parameterisation: a new deploy-form model (config deploy = true) whose forward
// equals `model`'s in eval mode. Each block's three branches fold into one 3x3 conv with bias;
// the head is copied. `model` must be in the train form; it is not modified.
std::shared_ptr<RepVGG> reparameterize_repvgg(RepVGG& model);

}  // namespace duet::models
