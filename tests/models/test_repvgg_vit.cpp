// RepVGG and ViT against their PyTorch twins (tests/golden/make_models_golden_m2.py): train-mode
// logits, input and parameter gradients, BN running statistics and eval-mode logits; RepVGG's
// re-parameterisation preserves eval outputs; checkpoints of both families round-trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "duet/autograd/autograd.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/models/repvgg.h"
#include "duet/models/vit.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/reduce.h"

using namespace duet;

namespace {

const std::string kGolden = std::string(DUET_SOURCE_DIR) + "/tests/golden/models_m2.safetensors";

struct Golden {
  nlohmann::json config;
  std::map<std::string, Tensor> tensors;  // this model's entries, prefix removed

  const Tensor& at(const std::string& key) const {
    auto it = tensors.find(key);
    if (it == tensors.end()) fail("golden: no entry '", key, "'");
    return it->second;
  }
  // Entries under "<group>.", keyed by the rest of the name (state_dict keys).
  std::map<std::string, Tensor> group(const std::string& g) const {
    std::map<std::string, Tensor> out;
    for (const auto& [k, t] : tensors)
      if (k.rfind(g + ".", 0) == 0) out[k.substr(g.size() + 1)] = t;
    return out;
  }
};

Golden load_golden(const std::string& prefix) {
  const auto file = io::SafetensorsFile::load(kGolden);
  Golden g;
  g.config = nlohmann::json::parse(file.metadata().at(prefix + ".config"));
  for (auto& [k, t] : io::tensors_from_file(file))
    if (k.rfind(prefix + ".", 0) == 0) g.tensors[k.substr(prefix.size() + 1)] = t;
  return g;
}

// max |a - b| / max(1, |b|): absolute below 1, relative above (gradients reach ~8 here).
double max_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return 1e9;
  const auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i)
    m = std::max(m, std::fabs(double(va[i]) - vb[i]) / std::max(1.0, std::fabs(double(vb[i]))));
  return m;
}

std::shared_ptr<nn::Module> build_loaded(const Golden& g) {
  Generator gen(0);
  auto model = models::build_model(g.config, gen);
  model->load_state_dict(g.group("param"));  // strict: every name and shape must match
  return model;
}

// Forward/backward in train mode, then eval, each compared with PyTorch's values.
void check_against_pytorch(const std::string& prefix) {
  const Golden g = load_golden(prefix);
  auto model = build_loaded(g);
  model->train();
  Tensor x = g.at("input").clone();
  autograd::set_requires_grad(x, true);
  const Tensor logits = model->forward(x);
  const double logits_error = max_error(logits, g.at("logits_train"));
  EXPECT_LE(logits_error, 1e-4) << prefix << " train logits";
  autograd::backward(ops::sum_all(ops::mul(logits, g.at("grad_seed"))));
  const double input_grad_error = max_error(autograd::grad(x), g.at("grad.input"));
  EXPECT_LE(input_grad_error, 1e-4) << prefix << " input grad";
  double param_grad_error = 0;
  const auto grads = g.group("grad");
  int checked = 0;
  for (auto& [name, p] : model->named_parameters()) {
    ASSERT_TRUE(grads.count(name)) << name;
    const Tensor dp = autograd::grad(*p);
    ASSERT_TRUE(dp.defined()) << prefix << " no gradient reached " << name;
    const double e = max_error(dp, grads.at(name));
    param_grad_error = std::max(param_grad_error, e);
    EXPECT_LE(e, 1e-4) << prefix << " grad of " << name;
    ++checked;
  }
  EXPECT_EQ(checked + 1, static_cast<int>(grads.size()));  // + the input's
  for (auto& [name, b] : g.group("after")) {
    const auto state = model->state_dict();
    ASSERT_TRUE(state.count(name)) << name;
    if (b.dtype() == DType::f32)
      EXPECT_LE(max_error(state.at(name), b), 1e-4) << prefix << " running stat " << name;
    else
      EXPECT_EQ(*state.at(name).data<int64_t>(), *b.data<int64_t>()) << name;
  }
  model->eval();
  autograd::NoGradGuard no_grad;
  const double eval_error = max_error(model->forward(g.at("input")), g.at("logits_eval"));
  EXPECT_LE(eval_error, 1e-4) << prefix << " eval logits";
  std::printf(
      "%s vs PyTorch: train logits %.2g, input grad %.2g, %d parameter grads %.2g, eval "
      "logits %.2g\n",
      prefix.c_str(), logits_error, input_grad_error, checked, param_grad_error, eval_error);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  EXPECT_EQ(va.size(), vb.size());
  double m = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i)
    m = std::max(m, std::fabs(double(va[i]) - vb[i]));
  return m;
}

