#include "duet/models/repvgg.h"

#include <algorithm>
#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/models/config_fields.h"
#include "duet/ops/activation.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/pool.h"

namespace duet::models {
namespace {

constexpr int kStages = 5;
constexpr int kMaxBlocks = 64;

double get_multiplier(const nlohmann::json& j, const char* key, double fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number() || !(v.get<double>() > 0.0) || v.get<double>() > 64.0)
    fail("model config: field '", key, "' must be a width multiplier in (0, 64], got ", v.dump());
  return v.get<double>();
}

// Python's int(x) for the positive widths the official code computes.
int64_t trunc_width(double x) {
  return static_cast<int64_t>(x);
}

}  // namespace

std::array<int64_t, 5> RepVGGConfig::widths() const {
  return {std::min<int64_t>(64, trunc_width(64 * a)), trunc_width(64 * a), trunc_width(128 * a),
          trunc_width(256 * a), trunc_width(512 * b)};
}

nlohmann::json RepVGGConfig::to_json() const {
  return {{"family", "repvgg"},
          {"a", a},
          {"b", b},
          {"blocks", blocks},
          {"in_channels", in_channels},
          {"num_classes", num_classes},
          {"image_size", image_size},
          {"deploy", deploy}};
}

RepVGGConfig RepVGGConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("model config: expected a JSON object, got ", j.dump());
  RepVGGConfig c;
  c.a = get_multiplier(j, "a", c.a);
  c.b = get_multiplier(j, "b", c.b);
  if (j.contains("blocks")) {
    const auto& v = j.at("blocks");
    bool ok = v.is_array() && v.size() == kStages;
    for (size_t i = 0; ok && i < v.size(); ++i)
      ok = v[i].is_number_integer() && v[i].get<int64_t>() >= 1 &&
           v[i].get<int64_t>() <= kMaxBlocks && (i > 0 || v[i].get<int64_t>() == 1);
    if (!ok)
      fail("model config: field 'blocks' must list 5 block counts in [1, ", kMaxBlocks,
           "] with stage0 = 1 (e.g. [1, 2, 4, 14, 1]), got ", v.dump());
    c.blocks = v.get<std::vector<int>>();
  }
  c.in_channels = config_int(j, "in_channels", c.in_channels, 1);
  c.num_classes = config_int(j, "num_classes", c.num_classes, 2);
  c.image_size = config_int(j, "image_size", c.image_size, 4);
  c.deploy = config_bool(j, "deploy", c.deploy);
  for (int64_t w : c.widths())
    if (w < 1)
      fail("model config: fields 'a' = ", c.a, " and 'b' = ", c.b,
           " give a stage width below 1 (widths are 64a, 128a, 256a, 512b)");
  return c;
}

ConvBN::ConvBN(Generator& gen, int64_t in_channels, int64_t out_channels, int64_t kernel,
               int64_t stride, int64_t padding)
    : Module("ConvBN") {
  conv = register_module(
      "conv", std::make_shared<nn::Conv2d>(gen, in_channels, out_channels, kernel,
                                           ops::Conv2dOptions{stride, padding, 1, 1}, false));
  bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(out_channels));
}

Tensor ConvBN::forward(const Tensor& x) {
  return bn->forward(conv->forward(x));
}

RepVGGBlock::RepVGGBlock(Generator& gen, int64_t in_ch, int64_t out_ch, int64_t stride_,
                         bool deploy)
    : Module("RepVGGBlock"), in_channels(in_ch), out_channels(out_ch), stride(stride_) {
  if (deploy) {
    rbr_reparam = register_module(
        "rbr_reparam", std::make_shared<nn::Conv2d>(gen, in_ch, out_ch, 3,
                                                    ops::Conv2dOptions{stride, 1, 1, 1}, true));
    return;
  }
  // Registration order as in the official code, so state_dict keys list in the same order.
  if (stride == 1 && in_ch == out_ch)
    rbr_identity = register_module("rbr_identity", std::make_shared<nn::BatchNorm2d>(in_ch));
  rbr_dense =
      register_module("rbr_dense", std::make_shared<ConvBN>(gen, in_ch, out_ch, 3, stride, 1));
  rbr_1x1 = register_module("rbr_1x1", std::make_shared<ConvBN>(gen, in_ch, out_ch, 1, stride, 0));
}

Tensor RepVGGBlock::forward(const Tensor& x) {
  if (rbr_reparam) return ops::relu(rbr_reparam->forward(x));
  // Branches run in a fixed order (dense, 1x1, identity) so `duet info` lists them that way.
  const Tensor dense = rbr_dense->forward(x);
  Tensor y = ops::add(dense, rbr_1x1->forward(x));
  if (rbr_identity) y = ops::add(y, rbr_identity->forward(x));
  return ops::relu(y);
}

