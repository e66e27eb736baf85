// ShuffleNetV2 (Ma et al. 2018): units that split the channels in two, transform one half with
// 1x1 / depthwise 3x3 / 1x1 convolutions, concatenate and shuffle the channels; width 0.5x-2.0x.
// state_dict names are torchvision's (conv1.0, stage2.0.branch1.0, stage2.0.branch2.0, conv5.0,
// fc).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/models/classifier.h"
#include "duet/nn/layers.h"

namespace duet::models {

struct ShuffleNetV2Config {
  double width_mult = 1.0;  // 0.5, 1.0, 1.5 or 2.0
  int in_channels = 1;
  int num_classes = 10;
  int image_size = 28;
  std::string stem = "small";  // "small" or "imagenet"; see imagenet_stem.h

  nlohmann::json to_json() const;
  static ShuffleNetV2Config from_json(const nlohmann::json& j);  // Error naming the bad field
};

// [N, C, H, W] -> [N, C, H, W] with channel g * (C / groups) + i moved to i * groups + g, so the
// next unit's split mixes channels of both branches. A reshape / transpose / reshape, so it is
// differentiable and its gradient is the inverse permutation.
Tensor channel_shuffle(const Tensor& x, int64_t groups);

// torchvision's InvertedResidual. Stride 1: the input is split in two halves, branch2 transforms
// the second. Stride 2: both branches see the whole input and each halves the resolution.
class ShuffleUnit : public nn::Module {
 public:
  ShuffleUnit(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t stride);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Sequential> branch1;  // null for stride 1
  std::shared_ptr<nn::Sequential> branch2;

 private:
  int64_t stride_;
};

class ShuffleNetV2 : public Classifier {
 public:
  ShuffleNetV2(Generator& gen, const ShuffleNetV2Config& config);
  // forward: [N, C, H, W] -> logits [N, classes]. Features: the globally pooled conv5 output
  // [N, 1024 (2048 at 2.0x)], the input of fc.
  Tensor features(const Tensor& x) override;
  Tensor logits(const Tensor& features) override;
  const ShuffleNetV2Config& config() const { return config_; }

  std::shared_ptr<nn::Sequential> conv1, stage2, stage3, stage4, conv5;
  std::shared_ptr<nn::Linear> fc;

 private:
  ShuffleNetV2Config config_;
};

}  // namespace duet::models
