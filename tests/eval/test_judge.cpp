// The judge of generated images (eval/judge.h) on a tiny random UNet, with a stand-in classifier
// whose decision is a known function of the mean pixel: conditional accuracy, confusion and
// confidences equal a direct computation on the returned images; feature statistics equal a direct
// computation on the same tensors (generated and real); runs repeat exactly for a seed; mismatched
// sizes, channels and class counts are usage errors. Also the pixel conversion and feature stats.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <set>

#include "../harness/error_capture.h"
#include "duet/eval/feature_stats.h"
#include "duet/eval/judge.h"
#include "duet/models/registry.h"
#include "duet/models/resnet.h"
#include "duet/tensor/error.h"

#include "../harness/tiny_unet.h"

using namespace duet;

namespace {

constexpr int64_t kClasses = 3, kSize = 8;
constexpr float kMean = 0.5f, kStd = 0.25f;  // the stand-in classifier's "preprocess"
constexpr float kLogit = 5.0f;               // logit of the chosen class; the others are 0

nlohmann::json unet_config() {
  return test::tiny_unet_config(kClasses, kSize);
}

nlohmann::json classifier_config(int64_t channels = 1, int64_t size = kSize,
                                 int64_t classes = kClasses) {
  return {{"family", "test"},
          {"in_channels", channels},
          {"image_size", size},
          {"num_classes", classes},
          {"preprocess",
           {{"mean", std::vector<float>(channels, kMean)},
            {"std", std::vector<float>(channels, kStd)}}}};
}

// The class the stand-in picks for an image whose pixels (in [0, 1]) average `m01`: the
// hundredths digit band, modulo the class count, so nearby brightnesses spread over classes.
int32_t band(double m01) {
  return static_cast<int32_t>(static_cast<int64_t>(std::floor(m01 * 100.0)) % kClasses);
}

// Features: the mean and the (population) std of the normalised pixels of each image. Logits:
// kLogit for band(mean pixel in [0, 1]), 0 for the others.
class MeanPixelClassifier : public models::Classifier {
 public:
  MeanPixelClassifier() : Classifier("MeanPixelClassifier") {}
  Tensor features(const Tensor& x) override {
    const int64_t n = x.dim(0), per = x.numel() / n;
    const auto v = x.to_vector();
    std::vector<float> f;
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0, ss = 0.0;
      for (int64_t j = 0; j < per; ++j) s += v[static_cast<size_t>(i * per + j)];
      const double m = s / static_cast<double>(per);
      for (int64_t j = 0; j < per; ++j) {
        const double e = v[static_cast<size_t>(i * per + j)] - m;
        ss += e * e;
      }
      f.push_back(static_cast<float>(m));
      f.push_back(static_cast<float>(std::sqrt(ss / static_cast<double>(per))));
    }
    return Tensor::from_vector(f, Shape{n, 2});
  }
  Tensor logits(const Tensor& f) override {
    const int64_t n = f.dim(0);
    const auto v = f.to_vector();
    std::vector<float> out(static_cast<size_t>(n * kClasses), 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      const double m01 = double(v[static_cast<size_t>(2 * i)]) * kStd + kMean;
      out[static_cast<size_t>(i * kClasses + band(m01))] = kLogit;
    }
    return Tensor::from_vector(out, Shape{n, kClasses});
  }
};

// Real images: class c has 2 + 3c images (so class 0 has fewer than per_class) of random pixels.
data::Dataset real_data() {
  data::Dataset d;
  d.class_names = {"a", "b", "c"};
  d.channels = 1, d.height = kSize, d.width = kSize;
  std::vector<int32_t> labels;
  for (int32_t c = 0; c < kClasses; ++c) labels.insert(labels.end(), 2 + 3 * c, c);
  std::rotate(labels.begin(), labels.begin() + 4, labels.end());  // classes interleave a little
  const int64_t n = std::ssize(labels);
  d.labels = Tensor::from_vector(labels, Shape{n});
  d.images = Tensor::empty(Shape{n, 1, kSize, kSize}, DType::u8);
  Generator g(11);
  for (int64_t i = 0; i < d.images.numel(); ++i)
    d.images.data<uint8_t>()[i] = static_cast<uint8_t>(g.next_below(256));
  return d;
}

struct Fixture {
  Generator gen{7};
  std::shared_ptr<nn::Module> module = models::build_model(unet_config(), gen);
  models::UNet& unet = static_cast<models::UNet&>(*module);
  MeanPixelClassifier classifier;

