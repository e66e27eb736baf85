// CIFAR-style ResNets (He et al. 2016, section 4.2): a 3x3 stem, three stages of basic blocks at
// widths w, 2w, 4w (the last two downsample by 2 with a 1x1 conv + BN shortcut), global average
// pooling and a linear head. Depth 6n + 2: resnet20 (n = 3), resnet32 (5), resnet56 (9).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "duet/models/block_widths.h"
#include "duet/models/classifier.h"
#include "duet/nn/layers.h"

namespace duet::models {

struct ResNetConfig {
  int depth = 20;
  int width = 16;
  int in_channels = 1;
  int num_classes = 10;
  int image_size = 28;
  BlockWidths widths{};  // explicit per-stage / per-block widths (pruned networks)

  int blocks_per_stage() const { return (depth - 2) / 6; }
  nlohmann::json to_json() const;
  static ResNetConfig from_json(const nlohmann::json& j);  // Error naming the bad field
};

class BasicBlock : public nn::Module {
 public:
  // inner_channels: conv1's output (<= 0: out_channels, as in the paper; pruning narrows it).
  BasicBlock(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t stride,
             int64_t inner_channels = 0);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Sequential> shortcut;  // null for the identity shortcut
};

class CifarResNet : public Classifier {
 public:
  CifarResNet(Generator& gen, const ResNetConfig& config);
  // forward: [N, C, H, W] -> logits [N, classes]. Features: the globally pooled last stage
  // [N, 4 * width] (its explicit width when pruned), the input of fc.
  Tensor features(const Tensor& x) override;
  Tensor logits(const Tensor& features) override;
  const ResNetConfig& config() const { return config_; }

  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::Sequential> layer1, layer2, layer3;
  std::shared_ptr<nn::Linear> fc;

 private:
  ResNetConfig config_;
};

}  // namespace duet::models
