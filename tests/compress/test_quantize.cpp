// int8 post-training quantisation: the calibration rules on histograms with known answers, the
// per-channel weight quantiser's round-trip bound, FusedConv's int8 path against the kernel it
// wraps, a whole ResNet quantised end to end (logits close to the float model's, the same scales
// twice from the same calibration, skipped layers and their reasons), the int8 checkpoint's
// save / load round trip, and the usage errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "duet/autograd/autograd.h"
#include "duet/compress/blocked_forward.h"
#include "duet/compress/calibration.h"
#include "duet/compress/fold.h"
#include "duet/compress/fused_blocks.h"
#include "duet/compress/fused_conv.h"
#include "duet/compress/quantize.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/nn/layers.h"
#include "duet/tensor/error.h"

using namespace duet;

namespace {

// Affine parameters and running statistics away from their initial values, so the folded
// model's activations have realistic, channel-dependent ranges.
std::shared_ptr<nn::Module> trained_looking(const std::string& arch, uint64_t seed) {
  Generator gen(seed);
  auto model = models::build_model(models::preset_config(arch), gen);
  autograd::NoGradGuard no_grad;
  for (auto& [name, m] : model->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) {
      const int64_t c = bn->weight.numel();
      gen.uniform(bn->weight.data<float>(), c, 0.5f, 1.5f);
      gen.normal(bn->bias.data<float>(), c, 0.0f, 0.3f);
      gen.normal(bn->running_mean.data<float>(), c, 0.0f, 0.3f);
      gen.uniform(bn->running_var.data<float>(), c, 0.4f, 2.0f);
    }
  model->eval();
  return model;
}

std::vector<Tensor> calibration(uint64_t seed, int batches = 2, int64_t n = 16) {
  Generator gen(seed);
  std::vector<Tensor> out;
  for (int b = 0; b < batches; ++b) out.push_back(Tensor::normal(Shape{n, 1, 28, 28}, gen));
  return out;
}

Tensor logits(nn::Module& m, const Tensor& x) {
  autograd::NoGradGuard no_grad;
  return m.forward(x);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  EXPECT_EQ(va.size(), vb.size());
  double m = va.size() == vb.size() ? 0.0 : 1e9;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i)
    m = std::max(m, std::fabs(double(va[i]) - vb[i]));
  return m;
}