  eval::JudgeOptions options(uint64_t seed = 3) const {
    eval::JudgeOptions o;
    o.per_class = 5;
    o.batch = 4;  // 15 images: batches of 4, 4, 4, 3 that mix classes
    o.cfg = 2.0;
    o.sample.kind = gen::SamplerKind::euler;
    o.sample.steps = 3;
    o.seed = seed;
    o.real = real_data();
    return o;
  }
  eval::Judgement run(const eval::JudgeOptions& o) {
    return eval::judge_generator(unet, gen::Objective::flow, classifier, classifier_config(), o);
  }
};

// Features of the stand-in computed here from images in [0, 1] (double throughout).
std::pair<double, double> direct_features(const std::vector<double>& x01) {
  double s = 0.0, ss = 0.0;
  for (double v : x01) s += (v - kMean) / kStd;
  const double m = s / static_cast<double>(x01.size());
  for (double v : x01) ss += ((v - kMean) / kStd - m) * ((v - kMean) / kStd - m);
  return {m, std::sqrt(ss / static_cast<double>(x01.size()))};
}

using duet::test::exit_code;

}  // namespace

TEST(Judge, AccuracyConfusionAndConfidenceMatchADirectComputation) {
  Fixture fx;
  const auto o = fx.options();
  const eval::Judgement j = fx.run(o);
  const int64_t n = kClasses * o.per_class, per = kSize * kSize;
  ASSERT_EQ(j.images.shape(), (Shape{n, 1, kSize, kSize}));
  ASSERT_EQ(j.probs.size(), static_cast<size_t>(n * kClasses));
  EXPECT_EQ(j.feature_dim, 2);
  EXPECT_EQ(j.metrics.count, n);

  const auto img = j.images.to_vector();
  std::vector<int64_t> confusion(kClasses * kClasses, 0), correct(kClasses, 0);
  std::set<int32_t> predicted_classes;
  const double p_top = std::exp(kLogit) / (std::exp(kLogit) + kClasses - 1);
  std::vector<double> p_req(kClasses, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t want = static_cast<int32_t>(i / o.per_class);  // class-major
    EXPECT_EQ(j.labels[static_cast<size_t>(i)], want);
    double s = 0.0;
    for (int64_t p = 0; p < per; ++p)
      s += std::clamp((double(img[static_cast<size_t>(i * per + p)]) + 1.0) / 2.0, 0.0, 1.0);
    const int32_t got = band(s / per);
    predicted_classes.insert(got);
    ++confusion[static_cast<size_t>(want * kClasses + got)];
    correct[static_cast<size_t>(want)] += got == want;
    p_req[static_cast<size_t>(want)] += got == want ? p_top : (1.0 - p_top) / (kClasses - 1);
  }
  // A non-trivial draw: the stand-in does not put every sample in one class.
  EXPECT_GE(predicted_classes.size(), 2u);

  int64_t all_correct = 0;
  for (int64_t c = 0; c < kClasses; ++c) {
    int64_t row = 0;
    for (int64_t p = 0; p < kClasses; ++p) {
      EXPECT_EQ(j.metrics.confusion_at(c, p), confusion[static_cast<size_t>(c * kClasses + p)]);
      row += j.metrics.confusion_at(c, p);
    }
    EXPECT_EQ(row, o.per_class);
    const auto& cj = j.classes[static_cast<size_t>(c)];
    EXPECT_DOUBLE_EQ(cj.accuracy, double(correct[static_cast<size_t>(c)]) / o.per_class);
    EXPECT_NEAR(cj.mean_confidence, p_top, 1e-6);  // every sample: the chosen class's softmax
    EXPECT_NEAR(cj.mean_p_requested, p_req[static_cast<size_t>(c)] / o.per_class, 1e-6);
    all_correct += correct[static_cast<size_t>(c)];
  }
  EXPECT_DOUBLE_EQ(j.metrics.accuracy, double(all_correct) / n);
  EXPECT_NEAR(j.mean_confidence, p_top, 1e-6);
}