Tensor eval_logits(nn::Module& model, const Tensor& x) {
  model.eval();
  autograd::NoGradGuard no_grad;
  return model.forward(x);
}

// Saves, reloads through the stored config and checks the rebuilt model gives identical logits.
std::shared_ptr<nn::Module> round_trip(nn::Module& model, const nlohmann::json& config,
                                       const std::string& file) {
  const auto dir = std::filesystem::temp_directory_path() / "duet_test_repvgg_vit";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / file).string();
  models::save_model(path, model, config);
  auto loaded = models::load_model(path);
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.config, config);
  Generator data(5);
  Shape shape = models::input_shape(config);
  shape[0] = 2;
  const Tensor x = Tensor::normal(shape, data);
  EXPECT_EQ(eval_logits(model, x).to_vector(), eval_logits(*loaded.model, x).to_vector());
  return loaded.model;
}

}  // namespace

TEST(RepVGG, MatchesPyTorchTrainAndEval) {
  check_against_pytorch("repvgg");
}

TEST(ViT, MatchesPyTorchTrainAndEval) {
  check_against_pytorch("vit");
}

TEST(RepVGG, A0HasTheOfficialLayout) {
  Generator gen(1);
  auto model = std::dynamic_pointer_cast<models::RepVGG>(
      models::build_model(models::preset_config("repvgg_a0"), gen));
  ASSERT_TRUE(model);
  EXPECT_EQ(model->blocks().size(), 22u);  // 1 + 2 + 4 + 14 + 1
  const auto state = model->state_dict();
  for (const char* key : {"stage0.rbr_dense.conv.weight", "stage0.rbr_dense.bn.running_var",
                          "stage0.rbr_1x1.conv.weight", "stage1.1.rbr_identity.weight",
                          "stage3.13.rbr_identity.num_batches_tracked", "linear.bias"})
    EXPECT_TRUE(state.count(key)) << key;
  EXPECT_FALSE(state.count("stage0.rbr_identity.weight"));    // 1 -> 48 channels
  EXPECT_FALSE(state.count("stage1.0.rbr_identity.weight"));  // strided
  EXPECT_EQ(state.at("stage4.0.rbr_dense.conv.weight").shape(), (Shape{1280, 192, 3, 3}));
  EXPECT_EQ(model->parameter_count(), 7839818);  // the PyTorch twin's count
}

TEST(RepVGG, ReparameterisedGoldenModelKeepsEvalOutputs) {
  const Golden g = load_golden("repvgg");
  auto model = std::dynamic_pointer_cast<models::RepVGG>(build_loaded(g));
  ASSERT_TRUE(model);
  const Tensor before = eval_logits(*model, g.at("input"));
  auto fused = models::reparameterize_repvgg(*model);
  EXPECT_TRUE(fused->config().deploy);
  const auto state = fused->state_dict();
  EXPECT_TRUE(state.count("stage1.1.rbr_reparam.bias"));
  for (const auto& [k, t] : state) EXPECT_EQ(k.find("bn"), std::string::npos) << k;
  const double diff = max_abs_diff(eval_logits(*fused, g.at("input")), before);
  EXPECT_LE(diff, 1e-4);
  std::printf("reduced RepVGG: max |fused - branches| eval logits %.2g\n", diff);
  // PyTorch's eval logits use the statistics after one train step; reproduce that state too.
  model->load_state_dict(g.group("param"));
  for (auto& [k, b] : g.group("after")) model->state_dict().at(k).copy_from(b);
  auto fused_after = models::reparameterize_repvgg(*model);
  EXPECT_LE(max_abs_diff(eval_logits(*fused_after, g.at("input")), g.at("logits_eval")), 1e-4);
}

