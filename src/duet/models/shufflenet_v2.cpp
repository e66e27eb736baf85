#include "duet/models/shufflenet_v2.h"

#include <array>

#include "duet/models/config_fields.h"
#include "duet/models/imagenet_stem.h"
#include "duet/ops/pool.h"
#include "duet/ops/shape_ops.h"

namespace duet::models {
namespace {

// Output channels of the stem, stages 2-4 and conv5 (the paper's table 5).
std::array<int64_t, 5> stage_channels(double width_mult) {
  if (width_mult == 0.5) return {24, 48, 96, 192, 1024};
  if (width_mult == 1.0) return {24, 116, 232, 464, 1024};
  if (width_mult == 1.5) return {24, 176, 352, 704, 1024};
  return {24, 244, 488, 976, 2048};  // 2.0
}
constexpr std::array<int, 3> kStageRepeats = {4, 8, 4};

// Appends conv (no bias) + BN (+ ReLU) to `seq`: three (two) children, so the indices of the
// parameterised layers match torchvision's nn.Sequential.
void conv_bn(nn::Sequential& seq, Generator& gen, int64_t in, int64_t out, int64_t kernel,
             int64_t stride, bool depthwise, bool relu) {
  seq.push_back(std::make_shared<nn::Conv2d>(
      gen, in, out, kernel, ops::Conv2dOptions{stride, kernel / 2, 1, depthwise ? in : 1}, false));
  seq.push_back(std::make_shared<nn::BatchNorm2d>(out));
  if (relu) seq.push_back(std::make_shared<nn::Activation>(nn::ActivationKind::relu));
}

}  // namespace

nlohmann::json ShuffleNetV2Config::to_json() const {
  return {{"family", "shufflenet_v2"},  {"width_mult", width_mult}, {"in_channels", in_channels},
          {"num_classes", num_classes}, {"image_size", image_size}, {"stem", stem}};
}

ShuffleNetV2Config ShuffleNetV2Config::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("model config: expected a JSON object, got ", j.dump());
  ShuffleNetV2Config c;
  c.width_mult = config_choice<double>(j, "width_mult", c.width_mult, {0.5, 1.0, 1.5, 2.0});
  c.in_channels = config_int(j, "in_channels", c.in_channels, 1);
  c.num_classes = config_int(j, "num_classes", c.num_classes, 2);
  c.image_size = config_int(j, "image_size", c.image_size, 4);
  c.stem = config_stem(j, c.image_size);
  return c;
}

Tensor channel_shuffle(const Tensor& x, int64_t groups) {
  DUET_CHECK(x.rank() == 4 && groups >= 1 && x.dim(1) % groups == 0, "channel_shuffle: expected ",
             "[N, C, H, W] with C divisible by ", groups, ", got ", x.shape().str());
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  const Tensor grouped = ops::reshape(x, {n, groups, c / groups, h, w});
  return ops::reshape(ops::transpose(grouped, 1, 2), {n, c, h, w});  // reshape copies
}

ShuffleUnit::ShuffleUnit(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t stride)
    : Module("InvertedResidual"), stride_(stride) {
  const int64_t half = out_channels / 2;
  DUET_CHECK(out_channels % 2 == 0 && (stride == 2 || in_channels == out_channels),
             "ShuffleUnit: stride 1 needs in == out channels, even (got ", in_channels, " -> ",
             out_channels, ", stride ", stride, ")");
  if (stride > 1) {
    branch1 = register_module("branch1", std::make_shared<nn::Sequential>());
    conv_bn(*branch1, gen, in_channels, in_channels, 3, stride, true, false);
    conv_bn(*branch1, gen, in_channels, half, 1, 1, false, true);
  }
  branch2 = register_module("branch2", std::make_shared<nn::Sequential>());
  conv_bn(*branch2, gen, stride > 1 ? in_channels : half, half, 1, 1, false, true);
  conv_bn(*branch2, gen, half, half, 3, stride, true, false);
  conv_bn(*branch2, gen, half, half, 1, 1, false, true);
}

Tensor ShuffleUnit::forward(const Tensor& x) {
  Tensor out;
  if (stride_ == 1) {
    const int64_t half = x.dim(1) / 2;
    out = ops::concat(
        {ops::slice(x, 1, 0, half), branch2->forward(ops::slice(x, 1, half, 2 * half))}, 1);
  } else {
    out = ops::concat({branch1->forward(x), branch2->forward(x)}, 1);
  }
  return channel_shuffle(out, 2);
}

ShuffleNetV2::ShuffleNetV2(Generator& gen, const ShuffleNetV2Config& config)
    : Classifier("ShuffleNetV2"), config_(config) {
  const auto ch = stage_channels(config.width_mult);
  conv1 = register_module("conv1", std::make_shared<nn::Sequential>());
  conv_bn(*conv1, gen, config.in_channels, ch[0], 3, config.stem == "imagenet" ? 2 : 1, false,
          true);
  std::shared_ptr<nn::Sequential>* stages[] = {&stage2, &stage3, &stage4};
  int64_t in = ch[0];
  for (size_t s = 0; s < 3; ++s) {
    auto seq = std::make_shared<nn::Sequential>();
    for (int u = 0; u < kStageRepeats[s]; ++u)
      seq->push_back(
          std::make_shared<ShuffleUnit>(gen, u == 0 ? in : ch[s + 1], ch[s + 1], u == 0 ? 2 : 1));
    *stages[s] = register_module("stage" + std::to_string(s + 2), seq);
    in = ch[s + 1];
  }
  conv5 = register_module("conv5", std::make_shared<nn::Sequential>());
  conv_bn(*conv5, gen, in, ch[4], 1, 1, false, true);
  fc = register_module("fc", std::make_shared<nn::Linear>(gen, ch[4], config.num_classes));
}

Tensor ShuffleNetV2::features(const Tensor& x) {
  Tensor y = conv1->forward(x);
  if (config_.stem == "imagenet") y = stem_max_pool(y);
  y = conv5->forward(stage4->forward(stage3->forward(stage2->forward(y))));
  return ops::global_avg_pool2d(y);
}

Tensor ShuffleNetV2::logits(const Tensor& features) {
  return fc->forward(features);
}

}  // namespace duet::models