TEST(Judge, FeatureStatisticsMatchADirectComputation) {
  Fixture fx;
  const auto o = fx.options();
  const eval::Judgement j = fx.run(o);
  const int64_t per = kSize * kSize;
  const auto img = j.images.to_vector();
  const data::Dataset real = *o.real;

  // Mean and population std over rows of a list of 2-dim features.
  auto stats = [](const std::vector<std::pair<double, double>>& rows) {
    std::array<double, 2> mean{0, 0}, sd{0, 0};
    for (const auto& r : rows) mean[0] += r.first, mean[1] += r.second;
    for (double& m : mean) m /= static_cast<double>(rows.size());
    for (const auto& r : rows)
      sd[0] += (r.first - mean[0]) * (r.first - mean[0]),
          sd[1] += (r.second - mean[1]) * (r.second - mean[1]);
    for (double& s : sd) s = std::sqrt(s / static_cast<double>(rows.size()));
    return std::pair{mean, sd};
  };
  for (int32_t c = 0; c < kClasses; ++c) {
    SCOPED_TRACE(c);
    std::vector<std::pair<double, double>> gen_rows, real_rows;
    for (int64_t i = c * o.per_class; i < (c + 1) * o.per_class; ++i) {
      std::vector<double> x01(static_cast<size_t>(per));
      for (int64_t p = 0; p < per; ++p)
        x01[static_cast<size_t>(p)] =
            std::clamp((double(img[static_cast<size_t>(i * per + p)]) + 1.0) / 2.0, 0.0, 1.0);
      gen_rows.push_back(direct_features(x01));
    }
    for (int64_t i = 0; i < real.size() && std::ssize(real_rows) < o.per_class; ++i) {
      if (real.label(i) != c) continue;
      std::vector<double> x01(static_cast<size_t>(per));
      for (int64_t p = 0; p < per; ++p) x01[static_cast<size_t>(p)] = real.image(i)[p] / 255.0;
      real_rows.push_back(direct_features(x01));
    }
    const auto& cj = j.classes[static_cast<size_t>(c)];
    EXPECT_EQ(cj.generated.count, o.per_class);
    EXPECT_EQ(cj.real.count, std::min<int64_t>(o.per_class, 2 + 3 * c));  // class 0 has only 2
    const auto [gm, gs] = stats(gen_rows);
    const auto [rm, rs] = stats(real_rows);
    for (size_t d = 0; d < 2; ++d) {
      EXPECT_NEAR(cj.generated.mean[d], gm[d], 1e-5);
      EXPECT_NEAR(cj.generated.std[d], gs[d], 1e-5);
      EXPECT_NEAR(cj.real.mean[d], rm[d], 1e-5);
      EXPECT_NEAR(cj.real.std[d], rs[d], 1e-5);
    }
    EXPECT_NEAR(cj.generated.mean_of_means(), (gm[0] + gm[1]) / 2, 1e-5);
    EXPECT_NEAR(cj.generated.mean_of_stds(), (gs[0] + gs[1]) / 2, 1e-5);
    EXPECT_NEAR(cj.real.mean_of_stds(), (rs[0] + rs[1]) / 2, 1e-5);
    EXPECT_NEAR(cj.mean_distance, std::hypot(gm[0] - rm[0], gm[1] - rm[1]), 1e-5);
    EXPECT_GT(cj.mean_distance, 0.0);
  }
}

TEST(Judge, SameSeedSameResultsOtherSeedOtherImages) {
  Fixture fx;
  const eval::Judgement a = fx.run(fx.options(3)), b = fx.run(fx.options(3)),
                        c = fx.run(fx.options(4));
  EXPECT_EQ(a.images.to_vector(), b.images.to_vector());
  EXPECT_EQ(a.probs, b.probs);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.to_json({}).dump(), b.to_json({}).dump());
  EXPECT_NE(a.images.to_vector(), c.images.to_vector());
  // The models get their modes back.
  EXPECT_TRUE(fx.unet.is_training());
  EXPECT_TRUE(fx.classifier.is_training());
}

TEST(Judge, MismatchedSizesChannelsAndClassesAreUsageErrors) {
  Fixture fx;
  const auto o = fx.options();
  auto with = [&](const nlohmann::json& config) {
    return [&fx, &o, config] {
      eval::judge_generator(fx.unet, gen::Objective::flow, fx.classifier, config, o);
    };
  };
  EXPECT_EQ(exit_code(with(classifier_config(1, 16))), 2);
  EXPECT_EQ(exit_code(with(classifier_config(3, kSize))), 2);
  EXPECT_EQ(exit_code(with(classifier_config(1, kSize, 10))), 2);
  auto bad_real = o;
  bad_real.real->class_names.push_back("d");
  EXPECT_EQ(exit_code([&] { fx.run(bad_real); }), 2);
  auto bad_sampler = o;
  bad_sampler.sample.kind = gen::SamplerKind::ddim;  // needs a diffusion objective
  EXPECT_EQ(exit_code([&] { fx.run(bad_sampler); }), 2);
  auto bad_count = o;
  bad_count.per_class = 0;
  EXPECT_EQ(exit_code([&] { fx.run(bad_count); }), 2);
}

