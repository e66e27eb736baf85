// Quantisation-aware training (compress/qat.h, train/qat_run.h): the twin starts as exactly the
// post-training int8 model, its float forward matches the exported int8 model's logits after
// training steps (train what you deploy), gradients reach every parameter, EMA ranges move as
// specified, and a `--qat-from` run writes int8 checkpoints, resumes bit-identically and refuses
// a changed source file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "../harness/error_capture.h"
#include "../train/run_fixtures.h"
#include "duet/autograd/autograd.h"
#include "duet/compress/qat.h"
#include "duet/compress/quantize.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/nn/layers.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/train/qat_run.h"

using namespace duet;

namespace {

nlohmann::json small_config(const std::string& arch) {
  nlohmann::json c = models::preset_config(arch);
  if (arch == "resnet20") {
    c["depth"] = 8;
    c["width"] = 8;
  }
  c["preprocess"] = {{"mean", {0.25}}, {"std", {0.5}}};
  return c;
}

// BatchNorm statistics and affine parameters away from their initial values, so folding matters.
std::shared_ptr<nn::Module> trained_looking(const nlohmann::json& config, uint64_t seed) {
  Generator gen(seed);
  auto model = models::build_model(config, gen);
  autograd::NoGradGuard no_grad;
  for (auto& [name, m] : model->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) {
      const int64_t c = bn->weight.numel();
      gen.uniform(bn->weight.data<float>(), c, 0.5f, 1.5f);
      gen.normal(bn->bias.data<float>(), c, 0.0f, 0.3f);
      gen.normal(bn->running_mean.data<float>(), c, 0.0f, 0.3f);
      gen.uniform(bn->running_var.data<float>(), c, 0.4f, 2.0f);
    }
  return model;
}

std::vector<Tensor> batches(uint64_t seed, int count = 2, int64_t n = 16) {
  Generator gen(seed);
  std::vector<Tensor> out;
  for (int b = 0; b < count; ++b) out.push_back(Tensor::normal(Shape{n, 1, 28, 28}, gen));
  return out;
}

Tensor logits(nn::Module& m, const Tensor& x) {
  const bool was = m.is_training();
  m.eval();
  autograd::NoGradGuard no_grad;
  Tensor y = m.forward(x);
  m.train(was);
  return y;
}

// A few plain SGD steps on random labels: the weights (and EMA ranges) move off the PTQ start.
void train_steps(nn::Module& m, int steps, uint64_t seed, float lr = 0.05f) {
  Generator gen(seed);
  m.train();
  for (int s = 0; s < steps; ++s) {
    const Tensor x = Tensor::normal(Shape{8, 1, 28, 28}, gen);
    std::vector<int32_t> y(8);
    for (auto& v : y) v = int32_t(gen.next_below(10));
    m.zero_grad();
    autograd::backward(ops::cross_entropy(m.forward(x), Tensor::from_vector(y, Shape{8})));
    autograd::NoGradGuard no_grad;
    for (Tensor* p : m.parameters()) {
      const Tensor g = autograd::grad(*p);
      ASSERT_TRUE(g.defined());
      for (int64_t i = 0; i < p->numel(); ++i) p->data<float>()[i] -= lr * g.data<float>()[i];
    }
  }
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.to_vector()) m = std::max(m, double(std::fabs(v)));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(double(va[i]) - double(vb[i])));
  return m;
}

// A usage error (exit code 2), not a runtime one or none.
bool usage_error(const std::function<void()>& f) {
  return duet::test::exit_code(f) == 2;
}

}  // namespace

TEST(Qat, StartsAsExactlyThePostTrainingInt8Model) {
  auto model = trained_looking(small_config("resnet20"), 1);
  const auto qat = compress::make_qat_model(model, batches(2), {});
  EXPECT_EQ(qat->ptq_report.int8_layers(), int64_t(qat->ptq_report.layers.size()));
  const compress::Int8Export e = compress::export_int8(*qat);
  // Same weights, scales, ranges, zero points: byte for byte the quantize result.
  const auto want = qat->ptq_model->state_dict();
  const auto got = e.model->state_dict();
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    ASSERT_EQ(got.at(name).nbytes(), t.nbytes()) << name;
    EXPECT_EQ(std::memcmp(got.at(name).raw_data(), t.raw_data(), t.nbytes()), 0) << name;
  }
}

