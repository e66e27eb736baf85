// Module bookkeeping: PyTorch state_dict names, strict loading errors, train/eval propagation,
// layers' parameter shapes and default initialisation bounds, and the norm tails' input checks.
#include <gtest/gtest.h>

#include <cmath>

#include "duet/autograd/autograd.h"
#include "duet/models/resnet.h"
#include "duet/nn/layers.h"

using namespace duet;

TEST(Module, ResNetStateDictKeysMatchPyTorch) {
  Generator gen(0);
  models::CifarResNet net(gen, models::ResNetConfig{});
  auto sd = net.state_dict();
  for (const char* key :
       {"conv1.weight", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
        "layer1.2.bn2.bias", "layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.running_mean",
        "layer3.2.conv2.weight", "fc.weight", "fc.bias"})
    EXPECT_TRUE(sd.count(key)) << key;
  EXPECT_FALSE(sd.count("layer1.0.shortcut.0.weight"));  // identity shortcut in stage 1
  // ResNet-20 for 1 input channel and 10 classes, with 1x1-conv projection shortcuts.
  EXPECT_EQ(net.parameter_count(), 272186);  // counted by hand, layer by layer
  EXPECT_EQ(sd.at("layer2.0.conv1.weight").shape(), Shape({32, 16, 3, 3}));
}

TEST(Module, LoadStateDictIsStrictAndNamesTheKey) {
  Generator gen(0);
  nn::Linear lin(gen, 3, 2);
  std::map<std::string, Tensor> sd{{"weight", Tensor::ones({2, 3})}, {"bias", Tensor::zeros({2})}};
  lin.load_state_dict(sd);
  EXPECT_EQ(lin.weight.to_vector(), std::vector<float>(6, 1.0f));
  sd["bias"] = Tensor::zeros({3});
  try {
    lin.load_state_dict(sd);
    FAIL() << "shape mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bias'"), std::string::npos) << e.what();
  }
  sd.erase("bias");
  EXPECT_THROW(lin.load_state_dict(sd), Error);
  sd["bias"] = Tensor::zeros({2});
  sd["extra"] = Tensor::zeros({1});
  EXPECT_THROW(lin.load_state_dict(sd), Error);
  EXPECT_NO_THROW(lin.load_state_dict(sd, false));
}

// Values that would turn every later result into NaN are refused at load, naming the key (or
// the module): NaN and infinity anywhere, a negative running variance.
TEST(Module, LoadStateDictRefusesNonFiniteValuesAndNegativeVariances) {
  Generator gen(0);
  models::CifarResNet net(gen, models::ResNetConfig{});
  const auto good = net.state_dict();
  auto expect_error = [&](std::map<std::string, Tensor> sd, const std::string& needle) {
    try {
      net.load_state_dict(sd);
      ADD_FAILURE() << "accepted; expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    auto sd = good;
    Tensor w = sd.at("layer2.0.conv1.weight").clone();
    w.data<float>()[5] = bad;
    sd["layer2.0.conv1.weight"] = w;
    expect_error(sd, "'layer2.0.conv1.weight' holds NaN or infinity (element 5)");
  }
  auto sd = good;
  Tensor var = sd.at("layer1.1.bn2.running_var").clone();
  var.data<float>()[3] = -0.5f;
  sd["layer1.1.bn2.running_var"] = var;
  expect_error(sd, "module 'layer1.1.bn2': running_var[3] is -0.5");
  var.data<float>()[3] = 0.0f;  // a zero variance is legal (eps keeps the division finite)
  sd["layer1.1.bn2.running_var"] = var;
  EXPECT_NO_THROW(net.load_state_dict(sd));
}

TEST(Module, TrainEvalPropagatesAndInitBoundsFollowFanIn) {
  Generator gen(3);
  nn::Sequential seq(
      {std::make_shared<nn::Conv2d>(gen, 4, 8, 3), std::make_shared<nn::BatchNorm2d>(8)});
  seq.eval();
  for (auto& [name, m] : seq.named_modules()) EXPECT_FALSE(m->is_training()) << name;
  seq.train();
  for (auto& [name, m] : seq.named_modules()) EXPECT_TRUE(m->is_training()) << name;
  auto* conv = static_cast<nn::Conv2d*>(seq.children()[0].second.get());
  const float bound = 1.0f / std::sqrt(4.0f * 9.0f);
  float max_abs = 0;
  for (float v : conv->weight.to_vector()) max_abs = std::max(max_abs, std::fabs(v));
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.8f * bound);
  EXPECT_TRUE(autograd::requires_grad(conv->weight));
  EXPECT_EQ(seq.named_parameters()[0].first, "0.weight");
}

TEST(Module, BatchNormTailRejectsAResidualOfAnotherShape) {
  nn::BatchNorm2d bn(3);
  const Tensor x = Tensor::ones({2, 3, 4, 4});
  try {
    bn.forward(x, {Tensor::ones({2, 3, 4, 5}), true});
    FAIL() << "a residual of another shape was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("residual must have the input's shape"), std::string::npos)
        << e.what();
  }
  // A refused call changes nothing: the step counter did not move.
  EXPECT_EQ(*bn.num_batches_tracked.data<int64_t>(), 0);
}
