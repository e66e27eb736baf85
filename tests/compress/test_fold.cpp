// BatchNorm folding: the folding formula on hand-computed values, FusedConv against the composed
// ops (conv2d + batch_norm + add + relu), folded vs unfolded eval-mode logits for every folded
// family with non-trivial BN statistics and affine parameters, and the inference-only errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "duet/autograd/autograd.h"
#include "duet/compress/blocked_forward.h"
#include "duet/compress/fold.h"
#include "duet/compress/fused_blocks.h"
#include "duet/compress/fused_conv.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/isa.h"
#include "duet/models/registry.h"
#include "duet/models/repvgg.h"
#include "duet/ops/activation.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/norm.h"

using namespace duet;

namespace {

// max |a - b| / max(1, |b|): absolute below 1, relative for large values.
double max_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return 1e9;
  const auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i)
    m = std::max(m, std::fabs(double(va[i]) - vb[i]) / std::max(1.0, std::fabs(double(vb[i]))));
  return m;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.to_vector()) m = std::max(m, std::fabs(double(v)));
  return m;
}

// Affine parameters and running statistics away from their (1, 0, 0, 1) initial values, so a
// fold that ignored any of them would change the outputs.
void randomize_bn(nn::BatchNorm2d& bn, Generator& gen) {
  const int64_t c = bn.weight.numel();
  autograd::NoGradGuard no_grad;
  gen.uniform(bn.weight.data<float>(), c, 0.5f, 1.5f);
  gen.normal(bn.bias.data<float>(), c, 0.0f, 0.3f);
  gen.normal(bn.running_mean.data<float>(), c, 0.0f, 0.3f);
  gen.uniform(bn.running_var.data<float>(), c, 0.4f, 2.0f);
}

void randomize_all_bn(nn::Module& model, uint64_t seed) {
  Generator gen(seed);
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) randomize_bn(*bn, gen);
}

template <class T>
int count_modules(nn::Module& model) {
  int n = 0;
  for (auto& [name, m] : model.named_modules()) n += dynamic_cast<T*>(m) != nullptr;
  return n;
}

Tensor eval_logits(nn::Module& model, const Tensor& x) {
  model.eval();
  autograd::NoGradGuard no_grad;
  return model.forward(x);
}

// Folds `model` (BN statistics randomised first) and checks logits and features against it.
// Returns the folded model for further checks.
std::shared_ptr<nn::Module> check_fold(const std::string& label, nn::Module& model,
                                       const Shape& input, int expected_convs) {
  randomize_all_bn(model, 7);
  Generator gen(3);
  const Tensor x = Tensor::normal(input, gen);
  const Tensor want = eval_logits(model, x);
  EXPECT_TRUE(compress::foldable(model)) << label;
  auto folded = compress::fold_for_inference(model);
  EXPECT_FALSE(folded->is_training()) << label;
  EXPECT_EQ(count_modules<nn::BatchNorm2d>(*folded), 0) << label;
  EXPECT_EQ(count_modules<nn::Conv2d>(*folded), 0) << label;
  EXPECT_EQ(count_modules<compress::FusedConv>(*folded), expected_convs) << label;
  autograd::NoGradGuard no_grad;
  const Tensor got = folded->forward(x);
  const double err = max_error(got, want);
  EXPECT_LE(err, 1e-4) << label;
  EXPECT_GT(max_abs(want), 0.05) << label << ": logits too small for the check to mean much";
  // The folded model is a Classifier too, with the same penultimate features.
  auto* a = dynamic_cast<models::Classifier*>(&model);
  auto* b = dynamic_cast<models::Classifier*>(folded.get());
  EXPECT_TRUE(a && b) << label;
  if (a && b) {
    EXPECT_LE(max_error(b->features(x), a->features(x)), 1e-4) << label << " features";
  }
  std::printf("%s: folded vs unfolded logits max error %.2g (max |logit| %.3g), %d fused convs\n",
              label.c_str(), err, max_abs(want), count_modules<compress::FusedConv>(*folded));
  return folded;
}

