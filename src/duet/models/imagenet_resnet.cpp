#include "duet/models/imagenet_resnet.h"

#include <array>

#include "duet/models/config_fields.h"
#include "duet/models/imagenet_stem.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/pool.h"

namespace duet::models {
namespace {

// Basic blocks per stage, by depth.
std::array<int, 4> stage_blocks(int depth) {
  if (depth == 18) return {2, 2, 2, 2};
  return {3, 4, 6, 3};  // 34
}

std::shared_ptr<nn::Conv2d> conv(Generator& gen, int64_t in, int64_t out, int64_t kernel,
                                 int64_t stride) {
  return std::make_shared<nn::Conv2d>(gen, in, out, kernel,
                                      ops::Conv2dOptions{stride, kernel / 2, 1, 1}, false);
}

}  // namespace

nlohmann::json ImageNetResNetConfig::to_json() const {
  nlohmann::json j = {{"family", "imagenet_resnet"},
                      {"depth", depth},
                      {"width", width},
                      {"in_channels", in_channels},
                      {"num_classes", num_classes},
                      {"image_size", image_size},
                      {"stem", stem}};
  widths.add_to_json(j);
  return j;
}

ImageNetResNetConfig ImageNetResNetConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("model config: expected a JSON object, got ", j.dump());
  ImageNetResNetConfig c;
  c.depth = config_choice<int>(j, "depth", c.depth, {18, 34});
  c.width = config_int(j, "width", c.width, 1);
  c.in_channels = config_int(j, "in_channels", c.in_channels, 1);
  c.num_classes = config_int(j, "num_classes", c.num_classes, 2);
  c.image_size = config_int(j, "image_size", c.image_size, 4);
  c.stem = config_stem(j, c.image_size);
  const auto blocks = stage_blocks(c.depth);
  c.widths = BlockWidths::from_json(j, 4, blocks[0] + blocks[1] + blocks[2] + blocks[3]);
  return c;
}

ImageNetBasicBlock::ImageNetBasicBlock(Generator& gen, int64_t in_channels, int64_t out_channels,
                                       int64_t stride, int64_t inner_channels)
    : Module("BasicBlock") {
  if (inner_channels <= 0) inner_channels = out_channels;
  conv1 = register_module("conv1", conv(gen, in_channels, inner_channels, 3, stride));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(inner_channels));
  conv2 = register_module("conv2", conv(gen, inner_channels, out_channels, 3, 1));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    downsample = register_module(
        "downsample", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                          conv(gen, in_channels, out_channels, 1, stride),
                          std::make_shared<nn::BatchNorm2d>(out_channels)}));
  }
}

Tensor ImageNetBasicBlock::forward(const Tensor& x) {
  // The norms' tails fused as in the CIFAR BasicBlock (resnet.cpp).
  const Tensor y = conv2->forward(bn1->forward(conv1->forward(x), {Tensor(), true}));
  const Tensor identity = downsample ? downsample->forward(x) : x;
  return bn2->forward(y, {identity, true});
}

ImageNetResNet::ImageNetResNet(Generator& gen, const ImageNetResNetConfig& config)
    : Classifier("ImageNetResNet"), config_(config) {
  const BlockWidths& widths = config.widths;
  std::array<int64_t, 4> w{};
  for (int s = 0; s < 4; ++s) w[s] = widths.stage(s, config.width);
  const bool imagenet = config.stem == "imagenet";
  conv1 = register_module("conv1",
                          conv(gen, config.in_channels, w[0], imagenet ? 7 : 3, imagenet ? 2 : 1));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(w[0]));
  const auto blocks = stage_blocks(config.depth);
  int first_block = 0;  // global index of the stage's first block
  auto stage = [&](int index, int64_t in, int64_t out, int64_t stride) {
    auto seq = std::make_shared<nn::Sequential>();
    for (int b = 0; b < blocks[index]; ++b)
      seq->push_back(std::make_shared<ImageNetBasicBlock>(
          gen, b == 0 ? in : out, out, b == 0 ? stride : 1,
          widths.block(first_block + b, static_cast<int>(out))));
    first_block += blocks[index];
    return seq;
  };
  layer1 = register_module("layer1", stage(0, w[0], w[0], 1));
  layer2 = register_module("layer2", stage(1, w[0], w[1], 2));
  layer3 = register_module("layer3", stage(2, w[1], w[2], 2));
  layer4 = register_module("layer4", stage(3, w[2], w[3], 2));
  fc = register_module("fc", std::make_shared<nn::Linear>(gen, w[3], config.num_classes));
}

Tensor ImageNetResNet::features(const Tensor& x) {
  Tensor y = bn1->forward(conv1->forward(x), {Tensor(), true});
  if (config_.stem == "imagenet") y = stem_max_pool(y);
  y = layer4->forward(layer3->forward(layer2->forward(layer1->forward(y))));
  return ops::global_avg_pool2d(y);
}

Tensor ImageNetResNet::logits(const Tensor& features) {
  return fc->forward(features);
}

}  // namespace duet::models