TEST(Qat, FloatForwardMatchesTheExportedInt8Logits) {
  struct Case {
    std::string arch;
    std::vector<std::string> keep;
    compress::RangeUpdate ranges;
  };
  for (const Case& c : {Case{"resnet20", {}, compress::RangeUpdate::fixed},
                        Case{"resnet20", {"first", "last"}, compress::RangeUpdate::ema},
                        Case{"shufflenet_v2_x0_5", {}, compress::RangeUpdate::fixed}}) {
    SCOPED_TRACE(c.arch + (c.keep.empty() ? "" : " keep first,last"));
    auto model = trained_looking(small_config(c.arch), 3);
    compress::QatOptions o;
    o.quantize.keep_fp32 = c.keep;
    o.ranges = c.ranges;
    const auto qat = compress::make_qat_model(model, batches(4), o);
    const auto before = qat->ptq_report.layers;
    train_steps(*qat, 3, 5);
    const Tensor x = batches(6, 1, 8)[0];
    const compress::Int8Export e = compress::export_int8(*qat);
    const Tensor want = logits(*e.model, x), got = logits(*qat, x);
    // fp32 sums of dequantised products vs exact int32 sums rescaled once: rounding-level
    // differences, which can flip a rare activation code one step in a later layer.
    EXPECT_LT(max_abs_diff(got, want), 1e-3 * max_abs(want))
        << "max |diff| " << max_abs_diff(got, want) << ", max |logit| " << max_abs(want);
    // The export keeps PTQ's choice of int8 layers; fixed ranges stay, EMA ranges moved.
    ASSERT_EQ(e.report.layers.size(), before.size());
    bool moved = false;
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(e.report.layers[i].int8, before[i].int8) << before[i].name;
      if (!before[i].int8) continue;
      if (c.ranges == compress::RangeUpdate::fixed) {
        EXPECT_EQ(e.report.layers[i].lo, before[i].lo) << before[i].name;
        EXPECT_EQ(e.report.layers[i].hi, before[i].hi) << before[i].name;
      }
      moved |= e.report.layers[i].hi != before[i].hi;
    }
    EXPECT_EQ(moved, c.ranges == compress::RangeUpdate::ema);
    if (c.arch == "shufflenet_v2_x0_5") {  // depthwise convs stay float, as in quantize
      EXPECT_LT(e.report.int8_layers(), int64_t(e.report.layers.size()));
    }
  }
}

TEST(Qat, GradientsReachEveryParameter) {
  auto model = trained_looking(small_config("resnet20"), 7);
  compress::QatOptions o;
  o.quantize.keep_fp32 = {"first"};
  const auto qat = compress::make_qat_model(model, batches(8), o);
  const Tensor x = batches(9, 1, 4)[0];
  autograd::backward(ops::cross_entropy(
      qat->forward(x), Tensor::from_vector(std::vector<int32_t>{1, 2, 3, 4}, Shape{4})));
  for (auto& [name, p] : qat->named_parameters()) {
    const Tensor g = autograd::grad(*p);
    ASSERT_TRUE(g.defined()) << name;
    EXPECT_GT(max_abs(g), 0.0) << name;
  }
}

TEST(Qat, EmaRangesMoveTowardsTheBatchExtremes) {
  auto model = trained_looking(small_config("resnet20"), 10);
  compress::QatOptions o;
  o.ranges = compress::RangeUpdate::ema;
  o.range_momentum = 0.25f;
  const auto qat = compress::make_qat_model(model, batches(11), o);
  auto* first = dynamic_cast<compress::QatConv*>(qat->body->children()[0].second.get());
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->is_int8());
  const auto [lo, hi] = first->range();
  const Tensor x = batches(12, 1, 4)[0];  // the stem's input is the image itself
  const auto v = x.to_vector();
  const float mn = *std::min_element(v.begin(), v.end()),
              mx = *std::max_element(v.begin(), v.end());
  {
    autograd::NoGradGuard no_grad;  // evaluation never moves a range
    qat->forward(x);
    EXPECT_EQ(first->range(), std::make_pair(lo, hi));
  }
  qat->eval();
  qat->forward(x);
  EXPECT_EQ(first->range(), std::make_pair(lo, hi));
  qat->train();
  qat->forward(x);
  EXPECT_FLOAT_EQ(first->range().first, lo + 0.25f * (mn - lo));
  EXPECT_FLOAT_EQ(first->range().second, hi + 0.25f * (mx - hi));
}

