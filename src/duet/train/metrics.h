// Classification metrics over predicted class probabilities: accuracy, per-class accuracy, the
// confusion matrix and expected calibration error. Pure functions of (probs, labels), shared by
// the trainer's per-epoch evaluation and `duet eval`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace duet::train {

struct ClassifyMetrics {
  int64_t count = 0, num_classes = 0;
  double accuracy = 0.0;
  double mean_loss = 0.0;  // mean negative log-likelihood of the true class
  double ece = 0.0;        // expected calibration error over `ece_bins` bins
  int ece_bins = 15;
  std::vector<double> class_accuracy;  // per true class; NaN-free: 0 for classes with no images
  std::vector<int64_t> class_count;    // images per true class
  std::vector<int64_t> confusion;      // [true][predicted], num_classes x num_classes, row-major

  int64_t confusion_at(int64_t truth, int64_t predicted) const {
    return confusion[static_cast<size_t>(truth * num_classes + predicted)];
  }
  // {"count", "accuracy", "loss", "ece", "ece_bins", "per_class": [{"class", "name", "count",
  // "accuracy"}], "confusion": [[...]]}; `class_names` may be empty (indices are used).
  nlohmann::json to_json(const std::vector<std::string>& class_names = {}) const;
};

// probs: n x k row-major probabilities (rows sum to ~1), labels: n entries in [0, k). Ties in
// the arg-max go to the lowest index. ECE: confidence (max prob) bins of equal width over [0, 1],
// sum over bins of |accuracy - mean confidence| weighted by the bin's share of the images.
ClassifyMetrics classify_metrics(const float* probs, const int32_t* labels, int64_t n, int64_t k,
                                 int ece_bins = 15);

// Index of the largest entry of row `row` (lowest index on ties).
int64_t argmax_row(const float* probs, int64_t row, int64_t k);

}  // namespace duet::train
