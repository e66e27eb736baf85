// The distribution metrics of a judge run (eval/judge.h) in a reference network's penultimate
// features: per class and overall, generated vs real, plus the real-vs-real floor (real images of
// another split vs the same real images, at the same counts), which shows what "as good as real
// data" looks like at this sample size.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/data/augment.h"
#include "duet/data/dataset.h"
#include "duet/eval/distribution_metrics.h"
#include "duet/eval/judge.h"
#include "duet/models/classifier.h"

namespace duet::eval {

struct DistributionReportOptions {
  DistributionOptions metrics;  // metrics.kid.seed is replaced by one derived from `seed`
  uint64_t seed = 0;            // KID subsets of comparison i use a seed derived from (seed, i)
  int64_t batch = 100;          // images per reference-network call
  // The floor's images of class c are its first per_class images after skipping `floor_skip` of
  // that class: 0 for another split, per_class when the floor comes from the real set itself.
  int64_t floor_skip = 0;
};

struct DistributionReport {
  // Filled by the caller: what the reference network is and where the floor's images come from.
  std::string reference_path, reference_sha256, floor_source;
  bool reference_is_judge = false;
  int64_t feature_dim = 0;
  // Reference set = real images (the judge's split); candidate = generated, or for the floor the
  // other split's real images. Per class, then pooled over all classes.
  std::vector<DistributionMetrics> classes, floor_classes;
  DistributionMetrics overall, floor;

  // {"reference": {"path", "sha256", "version" (eval/reference_version.h, null for an unversioned
  //  network), "is_judge", "feature_dim"}, "floor_source",
  //  "overall", "floor", "classes": [{"class", "name", "generated", "floor"}]}
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
};

// Penultimate features [n, F] (row-major) of u8 images [n, C, H, W] prepared as the reference
// network's training did (pixel / 255, its "preprocess" normalisation), `batch` at a time.
std::vector<float> features_of_u8(models::Classifier& reference, const nlohmann::json& config,
                                  const data::Dataset& images, int64_t batch);
// The same for generated images in the generator's value range [lo, hi] (see
// to_classifier_input), e.g. Judgement::images.
std::vector<float> features_of_generated(models::Classifier& reference,
                                         const nlohmann::json& config, const Tensor& images,
                                         float lo, float hi, int64_t batch);

// Indices of the first `count` images of class `cls` in `d` after skipping `skip` of them, in data
// set order (fewer when the class runs out).
std::vector<int64_t> class_indices(const data::Dataset& d, int32_t cls, int64_t skip,
                                   int64_t count);

// The report for judge run `j`. `real` is the judge's real set (its first per_class images of each
// class are the reference set, as in the judge); `floor_set` supplies the floor's candidates.
// `generated_features` may hold the reference network's features of j.images already (when the
// reference is the judge's classifier, j.features); else they are computed from j.images with
// [lo, hi]. Usage Error when the reference network's input size or channels differ from the
// images'. The reference network runs in eval mode without gradients and gets its mode back.
DistributionReport distribution_report(const Judgement& j, models::Classifier& reference,
                                       const nlohmann::json& reference_config,
                                       const data::Dataset& real, const data::Dataset& floor_set,
                                       const DistributionReportOptions& options,
                                       const std::vector<float>* generated_features, float lo,
                                       float hi);

}  // namespace duet::eval
