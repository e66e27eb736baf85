// The unified model (models/unified.h): it matches its PyTorch twin, its trunk is exactly the UNet
// of the same config and seed, generation through it is the UNet's, its classification reads only
// the encoder (the decoder gets no gradient from the head), the head's gradient agrees with finite
// differences, and generator_network finds the UNet in both families and nothing in a classifier.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "../harness/tensor_compare.h"
#include "../harness/tiny_unet.h"
#include "duet/autograd/autograd.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/registry.h"
#include "duet/models/unified.h"
#include "duet/ops/loss.h"
#include "duet/tensor/rng.h"

using namespace duet;

namespace {

using duet::test::max_abs_diff;

// The generator tests' tiny UNet on 8x8 images of 3 classes, with attention in the middle.
models::UNetConfig tiny_config() {
  nlohmann::json j = duet::test::tiny_unet_config(3, 8);
  j["mid_attention"] = true;
  j["heads"] = 2;
  return models::UNetConfig::from_json(j);
}

Tensor random_images(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return Tensor::normal(Shape{n, 1, 8, 8}, gen);
}

}  // namespace

// Against the PyTorch twin (tests/golden/make_unified_golden.py, bench/peers/torch_unified.py):
// logits, input gradient and every parameter gradient of a classification pass; the parameters
// PyTorch gives no gradient (the decoder) get none here either.
TEST(Unified, MatchesPyTorchClassificationForwardAndBackward) {
  const std::string path =
      std::string(DUET_SOURCE_DIR) + "/tests/golden/unified_golden.safetensors";
  auto g = io::load_tensors(path);
  const auto meta = io::SafetensorsFile::load(path).metadata();
  Generator gen(1);
  models::UnifiedNet model(gen,
                           models::UNetConfig::from_json(nlohmann::json::parse(meta.at("config"))));
  std::map<std::string, Tensor> state;
  for (auto& [key, value] : model.state_dict()) {
    ASSERT_TRUE(g.count(key)) << "golden file lacks " << key;
    state[key] = g.at(key);
  }
  model.load_state_dict(state);
  Tensor x = g.at("input").clone();
  autograd::set_requires_grad(x);
  const Tensor logits = model.forward(x);
  EXPECT_LE(max_abs_diff(logits, g.at("output")), 1e-4);
  autograd::backward(logits, g.at("grad_output"));
  EXPECT_LE(max_abs_diff(autograd::grad(x), g.at("grad.input")), 1e-4);
  int with_grad = 0, without = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor grad = autograd::grad(*p);
    if (g.count("grad." + name)) {
      ASSERT_TRUE(grad.defined()) << name;
      EXPECT_LE(max_abs_diff(grad, g.at("grad." + name)), 1e-4) << name;
      ++with_grad;
    } else {
      for (float v : grad.defined() ? grad.to_vector() : std::vector<float>{})
        ASSERT_EQ(v, 0.0f) << name << " has a gradient PyTorch does not";
      ++without;
    }
  }
  EXPECT_GT(with_grad, 30);
  EXPECT_GT(without, 10);
}

TEST(Unified, TrunkIsTheUNetOfTheSameSeed) {
  Generator g1(3), g2(3);
  models::UNet unet(g1, tiny_config());
  models::UnifiedNet unified(g2, tiny_config());
  const auto plain = unet.state_dict();
  const auto both = unified.state_dict();
  // Every UNet tensor appears under "unet." with equal values; the head adds exactly four.
  for (const auto& [name, value] : plain) {
    ASSERT_TRUE(both.count("unet." + name)) << name;
    EXPECT_EQ(value.to_vector(), both.at("unet." + name).to_vector()) << name;
  }
  EXPECT_EQ(both.size(), plain.size() + 4);
  EXPECT_TRUE(both.count("head.weight") && both.count("head.bias") &&
              both.count("head_norm.weight") && both.count("head_norm.bias"));

  // Generation through the unified model is the UNet's forward, bit for bit.
  const Tensor x = random_images(2, 9);
  const Tensor t = Tensor::from_vector(std::vector<float>{0.25f, 0.8f}, Shape{2});
  const Tensor y = Tensor::from_vector(std::vector<int32_t>{0, 3}, Shape{2});
  EXPECT_EQ(unet.forward(x, t, y).to_vector(), unified.unet().forward(x, t, y).to_vector());
}

