// PyTorch golden values (tests/golden/make_golden.py, torch 1.13): a ResNet basic block (its
// norms with their fused ReLU and shortcut tails) and a GroupNorm -> SiLU -> conv block (the
// SiLU apart and fused) must match forward outputs, input gradients, every parameter gradient
// and the BatchNorm running statistics after a train-mode step.
#include <gtest/gtest.h>

#include <cmath>

#include "../harness/tensor_compare.h"
#include "duet/autograd/autograd.h"
#include "duet/io/tensor_io.h"
#include "duet/models/resnet.h"
#include "duet/nn/layers.h"
#include "duet/ops/activation.h"

using namespace duet;

namespace {

using duet::test::max_abs_diff;

std::map<std::string, Tensor> golden(const char* name) {
  return io::load_tensors(std::string(DUET_SOURCE_DIR) + "/tests/golden/" + name);
}

// Max |a - b| over all elements; shapes must match.

// Loads the module's own keys from the golden file, runs forward + backward, checks everything.
void check_block(nn::Module& block, std::map<std::string, Tensor> g, double tol) {
  std::map<std::string, Tensor> state;
  for (auto& [key, value] : block.state_dict()) {
    ASSERT_TRUE(g.count(key)) << "golden file lacks " << key;
    state[key] = g.at(key);
  }
  block.load_state_dict(state);
  block.train();
  Tensor x = g.at("input").clone();
  autograd::set_requires_grad(x);
  Tensor y = block.forward(x);
  EXPECT_LE(max_abs_diff(y, g.at("output")), tol) << "output";
  autograd::backward(y, g.at("grad_output"));
  EXPECT_LE(max_abs_diff(autograd::grad(x), g.at("grad.input")), tol) << "grad.input";
  int checked = 0;
  for (auto& [name, p] : block.named_parameters()) {
    ASSERT_TRUE(autograd::grad(*p).defined()) << name;
    EXPECT_LE(max_abs_diff(autograd::grad(*p), g.at("grad." + name)), tol) << "grad." << name;
    ++checked;
  }
  EXPECT_GT(checked, 0);
  for (auto& [name, b] : block.named_buffers()) {
    if (b->dtype() != DType::f32) continue;
    EXPECT_LE(max_abs_diff(*b, g.at("after." + name)), tol) << "after." << name;
  }
}

// The norm and the SiLU as two ops, or as one (GroupNorm::forward's act, as the UNet trains).
class GnSiluConv : public nn::Module {
 public:
  GnSiluConv(Generator& gen, bool fused) : Module("GnSiluConv"), fused_(fused) {
    norm = register_module("norm", std::make_shared<nn::GroupNorm>(4, 16));
    conv = register_module(
        "conv", std::make_shared<nn::Conv2d>(gen, 16, 8, 3, ops::Conv2dOptions{1, 1, 1, 1}));
  }
  Tensor forward(const Tensor& x) override {
    return conv->forward(fused_ ? norm->forward(x, ops::NormActivation::silu)
                                : ops::silu(norm->forward(x)));
  }
  std::shared_ptr<nn::GroupNorm> norm;
  std::shared_ptr<nn::Conv2d> conv;

 private:
  bool fused_;
};

}  // namespace

TEST(GoldenPyTorch, ResNetBasicBlockTrainStep) {
  Generator gen(1);
  models::BasicBlock block(gen, 8, 16, 2);
  auto g = golden("resnet_basic_block.safetensors");
  check_block(block, g, 1e-4);
  // The step counter PyTorch keeps in the state_dict advanced by one.
  EXPECT_EQ(*block.bn1->num_batches_tracked.data<int64_t>(),
            *g.at("after.bn1.num_batches_tracked").data<int64_t>());
}

TEST(GoldenPyTorch, GroupNormSiluConvBlock) {
  for (bool fused : {false, true}) {
    SCOPED_TRACE(fused ? "fused norm + SiLU" : "norm, then SiLU");
    Generator gen(2);
    GnSiluConv block(gen, fused);
    check_block(block, golden("gn_silu_conv_block.safetensors"), 1e-4);
  }
}