std::shared_ptr<nn::Module> build(nlohmann::json config, uint64_t seed = 1) {
  Generator gen(seed);
  return models::build_model(config, gen);
}

}  // namespace

TEST(FoldBatchNorm, HandComputedValues) {
  // 1x1 conv, one channel: w = 2, b = 1; BN gamma 3, beta 0.25, mean 0.5, var 3, eps 1 so that
  // t = 3 / sqrt(4) = 1.5: w' = 3, b' = 0.25 + (1 - 0.5) * 1.5 = 1.
  Generator gen(0);
  nn::Conv2d conv(gen, 1, 1, 1, {}, true);
  conv.weight.fill(2.0f);
  conv.bias->fill(1.0f);
  nn::BatchNorm2d bn(1, 1.0f);
  bn.weight.fill(3.0f);
  bn.bias.fill(0.25f);
  bn.running_mean.fill(0.5f);
  bn.running_var.fill(3.0f);
  const auto f = compress::fold_batch_norm(conv, &bn);
  EXPECT_FLOAT_EQ(f.weight.item(), 3.0f);
  EXPECT_FLOAT_EQ(f.bias.item(), 1.0f);
  // Without BN: the conv's own weight, and a zero bias for a bias-free conv.
  nn::Conv2d plain(gen, 1, 2, 3, {}, false);
  const auto g = compress::fold_batch_norm(plain, nullptr);
  EXPECT_EQ(max_error(g.weight, plain.weight), 0.0);
  EXPECT_EQ(g.bias.to_vector(), (std::vector<float>{0.0f, 0.0f}));
}

// FusedConv (folded weights, bias, residual, ReLU in one conv call) against the composed ops,
// over strides, padding, groups (depthwise) and channel counts that hit the kernels' tails.
TEST(FusedConv, MatchesComposedOps) {
  struct Case {
    int64_t n, c, k, h, kernel, stride, pad, groups;
    bool conv_bias, residual;
    kernels::Activation act;
  };
  const Case cases[] = {
      {2, 16, 16, 10, 3, 1, 1, 1, false, true, kernels::Activation::relu},
      {3, 7, 13, 9, 3, 2, 1, 1, true, false, kernels::Activation::relu},
      {2, 16, 32, 8, 1, 2, 0, 1, false, true, kernels::Activation::none},
      {1, 24, 24, 7, 3, 1, 1, 24, false, false, kernels::Activation::none},  // depthwise
      {2, 12, 12, 6, 3, 2, 1, 12, true, true, kernels::Activation::relu},    // depthwise, s2
      {2, 3, 5, 5, 1, 1, 0, 1, true, true, kernels::Activation::relu},       // pointwise
      {1, 8, 64, 4, 3, 1, 1, 2, false, true, kernels::Activation::silu},     // grouped
  };
  Generator gen(11);
  for (const Case& tc : cases) {
    const std::string label = "C" + std::to_string(tc.c) + " K" + std::to_string(tc.k) + " k" +
                              std::to_string(tc.kernel) + " s" + std::to_string(tc.stride) + " g" +
                              std::to_string(tc.groups);
    const ops::Conv2dOptions o{tc.stride, tc.pad, 1, tc.groups};
    nn::Conv2d conv(gen, tc.c, tc.k, tc.kernel, o, tc.conv_bias);
    nn::BatchNorm2d bn(tc.k);
    randomize_bn(bn, gen);
    bn.eval();
    const Tensor x = Tensor::normal({tc.n, tc.c, tc.h, tc.h}, gen);
    autograd::NoGradGuard no_grad;
    Tensor want = bn.forward(conv.forward(x));
    Tensor residual;
    if (tc.residual) {
      residual = Tensor::normal(want.shape(), gen);
      want = ops::add(want, residual);
    }
    if (tc.act == kernels::Activation::relu) want = ops::relu(want);
    if (tc.act == kernels::Activation::silu) want = ops::silu(want);
    const auto f = compress::fold_batch_norm(conv, &bn);
    compress::FusedConv fused(f.weight, f.bias, o, tc.act);
    fused.eval();
    const Tensor got = fused.forward(x, residual);
    const double err = max_error(got, want);
    EXPECT_LE(err, 1e-5) << label;
    EXPECT_GT(max_abs(want), 0.5) << label;
  }
}

