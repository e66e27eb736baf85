// Noise-aware classifier training (`duet train --task classify --noised flow`, the classifier of
// classifier guidance): the loader's per-batch noising draws x_t = (1 - t) x + t eps with t
// spread over [0, 1] and is a function of (seed, epoch, batch) alone; the recipe field round-trips
// and is validated; and a small run on Fashion-MNIST stores the generator-range preprocessing and
// the "noised" config entry, and resumes bit-identically (skipped without the data set).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "duet/models/checkpoint.h"
#include "duet/tensor/error.h"
#include "duet/train/classify_step.h"
#include "duet/train/trainer.h"
#include "run_fixtures.h"

namespace duet::train {
namespace {

using testing::expect_same_tensors;
using testing::quiet;
using testing::RunDir;

constexpr int64_t kImages = 64, kPixels = 28 * 28;
constexpr float kValue = 0.4f;  // every clean pixel, in the generator's [-1, 1] range

data::Batch constant_batch(int64_t epoch, int64_t index) {
  data::Batch b;
  b.images = Tensor::full(Shape{kImages, 1, 28, 28}, kValue);
  b.labels = Tensor::zeros(Shape{kImages}, DType::i32);
  b.epoch = epoch, b.index = index;
  return b;
}

TEST(NoisedClassifier, BatchHookDrawsFlowInterpolantsAtSpreadTimes) {
  auto hook = noised_batch_hook("flow", 5);
  data::Batch b = constant_batch(2, 3);
  hook(b);
  const std::vector<float> v = b.images.to_vector();
  double t_min = 1.0, t_max = 0.0;
  for (int64_t i = 0; i < kImages; ++i) {
    // x_t = (1 - t) c + t eps: the pixels' spread estimates t, their mean (1 - t) c.
    double mean = 0, sq = 0;
    for (int64_t j = 0; j < kPixels; ++j) mean += v[static_cast<size_t>(i * kPixels + j)];
    mean /= kPixels;
    for (int64_t j = 0; j < kPixels; ++j) {
      const double d = v[static_cast<size_t>(i * kPixels + j)] - mean;
      sq += d * d;
    }
    const double t = std::sqrt(sq / (kPixels - 1));
    ASSERT_LE(t, 1.1) << "image " << i;
    EXPECT_NEAR(mean, (1 - t) * kValue, 4.0 * t / std::sqrt(double(kPixels)) + 0.02)
        << "image " << i << " at t " << t;
    t_min = std::min(t_min, t), t_max = std::max(t_max, t);
  }
  // 64 uniform draws: the chance that none falls below 0.15 (or above 0.85) is 0.85^64 < 1e-4.
  EXPECT_LT(t_min, 0.15);
  EXPECT_GT(t_max, 0.85);

  // A function of (seed, epoch, batch index): the same position gives the same noise (a resumed
  // run), another position or seed other noise.
  data::Batch again = constant_batch(2, 3), next = constant_batch(2, 4),
              later = constant_batch(3, 3), other = constant_batch(2, 3);
  hook(again), hook(next), hook(later);
  noised_batch_hook("flow", 6)(other);
  EXPECT_EQ(again.images.to_vector(), v);
  EXPECT_NE(next.images.to_vector(), v);
  EXPECT_NE(later.images.to_vector(), v);
  EXPECT_NE(other.images.to_vector(), v);

  const data::NormStats n = noised_norm(1);
  // pixel p -> (p / 255 - 0.5) / 0.5 = p / 255 * 2 - 1, the generator's range.
  EXPECT_FLOAT_EQ((255.0f / 255.0f - n.mean[0]) / n.std[0], 1.0f);
  EXPECT_FLOAT_EQ((0.0f - n.mean[0]) / n.std[0], -1.0f);
}

TEST(NoisedClassifier, RecipeFieldRoundTripsAndIsValidated) {
  ClassifyRecipe r;
  EXPECT_FALSE(r.to_json().contains("noised"));  // other recipes stay as they were
  r.noised = "flow";
  EXPECT_EQ(ClassifyRecipe::from_json(r.to_json()).noised, "flow");
  r.validate();
  r.noised = "ddpm";
  r.validate();
  r.noised = "blur";
  try {
    r.validate();
    FAIL() << "--noised blur must be a usage error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
  }
}

TEST(NoisedClassifier, SmallRunStoresItsInputRangeAndResumesBitIdentically) {
  REQUIRE_FASHION_MNIST();
  RunDir straight("straight"), resumed("resumed");
  ClassifyRecipe r;
  r.model_overrides = {{"width", 8}};
  r.limit = 256;
  r.epochs = 2;
  r.batch = 64;
  r.test_limit = 100;
  r.seed = 7;
  r.noised = "flow";
  const TrainSummary s = train_classifier(r, quiet(straight.str()));
  EXPECT_TRUE(s.finished);
  const auto loaded = models::load_model(straight.file("model.safetensors"));
  EXPECT_EQ(loaded.config.at("noised").at("schedule"), "flow");
  const data::NormStats n = model_norm_stats(loaded.config);
  EXPECT_EQ(n.mean, std::vector<float>{0.5f});
  EXPECT_EQ(n.std, std::vector<float>{0.5f});

  TrainRunOptions first = quiet(resumed.str());
  first.stop_after = 1;
  train_classifier(r, first);
  TrainRunOptions second = quiet(resumed.str());
  second.resume = true;
  ClassifyRecipe again = r;
  again.seed = -1;
  const TrainSummary s2 = train_classifier(again, second);
  EXPECT_TRUE(s2.finished);
  EXPECT_GT(
      expect_same_tensors(straight.file("model.safetensors"), resumed.file("model.safetensors")),
      60u);
  // Changing --noised on resume would change the run: refused.
  ClassifyRecipe clean = again;
  clean.noised.clear();
  EXPECT_THROW(train_classifier(clean, second), Error);
}

}  // namespace
}  // namespace duet::train
