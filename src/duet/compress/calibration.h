// Activation calibration for int8: observe a layer's inputs over calibration images, then choose
// the range [lo, hi] to quantise, by one of three rules:
//   minmax      the whole observed range (no clipping; one outlier can waste most levels),
//   percentile  clip |x| at the given percentile of the observed magnitudes,
//   kl          clip |x| where the quantised histogram is closest to the original in
//               Kullback-Leibler divergence (the "entropy" calibration of TensorRT's talk).
// Statistics are counts and extremes, so the result does not depend on the order or threads.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace duet::compress {

enum class CalibrationMethod { minmax, percentile, kl };
std::optional<CalibrationMethod> parse_calibration_method(const std::string& name);
std::string calibration_method_name(CalibrationMethod m);

class RangeObserver {
 public:
  static constexpr int64_t kBins = 2048;

  // Pass 1: extremes. Non-finite values are an Error (a broken model should not calibrate).
  void observe_range(const float* x, int64_t n);
  // Pass 2 (percentile and kl): histogram of |x| over [0, max(|min|, |max|)] from pass 1;
  // exact zeros are left out (every range represents them exactly).
  void observe_histogram(const float* x, int64_t n);

  bool seen() const { return count_ > 0; }
  float min() const { return min_; }
  float max() const { return max_; }
  const std::vector<int64_t>& histogram() const { return hist_; }

  // The range to quantise: [min, max] clipped to [-T, T] with T from the method. minmax needs
  // only pass 1; the others need pass 2 too (Error otherwise).
  std::pair<float, float> choose(CalibrationMethod method, double percentile = 99.99) const;

 private:
  float amax() const;
  std::mutex mutex_;  // callers may observe from several threads
  int64_t count_ = 0;
  float min_ = 0.0f, max_ = 0.0f;
  std::vector<int64_t> hist_;
};

// The thresholds behind choose(), on a histogram of magnitudes with bins of width bin_width.
// percentile: the upper edge of the bin where the cumulative count reaches pct % of the total.
float percentile_threshold(const std::vector<int64_t>& hist, float bin_width, double pct);
// kl: over candidate edges i >= levels, the one minimising KL(P || Q), where P is the first i
// bins with the tail folded into bin i-1, and Q is P's first i bins merged into `levels` equal
// groups and spread back evenly over each group's non-empty bins.
float kl_threshold(const std::vector<int64_t>& hist, float bin_width, int levels);

}  // namespace duet::compress
