// The gap report behind `duet gap`: understanding numbers (a classifier on the real test set)
// next to generation numbers (a generator judged as in `duet eval -m GEN --classifier C`: plain,
// guided and verified best-of-K sampling, conditional accuracy, FID-ref and friends), sample
// grids, and corruption robustness of the classifier vs the generator used as a classifier.
// Every number comes from the eval functions that `duet eval` uses; this file only assembles them.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "duet/data/corrupt.h"
#include "duet/data/dataset.h"
#include "duet/data/image.h"
#include "duet/eval/distribution_report.h"
#include "duet/eval/generative_classifier.h"
#include "duet/eval/judge.h"
#include "duet/models/classifier.h"
#include "duet/models/unet.h"
#include "duet/models/unified.h"
#include "duet/train/metrics.h"

namespace duet::eval {

// The models and data of a report, loaded and checked by the caller (cli/cmd_gap.cpp).
struct GapInputs {
  models::UNet* generator = nullptr;
  nlohmann::json generator_config;
  models::Classifier* classifier = nullptr;  // understanding side, verifier, reference network
  nlohmann::json classifier_config;
  models::Classifier* judge = nullptr;  // optional independent judge of conditional accuracy
  nlohmann::json judge_config;
  data::Dataset test;       // real test images at the generator's channels and size
  data::Dataset floor_set;  // the real-vs-real floor's candidates (another split)
  int64_t floor_skip = 0;   // see DistributionReportOptions::floor_skip
  // Identity of the reference network (the classifier) and the floor, for the distribution report.
  std::string classifier_path, classifier_sha256, floor_source;
  bool judge_is_classifier = false;  // the "independent" judge is the classifier's own file
  // Optional noise-aware classifier (train --noised): adds a classifier-guided sampling mode.
  models::Classifier* guide = nullptr;
  nlohmann::json guide_config;
  std::string guide_path;
  // Optional unified model (models/unified.h): its head is scored next to the classifier and its
  // UNet sampled like the generator's CFG mode, the one-network-for-both comparison.
  models::UnifiedNet* unified = nullptr;
  nlohmann::json unified_config;
};

struct GapOptions {
  int64_t per_class = 50;  // generated images per class and sampling mode
  int64_t batch = 100;     // images per sampler call
  gen::SampleOptions sample;
  double cfg = 2.0;  // the guided mode; the verified mode samples at this scale too
  int best_of = 4;
  // The classifier-guided mode (with GapInputs::guide): guidance scale and the CFG it runs at.
  double classifier_guidance = 0.0;
  double guide_cfg = 1.0;
  uint64_t seed = 0;  // sampling (all modes start from the same noises) and KID subsets
  int64_t classifier_batch = 256;
  // Robustness: `robust_images` test images picked by a Philox permutation of `robust_seed`,
  // each family at each severity (severity 0 = clean, always run), corruptions seeded by
  // `corrupt_seed` as `duet eval --corrupt` does.
  int64_t robust_images = 200;
  uint64_t robust_seed = 0, corrupt_seed = 0;
  std::vector<data::CorruptionKind> families = {
      data::CorruptionKind::noise, data::CorruptionKind::blur, data::CorruptionKind::contrast,
      data::CorruptionKind::occlusion};
  std::vector<int> severities = {2, 4};
  GenerativeOptions generative;  // lo / hi are taken from the generator's config
  int64_t grid_columns = 8;      // samples per class in each grid
  // One line per step of the work (to stderr in the CLI); may be empty.
  std::function<void(const std::string&)> progress;
};

// One sampling mode judged: by the classifier (which is also the verifier and the reference
// network of the distribution metrics) and, when given, by the independent judge on the same
// images.
struct GapSampling {
  // "plain" / "cfg" / "verified" / "classifier-guided" / "unified", a human label
  std::string name, label;
  double cfg = 1.0;
  int best_of = 1;
  int64_t passes_per_image = 0;  // generator passes
  double classifier_guidance = 0.0;
  int64_t classifier_passes_per_image = 0;  // guide classifier forward+backward passes
  Judgement by_classifier;
  std::optional<Judgement> by_judge;
  DistributionReport distribution;
  data::Image grid;  // the first grid_columns samples of each class, one labelled row per class
  double seconds = 0.0;
};

// Accuracy of both classifiers on one condition of the robustness subset.
struct GapRobustPoint {
  std::string family;  // "clean" or a corruption family
  int severity = 0;    // 0 for clean
  train::ClassifyMetrics discriminative, generative;
  int64_t generative_passes = 0, generative_full_passes = 0;
  double seconds = 0.0;
};

struct GapReport {
  std::vector<std::string> class_names;
  train::ClassifyMetrics understanding;                    // classifier on the whole test set
  std::optional<train::ClassifyMetrics> judge_accuracy;    // the judge on the same test set
  std::optional<train::ClassifyMetrics> unified_accuracy;  // the unified model's head, likewise
  // Parameters of the separate pair (classifier + generator) and of the unified model.
  int64_t separate_parameters = 0, unified_parameters = 0;
  std::vector<GapSampling> sampling;       // plain (CFG 1), CFG, verified
  std::vector<int64_t> robust_indices;     // test-set indices of the subset
  std::vector<GapRobustPoint> robustness;  // clean first, then family x severity
  nlohmann::json settings;  // the options that shaped the numbers (filled by gap_report)
  nlohmann::json timings;   // seconds per section
  // Filled by the caller before to_json: command line, model paths / sha256 / configs, versions.
  nlohmann::json provenance = nlohmann::json::object();

  // {"provenance", "settings", "class_names", "gap", "understanding", "generation",
  //  "per_class", "robustness", "targets", "timings"}; see docs/gap.md.
  nlohmann::json to_json() const;
};

// The checks gap_report makes before any work, for callers that create folders or print a
// header first: usage Errors for bad options or models that do not fit each other or the data.
void validate_gap(const GapInputs& inputs, const GapOptions& options);

// The whole report. Usage Errors (before any long work) for bad options or models whose
// channels, size or class counts do not fit. Deterministic for the seeds and thread count.
GapReport gap_report(GapInputs& inputs, const GapOptions& options);

// The seeded robustness subset: `count` (capped at n) indices of [0, n), sorted.
std::vector<int64_t> robust_subset(int64_t n, int64_t count, uint64_t seed);

// The targets of the issue as rows {"target", "threshold", "measured", "met", "margin",
// "detail"}: conditional accuracy of verified sampling >= 98 % (by the judge when there is one),
// generative classifier >= 88 % clean, and more robust than the discriminative classifier on at
// least one corruption family (mean accuracy over the severities); with a unified model, its
// accuracy within 1 point of the classifier's and its FID-ref (CFG mode) at most 10 % above the
// generator's. Rows that compare two numbers carry "difference": true (measured in points).
nlohmann::json gap_targets(const GapReport& r);

}  // namespace duet::eval
