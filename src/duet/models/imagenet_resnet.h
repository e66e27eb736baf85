// ImageNet-style ResNets (He et al. 2016, table 1) built from basic blocks: ResNet-18 ([2,2,2,2])
// and ResNet-34 ([3,4,6,3]) at widths w, 2w, 4w, 8w, with torchvision's state_dict names
// (conv1, bn1, layer1.0.conv1, ..., layer2.0.downsample.0/.1, fc) so its checkpoints load by name.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/models/block_widths.h"
#include "duet/models/classifier.h"
#include "duet/nn/layers.h"

namespace duet::models {

struct ImageNetResNetConfig {
  int depth = 18;  // 18 or 34
  int width = 64;  // channels of the stem and the first stage
  int in_channels = 1;
  int num_classes = 10;
  int image_size = 28;
  std::string stem = "small";  // "small" or "imagenet"; see imagenet_stem.h
  BlockWidths widths{};        // explicit per-stage / per-block widths (pruned networks)

  nlohmann::json to_json() const;
  static ImageNetResNetConfig from_json(const nlohmann::json& j);  // Error naming the bad field
};

// torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN plus the shortcut ("downsample": 1x1 conv
// + BN when the shape changes), then ReLU.
class ImageNetBasicBlock : public nn::Module {
 public:
  // inner_channels: conv1's output (<= 0: out_channels; pruning narrows it).
  ImageNetBasicBlock(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t stride,
                     int64_t inner_channels = 0);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Sequential> downsample;  // null for the identity shortcut
};

class ImageNetResNet : public Classifier {
 public:
  ImageNetResNet(Generator& gen, const ImageNetResNetConfig& config);
  // forward: [N, C, H, W] -> logits [N, classes]. Features: the globally pooled layer4
  // [N, 8 * width] (its explicit width when pruned), the input of fc.
  Tensor features(const Tensor& x) override;
  Tensor logits(const Tensor& features) override;
  const ImageNetResNetConfig& config() const { return config_; }

  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::Sequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<nn::Linear> fc;

 private:
  ImageNetResNetConfig config_;
};

}  // namespace duet::models
