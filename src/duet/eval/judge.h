// Judging a class-conditional generator with a trained classifier: generate `per_class` images of
// every class, classify them, and report conditional accuracy (share classified as the requested
// class), the requested x predicted confusion, confidence, and per class the classifier's
// penultimate-feature statistics of generated vs real images (the distribution metrics built on
// the same features, FID-ref and friends, are in distribution_report.h).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "duet/data/augment.h"
#include "duet/data/dataset.h"
#include "duet/eval/feature_stats.h"
#include "duet/gen/sampler.h"
#include "duet/models/classifier.h"
#include "duet/models/unet.h"
#include "duet/train/metrics.h"

namespace duet::eval {

struct JudgeOptions {
  int64_t per_class = 100;
  int64_t batch = 100;  // images per sampler call (guidance runs the network on twice as many)
  double cfg = 2.0;
  gen::SampleOptions sample;  // sampler kind, steps, eta, clip_x0 (its on_step is not used)
  uint64_t seed = 0;
  // Real images for the feature comparison: a --data spec loaded at the classifier's size, or a
  // data set in memory (used instead of the spec when set).
  std::string data = "fashion-mnist";
  data::Split split = data::Split::test;
  std::optional<data::Dataset> real;
  // The generator's pixel range (its config "value_range"; see value_range()).
  float lo = -1.0f, hi = 1.0f;
  // Called after each generated batch with (images done, total); may be empty.
  std::function<void(int64_t, int64_t)> on_batch;
  // Draws one batch (labels, batch seed) instead of gen::generate with cfg and sample, e.g.
  // best-of-K verified sampling (gen/verify.h); empty: plain sampling.
  std::function<Tensor(const std::vector<int32_t>&, uint64_t)> draw;
};

struct ClassJudgement {
  double accuracy = 0.0;          // share of this class's samples predicted as this class
  double mean_confidence = 0.0;   // mean max probability over this class's samples
  double mean_p_requested = 0.0;  // mean probability of the requested class
  FeatureStats generated, real;   // penultimate features; real.count may be < per_class
  double mean_distance = 0.0;     // |mean(real) - mean(generated)|, NaN without real images
};

struct Judgement {
  int64_t num_classes = 0, per_class = 0, feature_dim = 0;
  uint64_t seed = 0;
  // Over all samples, with the requested class as the label: accuracy, per-class accuracy,
  // confusion [requested][predicted] (rows sum to per_class), loss, ECE.
  train::ClassifyMetrics metrics;
  double mean_confidence = 0.0, mean_p_requested = 0.0;
  std::vector<ClassJudgement> classes;
  // The samples, class-major (per_class of class 0, then class 1, ...): images in the generator's
  // value range [N, C, H, W], requested labels, classifier probabilities [N, K] row-major, and
  // penultimate features [N, F] row-major.
  Tensor images;
  std::vector<int32_t> labels;
  std::vector<float> probs, features;

  // One object: settings, overall numbers, per class ({"class", "name", "accuracy",
  // "confidence", "p_requested", "generated", "real", "mean_distance"}) and the confusion matrix.
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
  // The first `columns` samples of every class, one row per class (for a sample grid).
  Tensor first_columns(int64_t columns) const;
};

// Generated images in [lo, hi] -> classifier input: x01 = (x - lo) / (hi - lo) clamped to [0, 1]
// (what the image saved as 8-bit would hold), then (x01 - mean[c]) / std[c] per channel (no
// normalisation when `norm` is empty). Returns a new [N, C, H, W] tensor.
Tensor to_classifier_input(const Tensor& images, const data::NormStats& norm, float lo = -1.0f,
                           float hi = 1.0f);

// u8 images [N, C, H, W] -> pixel / 255, then normalised as above.
Tensor u8_to_classifier_input(const uint8_t* pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                              const data::NormStats& norm);

// The generator's [lo, hi] from its config "value_range" ([-1, 1] when absent).
std::pair<float, float> value_range(const nlohmann::json& generator_config);

// The checks judge_generator makes before any work, for callers that print a header first: usage
// Errors for bad counts, a sampler that does not fit the objective, or a classifier whose
// channels, image size or class count differ from the generator's.
void validate_judge(const models::UNet& generator, gen::Objective objective,
                    const nlohmann::json& classifier_config, const JudgeOptions& options);

// The real images of a run: options.real, or options.data loaded (split options.split), either
// conformed to channels x size x size. Usage Error when its class count is not `classes`.
data::Dataset load_real_images(const JudgeOptions& options, int64_t channels, int64_t size,
                               int64_t classes);

// Runs the judge. `classifier_config` is the classifier checkpoint's config (size, channels,
// classes, "preprocess"). Usage Errors when the classifier's channels, image size or class count
// differ from the generator's, or the real data's class count differs. Both models run in eval
// mode without gradients and get their previous mode back. Deterministic for a seed, batch size
// and thread count.
Judgement judge_generator(models::UNet& generator, gen::Objective objective,
                          models::Classifier& classifier, const nlohmann::json& classifier_config,
                          const JudgeOptions& options);

}  // namespace duet::eval
