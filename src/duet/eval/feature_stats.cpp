#include "duet/eval/feature_stats.h"

#include <cmath>
#include <limits>
#include <numeric>

#include "duet/tensor/error.h"

namespace duet::eval {
namespace {

double average(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

double FeatureStats::mean_of_means() const {
  return average(mean);
}

double FeatureStats::mean_of_stds() const {
  return average(std);
}

nlohmann::json FeatureStats::to_json() const {
  return {{"count", count}, {"mean", mean_of_means()}, {"std", mean_of_stds()}};
}

FeatureStats feature_stats(const float* rows, int64_t n, int64_t dim) {
  DUET_CHECK(n >= 0 && dim >= 1, "feature_stats: need n >= 0 rows of dim >= 1, got ", n, " x ",
             dim);
  FeatureStats s;
  s.count = n;
  if (n == 0) return s;
  const auto d = static_cast<size_t>(dim);
  s.mean.assign(d, 0.0);
  s.std.assign(d, 0.0);
  for (int64_t r = 0; r < n; ++r)
    for (size_t j = 0; j < d; ++j) s.mean[j] += rows[static_cast<size_t>(r) * d + j];
  for (double& m : s.mean) m /= static_cast<double>(n);
  for (int64_t r = 0; r < n; ++r)
    for (size_t j = 0; j < d; ++j) {
      const double e = rows[static_cast<size_t>(r) * d + j] - s.mean[j];
      s.std[j] += e * e;
    }
  for (double& v : s.std) v = std::sqrt(v / static_cast<double>(n));
  return s;
}

double mean_distance(const FeatureStats& a, const FeatureStats& b) {
  if (a.count == 0 || b.count == 0) return std::numeric_limits<double>::quiet_NaN();
  DUET_CHECK(a.mean.size() == b.mean.size(), "mean_distance: feature widths differ (",
             a.mean.size(), " vs ", b.mean.size(), ")");
  double sq = 0.0;
  for (size_t j = 0; j < a.mean.size(); ++j)
    sq += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]);
  return std::sqrt(sq);
}

}  // namespace duet::eval
