// Summary statistics of sets of classifier features (rows of [n, F]): per-dimension mean and
// standard deviation, and the distance between two sets' mean vectors. A stand-in for FID-style
// metrics when comparing real and generated images of one class.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace duet::eval {

struct FeatureStats {
  int64_t count = 0;         // rows summarised
  std::vector<double> mean;  // per dimension (empty when count is 0)
  std::vector<double> std;   // per dimension, population std (divides by count)

  double mean_of_means() const;  // average over dimensions of `mean`; 0 when empty
  double mean_of_stds() const;   // average over dimensions of `std`; 0 when empty
  // {"count", "mean", "std"}: the two averages (the per-dimension vectors stay out of reports).
  nlohmann::json to_json() const;
};

// Statistics of n rows of `dim` floats (row-major), accumulated in double in row order, two
// passes (mean, then squared deviations), so the result does not depend on the thread count.
FeatureStats feature_stats(const float* rows, int64_t n, int64_t dim);

// Euclidean distance between the mean vectors of two summaries of the same width; NaN when
// either summarises no rows.
double mean_distance(const FeatureStats& a, const FeatureStats& b);

}  // namespace duet::eval