TEST(Unified, ClassifiesFromTheEncoderAlone) {
  Generator gen(4);
  models::UnifiedNet model(gen, tiny_config());
  const Tensor x = random_images(4, 11);
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 1}, Shape{4});
  const Tensor logits = model.forward(x);
  ASSERT_EQ(logits.shape(), (Shape{4, 3}));
  EXPECT_EQ(model.features(x).shape(), (Shape{4, 16}));

  autograd::backward(ops::cross_entropy(logits, labels));
  int reached = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor g = autograd::grad(*p);
    double norm = 0;
    if (g.defined())
      for (float v : g.to_vector()) norm += std::fabs(v);
    // The up path and the output conv only generate: the head's loss must not touch them. (The
    // class embedding's "no class" row and the time MLP at t = 0 do feed the encoder.)
    const bool decoder = name.rfind("unet.up.", 0) == 0 || name.rfind("unet.conv_out", 0) == 0 ||
                         name.rfind("unet.norm_out", 0) == 0;
    if (decoder) {
      EXPECT_EQ(norm, 0.0) << name << " got a gradient from the classification head";
    } else if (norm > 0) {
      ++reached;
    }
  }
  // conv_in, the down path, the middle, the embeddings and the head all learn from the head.
  EXPECT_GE(reached, 20);
}

TEST(Unified, HeadGradientMatchesFiniteDifferences) {
  Generator gen(5);
  models::UnifiedNet model(gen, tiny_config());
  const Tensor x = random_images(3, 12);
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{2, 0, 1}, Shape{3});
  auto loss_value = [&] {
    autograd::NoGradGuard no_grad;
    return static_cast<double>(ops::cross_entropy(model.forward(x), labels).item());
  };
  autograd::backward(ops::cross_entropy(model.forward(x), labels));
  // A weight deep in the trunk (the first conv) and one of the head: the chain through the
  // encoder, the GroupNorm, the pooling and the linear layer.
  for (const char* name :
       {"unet.conv_in.weight", "unet.down.0.res.0.conv1.weight", "head.weight"}) {
    Tensor* p = nullptr;
    for (auto& [n, t] : model.named_parameters())
      if (n == name) p = t;
    ASSERT_NE(p, nullptr) << name;
    const std::vector<float> analytic = autograd::grad(*p).to_vector();
    float* w = p->data<float>();
    for (int64_t i : {int64_t{0}, p->numel() / 2, p->numel() - 1}) {
      const float keep = w[i], h = 1e-2f;
      w[i] = keep + h;
      const double up = loss_value();
      w[i] = keep - h;
      const double down = loss_value();
      w[i] = keep;
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(analytic[static_cast<size_t>(i)], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
          << name << "[" << i << "]";
    }
  }
}

TEST(Unified, GeneratorNetworkFindsTheUNet) {
  Generator gen(6);
  models::UnifiedNet unified(gen, tiny_config());
  models::UNet unet(gen, tiny_config());
  EXPECT_EQ(models::generator_network(unified), &unified.unet());
  EXPECT_EQ(models::generator_network(unet), &unet);
  const auto resnet = models::build_model(models::preset_config("resnet20"), gen);
  EXPECT_EQ(models::generator_network(*resnet), nullptr);
  // The preset builds a unified model whose UNet is unet-xs.
  nlohmann::json config = models::preset_config("unified-xs");
  EXPECT_EQ(config.at("family"), "unified");
  config.erase("family");
  nlohmann::json xs = models::preset_config("unet-xs");
  xs.erase("family");
  xs.erase("arch");
  config.erase("arch");
  EXPECT_EQ(config, xs);
}