TEST(FoldForInference, CifarResNets) {
  auto r20 = build(models::preset_config("resnet20"));
  // 19 convs on the main path, 2 projection shortcuts.
  check_fold("resnet20", *r20, {4, 1, 28, 28}, 21);
  auto r32 = build(models::preset_config("resnet32"), 2);
  check_fold("resnet32", *r32, {2, 1, 28, 28}, 33);
  // RGB input, wider, other size: nothing about the fold depends on the preset.
  auto wide = build({{"family", "resnet"},
                     {"depth", 20},
                     {"width", 24},
                     {"in_channels", 3},
                     {"num_classes", 7},
                     {"image_size", 20}},
                    3);
  check_fold("resnet20 w24 rgb", *wide, {3, 3, 20, 20}, 21);
}

TEST(FoldForInference, ImageNetResNets) {
  auto r18 = build({{"family", "imagenet_resnet"}, {"depth", 18}, {"width", 16}});
  check_fold("resnet18 w16 small stem", *r18, {2, 1, 28, 28}, 20);
  // The ImageNet stem: 7x7 stride-2 conv, then the max-pool, kept between the folded layers.
  auto r18i = build({{"family", "imagenet_resnet"},
                     {"depth", 18},
                     {"width", 8},
                     {"in_channels", 3},
                     {"image_size", 64},
                     {"stem", "imagenet"}});
  check_fold("resnet18 w8 imagenet stem", *r18i, {2, 3, 64, 64}, 20);
  auto r34 = build({{"family", "imagenet_resnet"}, {"depth", 34}, {"width", 8}});
  check_fold("resnet34 w8", *r34, {2, 1, 28, 28}, 36);
}

TEST(FoldForInference, ShuffleNetV2) {
  auto net = build(models::preset_config("shufflenet_v2_x0_5"));
  // Stem + conv5, 3 stride-2 units of 5 convs, 13 stride-1 units of 3.
  check_fold("shufflenet_v2_x0_5", *net, {3, 1, 28, 28}, 2 + 3 * 5 + 13 * 3);
}

TEST(FoldForInference, RepVGGBothForms) {
  nlohmann::json config = models::preset_config("repvgg_a0");
  config["a"] = 0.25;
  config["b"] = 0.5;
  auto train_form = build(config);
  const int blocks = 1 + 2 + 4 + 14 + 1;
  auto folded = check_fold("repvgg a0 (0.25, 0.5) train form", *train_form, {2, 1, 28, 28}, blocks);
  // The deploy form (after reparameterize_repvgg) folds to the same function.
  auto deploy = models::reparameterize_repvgg(dynamic_cast<models::RepVGG&>(*train_form));
  Generator gen(3);
  const Tensor x = Tensor::normal({2, 1, 28, 28}, gen);
  auto folded_deploy = compress::fold_for_inference(*deploy);
  EXPECT_LE(max_error(eval_logits(*folded_deploy, x), eval_logits(*train_form, x)), 1e-4);
}

TEST(FoldForInference, CopiesWeights) {
  auto model = build(models::preset_config("resnet20"));
  randomize_all_bn(*model, 5);
  Generator gen(4);
  const Tensor x = Tensor::normal({2, 1, 28, 28}, gen);
  auto folded = compress::fold_for_inference(*model);
  const Tensor before = eval_logits(*folded, x);
  for (Tensor* p : model->parameters()) p->fill(0.0f);         // the original changes ...
  EXPECT_EQ(max_error(eval_logits(*folded, x), before), 0.0);  // ... the folded copy does not
  for (Tensor* p : folded->parameters()) EXPECT_FALSE(autograd::requires_grad(*p));
}

