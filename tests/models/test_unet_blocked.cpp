// A UNet in training mode, or sampling 64 images or more, runs on channel-blocked activations
// (ops/blocked.h) where the CPU has AVX2 and every level's width is a multiple of 16. The same step
// channel-major and blocked must agree: the prediction and every parameter's gradient, from
// identical weights and inputs. The small config below has every part of the full one: two levels,
// the skip concatenations, the up- and downsampling, attention at the coarse level and in the
// middle, 1x1 skips, groups that share a block (4 channels each), and a 3-channel image.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../harness/tensor_compare.h"
#include "duet/autograd/autograd.h"
#include "duet/models/unet.h"
#include "duet/ops/blocked.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/reduce.h"

using namespace duet;
using duet::test::relative_error;

namespace {

models::UNetConfig small_config() {
  models::UNetConfig c;
  c.in_channels = 3;
  c.image_size = 8;
  c.channels = {16, 32};
  c.blocks_down = 1;
  c.blocks_up = 2;
  c.attention_levels = {1};
  c.heads = 2;
  c.embed_dim = 32;
  c.groups = 4;
  return c;
}

struct StepResult {
  Tensor prediction;
  std::map<std::string, Tensor> grads;
  bool blocked = false;
};

StepResult train_step(bool blocked) {
  ops::set_blocked_training(blocked);
  Generator gen(3);
  models::UNet unet(gen, small_config());
  // The output conv starts at zero, which would stop every gradient behind it.
  Generator init(4);
  for (auto& [name, p] : unet.named_parameters())
    if (name.rfind("conv_out.", 0) == 0) {
      const Tensor v = Tensor::normal(p->shape(), init, 0.0f, 0.1f);
      std::copy_n(v.data<float>(), v.numel(), p->data<float>());
    }
  unet.train();
  Generator data(8);
  const Tensor x = Tensor::normal({5, 3, 8, 8}, data);
  const Tensor t = Tensor::from_vector(std::vector<float>{0.1f, 0.3f, 0.5f, 0.7f, 0.9f}, Shape{5});
  const Tensor y = Tensor::from_vector(std::vector<int32_t>{0, 3, 10, 7, 1}, Shape{5});
  const Tensor w = Tensor::normal({5, 3, 8, 8}, data);
  StepResult r;
  r.blocked = unet.trains_blocked();
  r.prediction = unet.forward(x, t, y);
  autograd::backward(ops::sum_all(ops::mul(r.prediction, w)));
  for (auto& [name, p] : unet.named_parameters()) r.grads[name] = autograd::grad(*p).clone();
  ops::set_blocked_training(true);
  return r;
}

}  // namespace

TEST(UNetBlocked, TrainingStepMatchesTheChannelMajorStep) {
  ops::set_blocked_training(true);
  if (!ops::use_blocked_training()) GTEST_SKIP() << "no AVX2: training stays channel-major";
  const StepResult plain = train_step(false), blocked = train_step(true);
  ASSERT_FALSE(plain.blocked);
  ASSERT_TRUE(blocked.blocked);
  ASSERT_EQ(blocked.prediction.shape(), plain.prediction.shape());
  EXPECT_LE(relative_error(blocked.prediction, plain.prediction), 1e-4);
  ASSERT_EQ(blocked.grads.size(), plain.grads.size());
  for (const auto& [name, g] : plain.grads) {
    ASSERT_TRUE(g.defined()) << name;
    EXPECT_LE(relative_error(blocked.grads.at(name), g), 1e-3) << name;
  }
}

TEST(UNetBlocked, WidthsThatAreNotWholeBlocksTrainChannelMajor) {
  ops::set_blocked_training(true);
  models::UNetConfig c = small_config();
  c.channels = {8, 16};
  Generator gen(1);
  models::UNet unet(gen, c);
  unet.train();
  EXPECT_FALSE(unet.trains_blocked());
  unet.eval();
  c.channels = {16, 32};
  models::UNet whole(gen, c);
  whole.eval();
  EXPECT_FALSE(whole.trains_blocked());  // evaluation and sampling are not training
  autograd::NoGradGuard no_grad;
  EXPECT_FALSE(whole.samples_blocked(models::UNet::kBlockedSamplingMinBatch - 1));
  EXPECT_EQ(whole.samples_blocked(models::UNet::kBlockedSamplingMinBatch),
            ops::use_blocked_training());
  EXPECT_FALSE(unet.samples_blocked(models::UNet::kBlockedSamplingMinBatch));  // widths 8, 16
}

// Sampling a large batch runs the blocked layers instead of the fused channel-major ones; the
// predictions must agree (CFG doubles the batch the network sees, so 64 is 32 samples).
TEST(UNetBlocked, LargeSamplingBatchesMatchTheChannelMajorPrediction) {
  ops::set_blocked_training(true);
  if (!ops::use_blocked_training()) GTEST_SKIP() << "no AVX2: sampling stays channel-major";
  Generator gen(3);
  models::UNet unet(gen, small_config());
  Generator init(4);  // a non-zero output conv, as in the training test
  for (auto& [name, p] : unet.named_parameters())
    if (name.rfind("conv_out.", 0) == 0) {
      const Tensor v = Tensor::normal(p->shape(), init, 0.0f, 0.1f);
      std::copy_n(v.data<float>(), v.numel(), p->data<float>());
    }
  unet.eval();
  autograd::NoGradGuard no_grad;
  const int64_t n = models::UNet::kBlockedSamplingMinBatch;
  Generator data(8);
  const Tensor x = Tensor::normal({n, 3, 8, 8}, data);
  const Tensor t = Tensor::uniform({n}, data);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[size_t(i)] = int32_t(i % 11);  // 10: the null class
  const Tensor y = Tensor::from_vector(labels, Shape{n});
  ASSERT_TRUE(unet.samples_blocked(n));
  const Tensor blocked = unet.forward(x, t, y);
  ops::set_blocked_training(false);
  ASSERT_FALSE(unet.samples_blocked(n));
  const Tensor plain = unet.forward(x, t, y);
  ops::set_blocked_training(true);
  ASSERT_EQ(blocked.shape(), plain.shape());
  EXPECT_LE(relative_error(blocked, plain), 1e-4);
}