double relative_l2(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num += (double(va[i]) - vb[i]) * (double(va[i]) - vb[i]);
    den += double(vb[i]) * vb[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST(Calibration, PercentileOfKnownHistogram) {
  // 100 values, one per bin of width 0.5: the 90th percentile ends at bin 89's upper edge.
  std::vector<int64_t> hist(100, 1);
  EXPECT_FLOAT_EQ(compress::percentile_threshold(hist, 0.5f, 90.0), 45.0f);
  EXPECT_FLOAT_EQ(compress::percentile_threshold(hist, 0.5f, 100.0), 50.0f);
  EXPECT_THROW(compress::percentile_threshold(hist, 0.5f, 0.0), Error);
}

TEST(Calibration, KlKeepsACompactDistributionWhole) {
  // Mass spread over the first 64 of 256 bins and nothing beyond: clipping anywhere inside would
  // fold mass into the last bin, so the best threshold covers all of it exactly once every bin
  // maps to its own level (64 bins, 64 levels would be exact; the answer must be >= 64 bins).
  std::vector<int64_t> hist(256, 0);
  for (int b = 0; b < 64; ++b) hist[size_t(b)] = 100 + (b * 37) % 50;
  const float t = compress::kl_threshold(hist, 1.0f, 64);
  EXPECT_GE(t, 64.0f);
}

TEST(Calibration, KlClipsARareOutlier) {
  // A dense body in the first 100 bins and one far outlier in the last bin: minmax would spend
  // almost every level on empty space; KL clips near the body.
  std::vector<int64_t> hist(2048, 0);
  for (int b = 0; b < 100; ++b) hist[size_t(b)] = 10000 - b * 90;
  hist[2047] = 1;
  const float t = compress::kl_threshold(hist, 1.0f, 128);
  EXPECT_GE(t, 100.0f);
  EXPECT_LT(t, 400.0f);
}

TEST(Calibration, ObserverRangeAndChoice) {
  compress::RangeObserver obs;
  std::vector<float> x = {0.0f, 1.0f, 2.0f, 3.0f, 100.0f};
  obs.observe_range(x.data(), int64_t(x.size()));
  EXPECT_EQ(obs.min(), 0.0f);
  EXPECT_EQ(obs.max(), 100.0f);
  EXPECT_EQ(obs.choose(compress::CalibrationMethod::minmax), std::make_pair(0.0f, 100.0f));
  EXPECT_THROW(obs.choose(compress::CalibrationMethod::kl), Error);  // no histogram pass yet
  obs.observe_histogram(x.data(), int64_t(x.size()));
  int64_t counted = 0;
  for (int64_t c : obs.histogram()) counted += c;
  EXPECT_EQ(counted, 4);  // the exact zero is left out
  const std::vector<float> bad = {1.0f, std::nanf("")};
  compress::RangeObserver broken;
  EXPECT_THROW(broken.observe_range(bad.data(), 2), Error);
}

TEST(Quantize, WeightsRoundTripWithinHalfAStep) {
  Generator gen(3);
  Tensor w = Tensor::normal(Shape{5, 3, 3, 3}, gen);
  for (int i = 0; i < 27; ++i) w.data<float>()[27 + i] = 0.0f;  // an all-zero channel
  const auto q = compress::quantize_weights_per_channel(w);
  ASSERT_EQ(q.codes.dtype(), DType::i8);
  for (int64_t k = 0; k < 5; ++k) {
    const float s = q.scale.data<float>()[k];
    EXPECT_GT(s, 0.0f);
    for (int64_t i = 0; i < 27; ++i) {
      const int8_t c = q.codes.data<int8_t>()[k * 27 + i];
      EXPECT_GE(c, -127);
      EXPECT_LE(std::fabs(float(c) * s - w.data<float>()[k * 27 + i]), 0.5f * s + 1e-7f);
    }
  }
  EXPECT_EQ(q.scale.data<float>()[1], 1.0f);  // all-zero channel: scale 1, codes 0
}

TEST(Quantize, FewerWeightBitsUseTheirWholeRange) {
  Generator gen(31);
  const Tensor w = Tensor::normal(Shape{4, 3, 3, 3}, gen);
  for (int bits : {7, 4}) {
    const auto q = compress::quantize_weights_per_channel(w, bits);
    const int max_code = (1 << (bits - 1)) - 1;
    for (int64_t k = 0; k < 4; ++k) {
      const float s = q.scale.data<float>()[k];
      int largest = 0;
      for (int64_t i = 0; i < 27; ++i) {
        const int c = q.codes.data<int8_t>()[k * 27 + i];
        EXPECT_LE(std::abs(c), max_code);
        largest = std::max(largest, std::abs(c));
        EXPECT_LE(std::fabs(float(c) * s - w.data<float>()[k * 27 + i]), 0.5f * s + 1e-7f);
      }
      EXPECT_EQ(largest, max_code) << "channel " << k << " at " << bits << " bits";
    }
  }
  EXPECT_THROW(compress::quantize_weights_per_channel(w, 1), Error);
  EXPECT_THROW(compress::quantize_weights_per_channel(w, 9), Error);
}

TEST(Quantize, FusedConvInt8MatchesItsKernel) {
  Generator gen(4);
  const Tensor w = Tensor::normal(Shape{20, 8, 3, 3}, gen, 0.0f, 0.2f);
  const Tensor b = Tensor::normal(Shape{20}, gen);
  ops::Conv2dOptions o;
  o.padding = 1;
  compress::FusedConv conv(w, b, o, kernels::Activation::relu);
  conv.eval();
  const Tensor x = Tensor::uniform(Shape{3, 8, 9, 9}, gen, 0.0f, 4.0f);
  const auto q = kernels::ActivationQuant::from_range(0.0f, 4.0f);
  const Tensor want_float = logits(conv, x);
  const Tensor want = conv.int8_kernel(q).forward(x, Tensor());
  conv.quantize(q);
  EXPECT_TRUE(conv.is_int8());
  EXPECT_EQ(conv.weight.dtype(), DType::i8);
  const Tensor got = logits(conv, x);
  EXPECT_EQ(got.to_vector(), want.to_vector());
  EXPECT_LT(relative_l2(got, want_float), 0.02);  // 7-bit activations, 8-bit weights
  EXPECT_THROW(conv.quantize(q), Error);
}

TEST(Quantize, ResNetEndToEnd) {
  auto model = trained_looking("resnet20", 5);
  auto float_model = compress::fold_for_inference(*model);
  auto int8_model = compress::fold_for_inference(*model);
  compress::QuantizeOptions o;
  o.method = compress::CalibrationMethod::percentile;
  o.keep_fp32 = {"first"};
  o.max_layer_error = 0.0;
  const auto report = compress::quantize_model(*int8_model, calibration(6), o);
  ASSERT_EQ(report.layers.size(), 21u);  // 19 3x3 convs + 2 shortcuts
  EXPECT_EQ(report.calibration_images, 32);
  EXPECT_FALSE(report.layers.front().int8);
  EXPECT_EQ(report.layers.front().reason, "--keep-fp32");
  EXPECT_EQ(report.int8_layers(), 20);

  Generator gen(7);
  const Tensor x = Tensor::normal(Shape{8, 1, 28, 28}, gen);
  const Tensor want = logits(*float_model, x), got = logits(*int8_model, x);
  EXPECT_LT(relative_l2(got, want), 0.1);

  // The same calibration gives the same scales: the calibrator is deterministic.
  auto again = compress::fold_for_inference(*model);
  const auto report2 = compress::quantize_model(*again, calibration(6), o);
  EXPECT_EQ(report.to_json().dump(), report2.to_json().dump());
  EXPECT_EQ(logits(*again, x).to_vector(), got.to_vector());

  // The mixed float/int8 body runs channel-blocked; channel-major gives the same logits (the
  // same bytes and int32 sums; only the float layout differs).
  auto& clf = dynamic_cast<compress::FoldedClassifier&>(*int8_model);
  ASSERT_TRUE(compress::runs_blocked(*clf.body));
  clf.channel_blocked = false;
  EXPECT_LE(max_abs_diff(logits(clf, x), got), 1e-5);
}

TEST(Quantize, LayerErrorLimitKeepsLayersInFloat) {
  auto model = trained_looking("resnet20", 8);
  auto folded = compress::fold_for_inference(*model);
  compress::QuantizeOptions o;
  o.method = compress::CalibrationMethod::minmax;
  o.max_layer_error = 1e-9;  // nothing int8 is that close
  const auto report = compress::quantize_model(*folded, calibration(9, 1), o);
  EXPECT_EQ(report.int8_layers(), 0);
  for (const auto& l : report.layers) {
    EXPECT_EQ(l.reason, "error above --max-layer-error");
    EXPECT_GT(l.error, 0.0);
  }
}

// A range that fails the error limit gives way to another rule's before the layer stays float:
// images of -0.5 with one pixel in 400 at 40 (those pixels carry most of the stem's output), so
// the 99th percentile of |x| clips them all, while the whole range keeps them.
TEST(Quantize, AnotherRulesRangeBeforeFloat) {
  auto model = trained_looking("resnet20", 11);
  std::vector<Tensor> batches;
  for (int b = 0; b < 2; ++b) {
    Tensor x = Tensor::full(Shape{8, 1, 28, 28}, -0.5f);
    float* p = x.data<float>();
    for (int64_t i = 17 + b; i < x.numel(); i += 400) p[i] = 40.0f;
    batches.push_back(x);
  }
  compress::QuantizeOptions o;
  o.method = compress::CalibrationMethod::percentile;
  o.percentile = 99.0;
  auto folded = compress::fold_for_inference(*model);
  const auto report = compress::quantize_model(*folded, batches, o);
  const auto& stem = report.layers.front();
  EXPECT_TRUE(stem.int8) << stem.reason;
  EXPECT_GT(stem.method_error, o.max_layer_error);  // the percentile's range failed
  EXPECT_LE(stem.error, o.max_layer_error);
  EXPECT_NE(stem.range_rule, "percentile");
  EXPECT_FLOAT_EQ(stem.hi, 40.0f);  // both minmax and kl keep the bright pixels
  EXPECT_FLOAT_EQ(stem.lo, -0.5f);
  const auto json = report.to_json()["layers"][0];
  EXPECT_EQ(json["range_rule"], stem.range_rule);
  EXPECT_DOUBLE_EQ(json["method_error"].get<double>(), stem.method_error);

  // With no rule within the limit the layer stays float, reported with the method's own range.
  o.max_layer_error = 1e-9;
  auto strict = compress::fold_for_inference(*model);
  const auto kept = compress::quantize_model(*strict, batches, o).layers.front();
  EXPECT_FALSE(kept.int8);
  EXPECT_EQ(kept.reason, "error above --max-layer-error");
  EXPECT_EQ(kept.range_rule, "percentile");
  EXPECT_LT(kept.method_error, 0.0);
  EXPECT_LT(kept.hi, 1.0f);
}

TEST(Quantize, CheckpointRoundTrip) {
  auto model = trained_looking("resnet20", 10);
  auto folded = compress::fold_for_inference(*model);
  compress::QuantizeOptions o;
  o.method = compress::CalibrationMethod::kl;
  const auto report = compress::quantize_model(*folded, calibration(11), o);
  const auto dir = std::filesystem::temp_directory_path() / "duet_test_quantize";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "r20-int8.safetensors").string();
  const nlohmann::json config = models::preset_config("resnet20");
  compress::save_quantized_model(path, *folded, config, report);

  const auto loaded = compress::load_inference_model(path);
  EXPECT_TRUE(compress::is_quantized_config(loaded.config));
  Generator gen(12);
  const Tensor x = Tensor::normal(Shape{4, 1, 28, 28}, gen);
  EXPECT_EQ(logits(*loaded.model, x).to_vector(), logits(*folded, x).to_vector());
  int int8_convs = 0;
  for (auto& [name, m] : loaded.model->named_modules())
    if (auto* c = dynamic_cast<compress::FusedConv*>(m)) int8_convs += c->is_int8();
  EXPECT_EQ(int8_convs, report.int8_layers());
  // Training-side loaders refuse the folded int8 form with a message saying what it is.
  try {
    models::load_model(path);
    FAIL() << "load_model accepted an int8 checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("int8 inference checkpoint"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

// --weight-bits 7: the report and the checkpoint say so, every stored code lies in [-63, 63]
// (so AVX2 without VNNI pairs taps in int16), and the reloaded model gives the same logits.
TEST(Quantize, SevenBitWeightsCheckpoint) {
  auto model = trained_looking("resnet20", 14);
  auto float_model = compress::fold_for_inference(*model);
  auto folded = compress::fold_for_inference(*model);
  compress::QuantizeOptions o;
  o.weight_bits = 7;
  o.max_layer_error = 0.0;
  const auto report = compress::quantize_model(*folded, calibration(15), o);
  EXPECT_EQ(report.weight_bits, 7);
  EXPECT_EQ(report.to_json().at("weight_bits"), 7);
  const auto dir = std::filesystem::temp_directory_path() / "duet_test_quantize7";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "r20-int8-w7.safetensors").string();
  compress::save_quantized_model(path, *folded, models::preset_config("resnet20"), report);
  const auto loaded = compress::load_inference_model(path);
  EXPECT_EQ(loaded.config.at("quantization").at("weight_bits"), 7);
  int int8_convs = 0;
  for (auto& [name, m] : loaded.model->named_modules())
    if (auto* c = dynamic_cast<compress::FusedConv*>(m); c && c->is_int8()) {
      ++int8_convs;
      const int8_t* codes = c->weight.data<int8_t>();
      int largest = 0;
      for (int64_t i = 0; i < c->weight.numel(); ++i)
        largest = std::max(largest, std::abs(int(codes[i])));
      EXPECT_LE(largest, kernels::kPairableWeightMax) << name;
    }
  EXPECT_EQ(int8_convs, report.int8_layers());
  Generator gen(16);
  const Tensor x = Tensor::normal(Shape{4, 1, 28, 28}, gen);
  const Tensor got = logits(*loaded.model, x);
  EXPECT_EQ(got.to_vector(), logits(*folded, x).to_vector());
  EXPECT_LT(relative_l2(got, logits(*float_model, x)), 0.1);
  std::filesystem::remove_all(dir);
}

TEST(Quantize, UsageErrors) {
  auto model = trained_looking("resnet20", 13);
  auto folded = compress::fold_for_inference(*model);
  compress::QuantizeOptions o;
  o.keep_fp32 = {"body.9.conv7"};
  try {
    compress::quantize_model(*folded, calibration(14, 1), o);
    FAIL() << "an unknown --keep-fp32 name was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
  }
  EXPECT_THROW(compress::quantize_model(*folded, {}, {}), Error);
  EXPECT_THROW(compress::quantize_model(*model, calibration(15, 1), {}), Error);  // not folded
}