TEST(RepVGG, ReparameterisedA0KeepsEvalOutputs) {
  Generator gen(7);
  auto model = std::dynamic_pointer_cast<models::RepVGG>(
      models::build_model(models::preset_config("repvgg_a0"), gen));
  ASSERT_TRUE(model);
  // One train-mode pass with momentum 1 sets every BN's running statistics to that batch's, so
  // eval-mode activations stay normalised through the 22 blocks (and the stats differ per BN).
  for (auto& [name, m] : model->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) bn->momentum = 1.0f;
  Generator data(8);
  {
    autograd::NoGradGuard no_grad;
    model->train();
    model->forward(Tensor::normal({8, 1, 28, 28}, data));
  }
  const Tensor x = Tensor::normal({2, 1, 28, 28}, data);
  const Tensor before = eval_logits(*model, x);
  auto fused = models::reparameterize_repvgg(*model);
  const Tensor after = eval_logits(*fused, x);
  const double diff = max_abs_diff(after, before);
  EXPECT_LE(diff, 1e-4);
  double scale = 0;
  for (float v : before.to_vector()) scale = std::max(scale, double(std::fabs(v)));
  std::printf("RepVGG-A0: max |fused - branches| eval logits %.2g (max |logit| %.3g)\n", diff,
              scale);
  EXPECT_GT(scale, 1e-2);  // the comparison is not between two near-zero outputs
  EXPECT_EQ(fused->parameter_count(), 7040330);  // the PyTorch twin's deploy-form count
}

TEST(RepVGG, CheckpointRoundTripBothForms) {
  Generator gen(3);
  const auto config = models::preset_config("repvgg_a0");
  auto model = std::dynamic_pointer_cast<models::RepVGG>(models::build_model(config, gen));
  ASSERT_TRUE(model);
  round_trip(*model, config, "repvgg_a0.safetensors");
  auto fused = models::reparameterize_repvgg(*model);
  nlohmann::json fused_config = fused->config().to_json();
  fused_config["arch"] = "repvgg_a0";
  auto loaded = std::dynamic_pointer_cast<models::RepVGG>(
      round_trip(*fused, fused_config, "repvgg_a0_deploy.safetensors"));
  ASSERT_TRUE(loaded);  // a deploy=true checkpoint builds the fused form
  EXPECT_TRUE(loaded->config().deploy);
  for (const auto& b : loaded->blocks()) EXPECT_TRUE(b->rbr_reparam && !b->rbr_dense);
}

TEST(ViT, CheckpointRoundTrip) {
  Generator gen(4);
  const auto config = models::preset_config("vit_tiny_p7");
  auto model = models::build_model(config, gen);
  // The PyTorch twin's count (p4 and p7 coincide: 17 + 50 tokens/patch inputs swap roles).
  EXPECT_EQ(model->parameter_count(), 5353738);
  round_trip(*model, config, "vit_tiny_p7.safetensors");
}

TEST(ViT, InitialisationIsTruncNormal) {
  Generator gen(9);
  auto model = std::dynamic_pointer_cast<models::VisionTransformer>(
      models::build_model(models::preset_config("vit_tiny_p4"), gen));
  ASSERT_TRUE(model);
  EXPECT_EQ(model->parameter_count(), 5353738);  // the PyTorch twin's count
  const auto state = model->state_dict();
  for (const char* key : {"pos_embed", "cls_token", "blocks.3.attn.qkv.weight", "head.weight"}) {
    const auto v = state.at(key).to_vector();
    double sum2 = 0, peak = 0;
    for (float f : v) sum2 += double(f) * f, peak = std::max(peak, double(std::fabs(f)));
    EXPECT_LE(peak, 0.04) << key;  // truncated at 2 std
    if (v.size() > 1000) {
      EXPECT_NEAR(std::sqrt(sum2 / v.size()), 0.0176, 0.001) << key;
    }
  }
  // 0.02 * sqrt(1 - 2 phi(2) * 2 / (2 Phi(2) - 1)) = 0.0176, the std of N(0, 0.02) cut at 2 std.
  for (float f : state.at("blocks.0.attn.qkv.bias").to_vector()) EXPECT_EQ(f, 0.0f);
}

TEST(ModelConfig, NewFamiliesValidateFields) {
  Generator gen(0);
  auto expect_error = [&](nlohmann::json config, const std::string& needle) {
    try {
      models::build_model(config, gen);
      ADD_FAILURE() << "accepted " << config.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({{"family", "nope"}}, "repvgg");
  expect_error({{"family", "nope"}}, "vit");
  auto vit = models::preset_config("vit_tiny_p4");
  vit["image_size"] = 30;
  expect_error(vit, "'image_size'");
  vit = models::preset_config("vit_tiny_p4");
  vit["heads"] = 5;
  expect_error(vit, "'dim'");
  auto rep = models::preset_config("repvgg_a0");
  rep["blocks"] = {2, 2, 4, 14, 1};
  expect_error(rep, "'blocks'");
  rep = models::preset_config("repvgg_a0");
  rep["deploy"] = "yes";
  expect_error(rep, "'deploy'");
  rep = models::preset_config("repvgg_a0");
  rep["a"] = 0.001;
  expect_error(rep, "'a'");
}
