// A CIFAR ResNet in training mode runs on channel-blocked activations (ops/blocked.h) where the
// CPU has AVX2. The same step channel-major and blocked must agree: logits, every parameter's
// gradient and the BatchNorms' updated running statistics, from identical weights and images.
// Widths 16 (whole blocks, the default ResNet-20) and 12 (padding lanes in every block).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "../harness/tensor_compare.h"
#include "duet/autograd/autograd.h"
#include "duet/models/registry.h"
#include "duet/ops/blocked.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/reduce.h"
#include "duet/tensor/dtype.h"

using namespace duet;
using duet::test::relative_error;

namespace {

struct StepResult {
  Tensor logits;
  std::map<std::string, Tensor> grads, buffers;
};

// One forward and backward of a fresh model (seeded) on seeded images, with the layout set.
StepResult train_step(int64_t width, bool blocked) {
  ops::set_blocked_training(blocked);
  Generator gen(5);
  auto model = models::build_model(
      {{"family", "resnet"}, {"depth", 8}, {"width", width}, {"image_size", 12}}, gen);
  model->train();
  Generator data(9);
  const Tensor x = Tensor::normal({6, 1, 12, 12}, data);
  const Tensor w = Tensor::normal({6, 10}, data);
  StepResult r;
  r.logits = model->forward(x);
  autograd::backward(ops::sum_all(ops::mul(r.logits, w)));
  for (auto& [name, p] : model->named_parameters()) r.grads[name] = autograd::grad(*p).clone();
  for (auto& [name, b] : model->named_buffers())  // the running statistics
    if (b->dtype() == DType::f32) r.buffers[name] = b->clone();
  ops::set_blocked_training(true);
  return r;
}

}  // namespace

TEST(ResNetBlocked, TrainingStepMatchesTheChannelMajorStep) {
  ops::set_blocked_training(true);
  if (!ops::use_blocked_training()) GTEST_SKIP() << "no AVX2: training stays channel-major";
  for (int64_t width : {16, 12}) {
    SCOPED_TRACE("width " + std::to_string(width));
    const StepResult plain = train_step(width, false), blocked = train_step(width, true);
    EXPECT_LE(relative_error(blocked.logits, plain.logits), 1e-4);
    ASSERT_EQ(blocked.grads.size(), plain.grads.size());
    for (const auto& [name, g] : plain.grads) {
      ASSERT_TRUE(g.defined()) << name;
      EXPECT_LE(relative_error(blocked.grads.at(name), g), 1e-3) << name;
    }
    for (const auto& [name, b] : plain.buffers)
      EXPECT_LE(relative_error(blocked.buffers.at(name), b), 1e-4) << name;
  }
}