TEST(Qat, RunWritesInt8ResumesExactlyAndRefusesAChangedFile) {
  REQUIRE_FASHION_MNIST();
  train::testing::RunDir dir("qat");
  std::filesystem::create_directories(dir.str());
  const std::string start = dir.file("fp32.safetensors");
  const nlohmann::json config = small_config("resnet20");
  models::save_model(start, *trained_looking(config, 13), config);

  train::ClassifyRecipe r;
  r.qat_from = start;
  r.arch = "resnet20";
  r.qat_calib = 200;
  r.limit = 256;
  r.epochs = 2;
  r.batch = 64;
  r.lr = 0.01;
  r.test_limit = 100;
  r.seed = 3;
  r.qat_ranges = "ema";
  const train::TrainSummary whole =
      train::train_classifier(r, train::testing::quiet(dir.file("a")));
  EXPECT_TRUE(whole.finished);

  const std::string model = dir.file("a/model.safetensors");
  ASSERT_TRUE(compress::is_quantized_checkpoint(model));
  const auto loaded = compress::load_inference_model(model);
  EXPECT_EQ(loaded.config.at("qat").at("from"), start);
  EXPECT_EQ(loaded.config.at("qat").at("epochs"), 2);
  EXPECT_TRUE(compress::is_quantized_checkpoint(dir.file("a/ptq.safetensors")));
  const train::ClassifyRecipe saved = train::read_checkpoint_recipe(dir.file("a/last.safetensors"));
  EXPECT_EQ(saved.qat_from, start);
  EXPECT_EQ(saved.qat_sha256.size(), 64u);
  EXPECT_EQ(saved.qat_bytes, int64_t(std::filesystem::file_size(start)));
  EXPECT_EQ(saved.qat_ranges, "ema");

  // Interrupted after one epoch and resumed: the same files, byte for byte.
  train::TrainRunOptions first = train::testing::quiet(dir.file("b"));
  first.stop_after = 1;
  train::train_classifier(r, first);
  train::TrainRunOptions rest = train::testing::quiet(dir.file("b"));
  rest.resume = true;
  train::train_classifier(r, rest);
  EXPECT_GT(train::testing::expect_same_tensors(dir.file("a/last.safetensors"),
                                                dir.file("b/last.safetensors")),
            0u);
  EXPECT_GT(train::testing::expect_same_tensors(model, dir.file("b/model.safetensors")), 0u);

  {  // the same network, but no longer the same file
    std::ofstream append(start, std::ios::app | std::ios::binary);
    append << ' ';
  }
  r.epochs = 3;
  train::TrainRunOptions again = train::testing::quiet(dir.file("b"));
  again.resume = true;
  EXPECT_TRUE(usage_error([&] { train::train_classifier(r, again); }));
}

TEST(Qat, UsageErrors) {
  const auto bad = [](const std::function<void(train::ClassifyRecipe&)>& change) {
    train::ClassifyRecipe r;
    r.qat_from = "x.safetensors";
    change(r);
    return usage_error([&] { r.validate(); });
  };
  EXPECT_FALSE(bad([](train::ClassifyRecipe&) {}));
  EXPECT_TRUE(bad([](train::ClassifyRecipe& r) { r.init = "y.safetensors"; }));
  EXPECT_TRUE(bad([](train::ClassifyRecipe& r) { r.model_overrides = {{"width", 4}}; }));
  EXPECT_TRUE(bad([](train::ClassifyRecipe& r) { r.qat_method = "mse"; }));
  EXPECT_TRUE(bad([](train::ClassifyRecipe& r) { r.qat_ranges = "learned"; }));
  EXPECT_TRUE(bad([](train::ClassifyRecipe& r) { r.qat_calib = 0; }));
  EXPECT_TRUE(bad([](train::ClassifyRecipe& r) { r.qat_max_layer_error = -1; }));
  // A model without a folded int8 form.
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Activation>(nn::ActivationKind::relu));
  EXPECT_TRUE(usage_error([&] { compress::make_qat_model(seq, batches(1), {}); }));
  // A --keep-fp32 name that is no conv of the model, as in quantize.
  compress::QatOptions o;
  o.quantize.keep_fp32 = {"body.9.conv1"};
  auto model = trained_looking(small_config("resnet20"), 1);
  EXPECT_TRUE(usage_error([&] { compress::make_qat_model(model, batches(1), o); }));
}