TEST(FoldForInference, InferenceOnlyErrors) {
  auto model = build(models::preset_config("resnet20"));
  auto folded = compress::fold_for_inference(*model);
  Generator gen(6);
  Tensor x = Tensor::normal({1, 1, 28, 28}, gen);
  // Training mode: no batch statistics exist any more.
  folded->train();
  EXPECT_THROW(folded->forward(x), Error);
  try {
    folded->forward(x);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inference only"), std::string::npos) << e.what();
  }
  // Gradients: an input that requires them, with grad mode on.
  folded->eval();
  autograd::set_requires_grad(x, true);
  EXPECT_THROW(folded->forward(x), Error);
  {
    autograd::NoGradGuard no_grad;  // the same call without gradients is fine
    EXPECT_EQ(folded->forward(x).shape(), (Shape{1, 10}));
  }
  // A bare FusedConv behaves the same; a wrong residual shape names both shapes.
  compress::FusedConv conv(Tensor::ones({2, 1, 3, 3}), Tensor::zeros({2}), {1, 1, 1, 1});
  EXPECT_THROW(conv.forward(Tensor::ones({1, 1, 4, 4})), Error);  // built in training mode
  conv.eval();
  autograd::NoGradGuard no_grad;
  EXPECT_EQ(conv.forward(Tensor::ones({1, 1, 4, 4})).shape(), (Shape{1, 2, 4, 4}));
  EXPECT_THROW(conv.forward(Tensor::ones({1, 1, 4, 4}), Tensor::ones({1, 2, 3, 3})), Error);
  EXPECT_THROW(conv.forward(Tensor::ones({1, 3, 4, 4})), Error);  // wrong channel count
}

TEST(FoldForInference, UnknownFamilyIsAnError) {
  auto vit = build(models::preset_config("vit_tiny_p7"));
  EXPECT_FALSE(compress::foldable(*vit));
  EXPECT_THROW(compress::fold_for_inference(*vit), Error);
  // What eval / classify run: the model itself when there is no rule, its folded form otherwise.
  EXPECT_EQ(compress::inference_model(vit), vit);
  auto r20 = build(models::preset_config("resnet20"));
  EXPECT_NE(dynamic_cast<compress::FoldedClassifier*>(compress::inference_model(r20).get()),
            nullptr);
}

// Large batches run chunk-wise (each thread takes a few images through the whole body); the
// result must not depend on it.
TEST(FoldForInference, ChunkedBatchesMatchLayerByLayer) {
  auto model = build(models::preset_config("resnet20"));
  randomize_all_bn(*model, 9);
  auto folded = compress::fold_for_inference(*model);
  auto& clf = dynamic_cast<compress::FoldedClassifier&>(*folded);
  Generator gen(8);
  const Tensor x = Tensor::normal({21, 1, 28, 28}, gen);  // 5 chunks of 4 and one of 1
  clf.chunk_images = 0;
  const Tensor whole = eval_logits(clf, x);
  clf.chunk_images = 4;
  const Tensor chunked = eval_logits(clf, x);
  EXPECT_LE(max_error(chunked, whole), 1e-6);
  EXPECT_LE(max_error(chunked, eval_logits(*model, x)), 1e-4);
}

// Bodies made of FusedConvs and basic blocks run on channel-blocked activations; the logits must
// match the channel-major run, and the families with other layers keep the channel-major path.
TEST(FoldForInference, ChannelBlockedMatchesChannelMajor) {
  Generator gen(10);
  const Tensor x = Tensor::normal({3, 3, 20, 20}, gen);
  for (int width : {16, 24}) {  // 24: blocks with empty lanes
    auto model = build({{"family", "resnet"},
                        {"depth", 20},
                        {"width", width},
                        {"in_channels", 3},
                        {"image_size", 20}},
                       4);
    randomize_all_bn(*model, 11);
    auto folded = compress::fold_for_inference(*model);
    auto& clf = dynamic_cast<compress::FoldedClassifier&>(*folded);
    EXPECT_TRUE(compress::runs_blocked(*clf.body)) << width;
    clf.channel_blocked = false;
    const Tensor major = eval_logits(clf, x);
    clf.channel_blocked = true;
    const Tensor blocked = eval_logits(clf, x);
    EXPECT_LE(max_error(blocked, major), 1e-5) << width;
    EXPECT_GT(max_abs(major), 0.05) << width;
  }
  auto shuffle = compress::fold_for_inference(*build(models::preset_config("shufflenet_v2_x0_5")));
  EXPECT_FALSE(compress::runs_blocked(*dynamic_cast<compress::FoldedClassifier&>(*shuffle).body));

  // A bare FusedConv: blocked output of a plain input, and a clear error for a wrong block count.
  compress::FusedConv conv(Tensor::ones({20, 3, 3, 3}), Tensor::zeros({20}), {1, 1, 1, 1});
  conv.eval();
  autograd::NoGradGuard no_grad;
  EXPECT_EQ(conv.forward_blocked(Tensor::ones({1, 3, 4, 4})).shape(), (Shape{1, 2, 4, 4, 16}));
  EXPECT_THROW(conv.forward_blocked(Tensor::ones({1, 2, 4, 4, 16})), Error);
}