TEST(Judge, WorksWithARealResNetClassifier) {
  Fixture fx;
  Generator g(9);
  models::CifarResNet net(
      g, models::ResNetConfig{.depth = 8, .width = 4, .num_classes = 3, .image_size = kSize});
  auto config = net.config().to_json();
  config["preprocess"] = {{"mean", {0.3}}, {"std", {0.4}}};
  const auto o = fx.options();
  const eval::Judgement j = eval::judge_generator(fx.unet, gen::Objective::flow, net, config, o);
  EXPECT_EQ(j.feature_dim, 16);
  // The probabilities are the softmax of the head applied to the stored features.
  const int64_t n = kClasses * o.per_class;
  const Tensor logits = net.logits(Tensor::from_vector(j.features, Shape{n, 16}));
  const auto lv = logits.to_vector();
  for (int64_t i = 0; i < n; ++i) {
    double z = 0.0, mx = -1e30;
    for (int64_t k = 0; k < kClasses; ++k) mx = std::max(mx, double(lv[size_t(i * kClasses + k)]));
    for (int64_t k = 0; k < kClasses; ++k) z += std::exp(lv[size_t(i * kClasses + k)] - mx);
    for (int64_t k = 0; k < kClasses; ++k)
      EXPECT_NEAR(j.probs[size_t(i * kClasses + k)],
                  std::exp(lv[size_t(i * kClasses + k)] - mx) / z, 1e-6);
  }
}

TEST(Judge, ClassifierInputConversion) {
  const Tensor x = Tensor::from_vector(std::vector<float>{-1.0f, 0.0f, 1.0f, 3.0f, -2.0f, 0.5f},
                                       Shape{1, 1, 2, 3});
  EXPECT_EQ(eval::to_classifier_input(x, {}).to_vector(),
            (std::vector<float>{0.0f, 0.5f, 1.0f, 1.0f, 0.0f, 0.75f}));
  EXPECT_EQ(eval::to_classifier_input(x, {{0.5f}, {0.25f}}).to_vector(),
            (std::vector<float>{-2.0f, 0.0f, 2.0f, 2.0f, -2.0f, 1.0f}));
  // Another value range: [0, 1] maps as is.
  EXPECT_EQ(eval::to_classifier_input(x, {}, 0.0f, 1.0f).to_vector(),
            (std::vector<float>{0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.5f}));
  const uint8_t px[2] = {0, 255};
  EXPECT_EQ(eval::u8_to_classifier_input(px, 1, 2, 1, 1, {{0.0f, 0.5f}, {1.0f, 0.5f}}).to_vector(),
            (std::vector<float>{0.0f, 1.0f}));
  EXPECT_EQ(eval::value_range(nlohmann::json::object()), (std::pair{-1.0f, 1.0f}));
  EXPECT_EQ(eval::value_range({{"value_range", {0, 255}}}), (std::pair{0.0f, 255.0f}));
  EXPECT_THROW(eval::value_range({{"value_range", {1, 1}}}), Error);
}

TEST(FeatureStats, KnownValues) {
  const float rows[] = {1, 10, 3, 10, 5, 10, 7, 10};  // 4 rows of 2 dims
  const auto s = eval::feature_stats(rows, 4, 2);
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.mean[0], 4.0);
  EXPECT_DOUBLE_EQ(s.mean[1], 10.0);
  EXPECT_DOUBLE_EQ(s.std[0], std::sqrt(5.0));  // deviations 3, 1, 1, 3
  EXPECT_DOUBLE_EQ(s.std[1], 0.0);
  EXPECT_DOUBLE_EQ(s.mean_of_means(), 7.0);
  EXPECT_DOUBLE_EQ(s.mean_of_stds(), std::sqrt(5.0) / 2);
  const float other[] = {1, 6};  // mean (1, 6): distance from (4, 10) is 5
  EXPECT_DOUBLE_EQ(eval::mean_distance(s, eval::feature_stats(other, 1, 2)), 5.0);
  EXPECT_TRUE(std::isnan(eval::mean_distance(s, eval::feature_stats(other, 0, 2))));
}