std::pair<Tensor, Tensor> RepVGGBlock::fused_kernel_bias() {
  DUET_CHECK(!rbr_reparam, "RepVGGBlock: already in the deploy form");
  const int64_t O = out_channels, I = in_channels;
  std::vector<double> kernel(static_cast<size_t>(O * I * 9), 0.0),
      bias(static_cast<size_t>(O), 0.0);
  // BN in eval mode is y = gamma (x - mean) / sqrt(var + eps) + beta: a per-channel scale t and
  // shift beta - mean t, which fold into the preceding (linear) branch.
  auto fold = [&](const nn::BatchNorm2d& bn, auto&& add_scaled) {
    const float *gamma = bn.weight.data<float>(), *beta = bn.bias.data<float>(),
                *mean = bn.running_mean.data<float>(), *var = bn.running_var.data<float>();
    for (int64_t o = 0; o < O; ++o) {
      const double t = gamma[o] / std::sqrt(static_cast<double>(var[o]) + bn.eps);
      add_scaled(o, t);
      bias[static_cast<size_t>(o)] += beta[o] - mean[o] * t;
    }
  };
  const float* w3 = rbr_dense->conv->weight.data<float>();
  fold(*rbr_dense->bn, [&](int64_t o, double t) {
    for (int64_t k = 0; k < I * 9; ++k)
      kernel[static_cast<size_t>(o * I * 9 + k)] += w3[o * I * 9 + k] * t;
  });
  // The 1x1 kernel and the identity sit at the centre tap (index 4) of the 3x3 window; both use
  // the same stride, and padding 0 vs 1 keeps them aligned with the 3x3 conv's centre.
  const float* w1 = rbr_1x1->conv->weight.data<float>();
  fold(*rbr_1x1->bn, [&](int64_t o, double t) {
    for (int64_t i = 0; i < I; ++i)
      kernel[static_cast<size_t>((o * I + i) * 9 + 4)] += w1[o * I + i] * t;
  });
  if (rbr_identity)
    fold(*rbr_identity,
         [&](int64_t o, double t) { kernel[static_cast<size_t>((o * I + o) * 9 + 4)] += t; });
  Tensor k = Tensor::empty({O, I, 3, 3}), b = Tensor::empty({O});
  for (size_t i = 0; i < kernel.size(); ++i) k.data<float>()[i] = static_cast<float>(kernel[i]);
  for (size_t i = 0; i < bias.size(); ++i) b.data<float>()[i] = static_cast<float>(bias[i]);
  return {k, b};
}

RepVGG::RepVGG(Generator& gen, const RepVGGConfig& config) : Classifier("RepVGG"), config_(config) {
  DUET_CHECK(config.blocks.size() == kStages && config.blocks[0] == 1,
             "RepVGG: 'blocks' must list 5 stages with stage0 = 1");
  const auto w = config.widths();
  auto add_block = [&](int64_t in, int64_t out, int64_t stride) {
    blocks_.push_back(std::make_shared<RepVGGBlock>(gen, in, out, stride, config.deploy));
    return blocks_.back();
  };
  stage0 = register_module("stage0", add_block(config.in_channels, w[0], config.stage0_stride()));
  int64_t in = w[0];
  auto stage = [&](int s) {
    auto seq = std::make_shared<nn::Sequential>();
    for (int i = 0; i < config.blocks[static_cast<size_t>(s)]; ++i) {
      seq->push_back(add_block(in, w[static_cast<size_t>(s)], i == 0 ? 2 : 1));
      in = w[static_cast<size_t>(s)];
    }
    return seq;
  };
  stage1 = register_module("stage1", stage(1));
  stage2 = register_module("stage2", stage(2));
  stage3 = register_module("stage3", stage(3));
  stage4 = register_module("stage4", stage(4));
  linear = register_module("linear", std::make_shared<nn::Linear>(gen, w[4], config.num_classes));
}

Tensor RepVGG::features(const Tensor& x) {
  Tensor y = stage0->forward(x);
  y = stage4->forward(stage3->forward(stage2->forward(stage1->forward(y))));
  return ops::global_avg_pool2d(y);
}

Tensor RepVGG::logits(const Tensor& features) {
  return linear->forward(features);
}

std::shared_ptr<RepVGG> reparameterize_repvgg(RepVGG& model) {
  DUET_CHECK(!model.config().deploy,
             "reparameterize_repvgg: the model is already in the deploy form");
  RepVGGConfig config = model.config();
  config.deploy = true;
  Generator gen(0);  // every weight is overwritten below
  auto fused = std::make_shared<RepVGG>(gen, config);
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < model.blocks().size(); ++i) {
    auto [kernel, bias] = model.blocks()[i]->fused_kernel_bias();
    const auto& conv = fused->blocks()[i]->rbr_reparam;
    conv->weight.copy_from(kernel);
    conv->bias->copy_from(bias);
  }
  fused->linear->weight.copy_from(autograd::detached(model.linear->weight));
  fused->linear->bias->copy_from(autograd::detached(*model.linear->bias));
  fused->train(model.is_training());
  return fused;
}

}  // namespace duet::models
