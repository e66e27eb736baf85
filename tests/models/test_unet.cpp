// The generator's UNet against its PyTorch twin (tests/golden/make_unet_golden.py): forward output,
// input gradient and every parameter gradient of a small UNet with attention in a level and in the
// middle; parameter counts of the presets against the twin's; config validation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "../harness/tensor_compare.h"
#include "duet/autograd/autograd.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/registry.h"
#include "duet/models/unet.h"
#include "duet/tensor/error.h"

using namespace duet;

namespace {

using duet::test::max_abs_diff;

const std::string kGolden = std::string(DUET_SOURCE_DIR) + "/tests/golden/unet_golden.safetensors";

std::string error_of(const nlohmann::json& config) {
  try {
    Generator gen(0);
    models::build_model(config, gen);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The golden file's UNet (its config and weights); a weight the file lacks fails the test.
std::unique_ptr<models::UNet> golden_unet(const std::map<std::string, Tensor>& g) {
  const auto meta = io::SafetensorsFile::load(kGolden).metadata();
  const auto config = models::UNetConfig::from_json(nlohmann::json::parse(meta.at("config")));
  Generator gen(1);
  auto model = std::make_unique<models::UNet>(gen, config);
  std::map<std::string, Tensor> state;
  for (auto& [key, value] : model->state_dict()) {
    if (!g.count(key)) ADD_FAILURE() << "golden file lacks " << key;
    state[key] = g.count(key) ? g.at(key) : value;
  }
  model->load_state_dict(state);
  return model;
}

}  // namespace

TEST(UNet, MatchesPyTorchForwardAndBackward) {
  auto g = io::load_tensors(kGolden);
  auto built = golden_unet(g);
  models::UNet& model = *built;

  Tensor x = g.at("input").clone();
  autograd::set_requires_grad(x);
  std::vector<int32_t> labels;
  for (int64_t v : std::span(g.at("y").data<int64_t>(), 3)) labels.push_back(int32_t(v));
  Tensor y = Tensor::from_vector(labels, Shape{3});
  Tensor out = model.forward(x, g.at("t"), y);
  EXPECT_LE(max_abs_diff(out, g.at("output")), 1e-4);
  autograd::backward(out, g.at("grad_output"));
  EXPECT_LE(max_abs_diff(autograd::grad(x), g.at("grad.input")), 1e-4);
  int checked = 0;
  for (auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(autograd::grad(*p).defined()) << name;
    EXPECT_LE(max_abs_diff(autograd::grad(*p), g.at("grad." + name)), 1e-4) << name;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(model.named_parameters().size()));
  EXPECT_GT(checked, 40);
}

// Without gradients (sampling) each residual block runs as two fused ops (ops/conv_fused.h):
// the same output, against PyTorch and against the layer-by-layer forward.
TEST(UNet, FusedSamplingForwardMatchesPyTorch) {
  auto g = io::load_tensors(kGolden);
  auto built = golden_unet(g);
  models::UNet& model = *built;
  std::vector<int32_t> labels;
  for (int64_t v : std::span(g.at("y").data<int64_t>(), 3)) labels.push_back(int32_t(v));
  const Tensor y = Tensor::from_vector(labels, Shape{3});
  const Tensor layered = model.forward(g.at("input"), g.at("t"), y);
  autograd::NoGradGuard no_grad;
  const Tensor fused = model.forward(g.at("input"), g.at("t"), y);
  EXPECT_LE(max_abs_diff(fused, g.at("output")), 1e-4);
  EXPECT_LE(max_abs_diff(fused, layered), 1e-5);
  EXPECT_GT(max_abs_diff(fused, Tensor::zeros(fused.shape())), 0.1);  // not a zero output
}

TEST(UNet, PresetParameterCountsMatchThePyTorchTwin) {
  // Counted by bench/peers/torch_unet.py for the same configs.
  Generator gen(0);
  EXPECT_EQ(models::build_model(models::preset_config("unet-s"), gen)->parameter_count(), 3609281);
  EXPECT_EQ(models::build_model(models::preset_config("unet-xs"), gen)->parameter_count(), 681009);
}

TEST(UNet, TimestepEmbeddingIsCosThenSin) {
  Tensor e =
      models::timestep_embedding(Tensor::from_vector(std::vector<float>{0.0f, 0.25f}, Shape{2}), 4);
  const auto v = e.to_vector();
  // t = 0: cos 0 = 1, sin 0 = 0. t = 0.25: frequencies 1 and 1/100, arguments 250 and 2.5.
  EXPECT_FLOAT_EQ(v[0], 1.0f);
  EXPECT_FLOAT_EQ(v[2], 0.0f);
  EXPECT_NEAR(v[4], std::cos(250.0), 1e-6);
  EXPECT_NEAR(v[5], std::cos(2.5), 1e-6);
  EXPECT_NEAR(v[6], std::sin(250.0), 1e-6);
  EXPECT_NEAR(v[7], std::sin(2.5), 1e-6);
}

TEST(UNet, BadConfigsNameTheField) {
  auto base = models::preset_config("unet-xs");
  auto c = base;
  c["image_size"] = 30;  // 3 levels halve twice: needs a multiple of 4
  EXPECT_NE(error_of(c).find("image_size 30"), std::string::npos) << error_of(c);
  c = base;
  c["blocks_up"] = 1;
  EXPECT_NE(error_of(c).find("blocks_up"), std::string::npos);
  c = base;
  c["channels"] = {30, 64};  // not divisible by 8 groups
  EXPECT_NE(error_of(c).find("groups"), std::string::npos);
  c = base;
  c["attention_levels"] = {5};
  EXPECT_NE(error_of(c).find("attention_levels"), std::string::npos);
  c = base;
  c["heads"] = 3;
  EXPECT_NE(error_of(c).find("heads"), std::string::npos);
}

TEST(UNet, ChecksInputShapes) {
  Generator gen(0);
  auto model = models::build_model(models::preset_config("unet-xs"), gen);
  try {
    model->forward(Tensor::zeros(Shape{1, 3, 28, 28}));
    FAIL() << "wrong channel count accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[N, 1, 28, 28]"), std::string::npos) << e.what();
  }
}