// One FusedConv seen at batches, image sizes and switch settings that need different packed forms
// (Winograd F(4x4) from 16 tiles of 4x4, F(2x2) below, the direct kernel under 7x7 outputs and
// with Winograd off), in an order that returns to forms packed before: each call uses what its
// shape needs and matches the channel-major forward.
TEST(FoldForInference, PackedWeightsFollowTheAlgorithm) {
  Generator gen(13);
  compress::FusedConv conv(Tensor::normal({24, 16, 3, 3}, gen), Tensor::normal({24}, gen),
                           {1, 1, 1, 1}, kernels::Activation::relu);
  conv.eval();
  autograd::NoGradGuard no_grad;
  std::map<kernels::BlockedAlgo, int> calls;
  const std::pair<int64_t, int64_t> batch_size[] = {{2, 14}, {2, 4}, {4, 7},
                                                    {1, 7},  {4, 7}, {2, 14}};
  for (bool winograd : {true, false, true})
    for (const auto& [batch, size] : batch_size) {
      kernels::set_winograd(winograd);
      const Tensor x = Tensor::normal({batch, 16, size, size}, gen);
      kernels::Conv2dShape s;
      s.batch = batch;
      s.in_channels = 16;
      s.out_channels = 24;
      s.in_h = s.in_w = size;
      s.kernel_h = s.kernel_w = 3;
      s.pad_h = s.pad_w = 1;
      ++calls[kernels::blocked_algo(s)];
      const Tensor blocked = conv.forward_blocked(x);
      const Tensor want = conv.forward(x);
      Tensor got = Tensor::empty(want.shape());
      kernels::from_channel_blocked(batch, 24, size * size, blocked.data<float>(),
                                    got.data<float>());
      // Relative to the outputs' scale (about 40 here): either side may run Winograd F(4x4, 3x3),
      // whose rounding error is about 5x F(2x2)'s; a wrong packing is off by order 1.
      float scale = 0;
      for (float v : want.to_vector()) scale = std::max(scale, std::fabs(v));
      EXPECT_LE(max_error(got, want), 1e-5 * scale)
          << "batch " << batch << " size " << size << " winograd " << winograd;
    }
  kernels::set_winograd(true);
  if (kernels::isa_at_least(kernels::Isa::avx2)) {
    EXPECT_EQ(calls[kernels::BlockedAlgo::winograd4], 8);  // 14x14 at batch 2, 7x7 at batch 4
    EXPECT_EQ(calls[kernels::BlockedAlgo::winograd], 2);   // 7x7 at batch 1
    EXPECT_EQ(calls[kernels::BlockedAlgo::direct], 8);
  }
}

// The packed weights a FusedConv keeps after its first blocked call follow load_state_dict.
TEST(FoldForInference, PackedWeightsFollowLoadedState) {
  auto a = compress::fold_for_inference(*build(models::preset_config("resnet20"), 1));
  auto b = compress::fold_for_inference(*build(models::preset_config("resnet20"), 2));
  Generator gen(12);
  const Tensor x = Tensor::normal({2, 1, 28, 28}, gen);
  const Tensor before = eval_logits(*a, x), want = eval_logits(*b, x);
  EXPECT_GT(max_error(before, want), 1e-3);  // different weights, different logits
  a->load_state_dict(b->state_dict());
  EXPECT_EQ(max_error(eval_logits(*a, x), want), 0.0);
}
