#include "duet/models/resnet.h"

#include "duet/models/config_fields.h"
#include "duet/ops/blocked.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/pool.h"

namespace duet::models {

nlohmann::json ResNetConfig::to_json() const {
  nlohmann::json j = {{"family", "resnet"},
                      {"depth", depth},
                      {"width", width},
                      {"in_channels", in_channels},
                      {"num_classes", num_classes},
                      {"image_size", image_size}};
  widths.add_to_json(j);
  return j;
}

ResNetConfig ResNetConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("model config: expected a JSON object, got ", j.dump());
  ResNetConfig c;
  c.depth = config_int(j, "depth", c.depth, 8);
  c.width = config_int(j, "width", c.width, 1);
  c.in_channels = config_int(j, "in_channels", c.in_channels, 1);
  c.num_classes = config_int(j, "num_classes", c.num_classes, 2);
  c.image_size = config_int(j, "image_size", c.image_size, 4);
  if ((c.depth - 2) % 6 != 0)
    fail("model config: field 'depth' must be 6n + 2 (20, 32, 56, ...), got ", c.depth);
  c.widths = BlockWidths::from_json(j, 3, 3 * c.blocks_per_stage());
  return c;
}

BasicBlock::BasicBlock(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t stride,
                       int64_t inner_channels)
    : Module("BasicBlock") {
  if (inner_channels <= 0) inner_channels = out_channels;
  conv1 = register_module("conv1",
                          std::make_shared<nn::Conv2d>(gen, in_channels, inner_channels, 3,
                                                       ops::Conv2dOptions{stride, 1, 1, 1}, false));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(inner_channels));
  conv2 =
      register_module("conv2", std::make_shared<nn::Conv2d>(gen, inner_channels, out_channels, 3,
                                                            ops::Conv2dOptions{1, 1, 1, 1}, false));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    shortcut = register_module(
        "shortcut", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                        std::make_shared<nn::Conv2d>(gen, in_channels, out_channels, 1,
                                                     ops::Conv2dOptions{stride, 0, 1, 1}, false),
                        std::make_shared<nn::BatchNorm2d>(out_channels)}));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  // Each norm takes what follows it into the same op (ops::BatchNormTail): the ReLU, and in
  // the second the shortcut's sum and the ReLU, so neither the normalised values nor the sum
  // are ever tensors.
  const Tensor y = conv2->forward(bn1->forward(conv1->forward(x), {Tensor(), true}));
  const Tensor identity = shortcut ? shortcut->forward(x) : x;
  return bn2->forward(y, {identity, true});
}

CifarResNet::CifarResNet(Generator& gen, const ResNetConfig& config)
    : Classifier("CifarResNet"), config_(config) {
  const BlockWidths& widths = config.widths;
  const int blocks = config.blocks_per_stage();
  const int64_t w0 = widths.stage(0, config.width), w1 = widths.stage(1, config.width),
                w2 = widths.stage(2, config.width);
  conv1 =
      register_module("conv1", std::make_shared<nn::Conv2d>(gen, config.in_channels, w0, 3,
                                                            ops::Conv2dOptions{1, 1, 1, 1}, false));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(w0));
  auto stage = [&](int index, int64_t in, int64_t out, int64_t stride) {
    auto seq = std::make_shared<nn::Sequential>();
    for (int b = 0; b < blocks; ++b)
      seq->push_back(
          std::make_shared<BasicBlock>(gen, b == 0 ? in : out, out, b == 0 ? stride : 1,
                                       widths.block(index * blocks + b, static_cast<int>(out))));
    return seq;
  };
  layer1 = register_module("layer1", stage(0, w0, w0, 1));
  layer2 = register_module("layer2", stage(1, w0, w1, 2));
  layer3 = register_module("layer3", stage(2, w1, w2, 2));
  fc = register_module("fc", std::make_shared<nn::Linear>(gen, w2, config.num_classes));
}

Tensor CifarResNet::features(const Tensor& x) {
  // Training runs on channel-blocked activations from the image to the pooled features (every
  // conv, norm and shortcut takes them as they are); evaluation, calibration and guidance keep
  // the channel-major ones their hooks and callers read.
  const bool blocked = is_training() && ops::use_blocked_training();
  Tensor y = bn1->forward(conv1->forward(blocked ? ops::to_blocked(x) : x), {Tensor(), true});
  y = layer3->forward(layer2->forward(layer1->forward(y)));
  return blocked ? ops::global_avg_pool2d_blocked(y, fc->weight.dim(1)) : ops::global_avg_pool2d(y);
}

Tensor CifarResNet::logits(const Tensor& features) {
  return fc->forward(features);
}

}  // namespace duet::models
