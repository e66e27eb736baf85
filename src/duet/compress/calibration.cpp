#include "duet/compress/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "duet/kernels/conv2d_int8.h"
#include "duet/tensor/error.h"

namespace duet::compress {

std::optional<CalibrationMethod> parse_calibration_method(const std::string& name) {
  if (name == "minmax") return CalibrationMethod::minmax;
  if (name == "percentile") return CalibrationMethod::percentile;
  if (name == "kl") return CalibrationMethod::kl;
  return std::nullopt;
}

std::string calibration_method_name(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::minmax:
      return "minmax";
    case CalibrationMethod::percentile:
      return "percentile";
    case CalibrationMethod::kl:
      return "kl";
  }
  return "?";
}

void RangeObserver::observe_range(const float* x, int64_t n) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int64_t i = 0; i < n; ++i) {
    DUET_CHECK(std::isfinite(x[i]), "calibration: a layer input is not finite (", x[i],
               "); the model or the calibration data is broken");
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (n == 0) return;
  min_ = count_ ? std::min(min_, lo) : lo;
  max_ = count_ ? std::max(max_, hi) : hi;
  count_ += n;
}

float RangeObserver::amax() const {
  return std::max(std::fabs(min_), std::fabs(max_));
}

void RangeObserver::observe_histogram(const float* x, int64_t n) {
  DUET_CHECK(seen(), "calibration: the histogram pass needs the range pass first");
  std::vector<int64_t> local(kBins, 0);
  const float a = amax();
  const float per_bin = a > 0.0f ? float(kBins) / a : 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    // Exact zeros (most of a post-ReLU input) are represented exactly by every range, so they
    // say nothing about where to clip; counting them would swamp the histogram's first bin.
    if (x[i] == 0.0f) continue;
    const int64_t b = std::min<int64_t>(kBins - 1, int64_t(std::fabs(x[i]) * per_bin));
    ++local[size_t(b)];
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (hist_.empty()) hist_.assign(kBins, 0);
  for (int64_t b = 0; b < kBins; ++b) hist_[size_t(b)] += local[size_t(b)];
}

std::pair<float, float> RangeObserver::choose(CalibrationMethod method, double percentile) const {
  DUET_CHECK(seen(), "calibration: no inputs were observed for this layer");
  if (method == CalibrationMethod::minmax) return {min_, max_};
  DUET_CHECK(!hist_.empty(), "calibration: ", calibration_method_name(method),
             " needs the histogram pass");
  const float a = amax();
  if (a == 0.0f) return {0.0f, 0.0f};
  const float width = a / float(kBins);
  // Signed inputs spend half the 128 levels on each side of zero.
  const int levels = min_ < 0.0f ? kernels::kActivationLevels / 2 : kernels::kActivationLevels;
  const float t = method == CalibrationMethod::percentile
                      ? percentile_threshold(hist_, width, percentile)
                      : kl_threshold(hist_, width, levels);
  return {std::max(min_, -t), std::min(max_, t)};
}

float percentile_threshold(const std::vector<int64_t>& hist, float bin_width, double pct) {
  DUET_CHECK(pct > 0.0 && pct <= 100.0, "calibration: percentile must be in (0, 100], got ", pct);
  int64_t total = 0;
  for (int64_t c : hist) total += c;
  if (total == 0) return 0.0f;
  const double want = pct / 100.0 * double(total);
  int64_t cum = 0;
  for (size_t b = 0; b < hist.size(); ++b) {
    cum += hist[b];
    if (double(cum) >= want) return float(b + 1) * bin_width;
  }
  return float(hist.size()) * bin_width;
}

float kl_threshold(const std::vector<int64_t>& hist, float bin_width, int levels) {
  const int64_t bins = int64_t(hist.size());
  DUET_CHECK(levels >= 2 && bins >= levels, "calibration: kl needs at least ", levels, " bins");
  std::vector<double> p(static_cast<size_t>(bins)), q(static_cast<size_t>(bins));
  double best_kl = std::numeric_limits<double>::infinity();
  int64_t best = bins;
  double tail = 0.0;
  for (int64_t b = levels; b < bins; ++b) tail += double(hist[size_t(b)]);
  for (int64_t i = levels; i <= bins; ++i) {
    if (i > levels) tail -= double(hist[size_t(i - 1)]);  // bin i-1 joins P proper
    // P: the first i bins, everything beyond folded into the last one (clipping keeps it).
    double p_total = 0.0;
    for (int64_t b = 0; b < i; ++b) p_total += p[size_t(b)] = double(hist[size_t(b)]);
    p[size_t(i - 1)] += tail;
    p_total += tail;
    if (p_total == 0.0) continue;
    // Q: the first i bins (without the tail) merged into `levels` groups, each group's count
    // spread evenly over its non-empty bins (an empty bin stays empty after quantisation).
    double q_total = 0.0;
    for (int64_t g = 0; g < levels; ++g) {
      const int64_t b0 = g * i / levels, b1 = (g + 1) * i / levels;
      double sum = 0.0;
      int64_t nonzero = 0;
      for (int64_t b = b0; b < b1; ++b) {
        sum += double(hist[size_t(b)]);
        nonzero += hist[size_t(b)] > 0;
      }
      for (int64_t b = b0; b < b1; ++b)
        q[size_t(b)] = hist[size_t(b)] > 0 ? sum / double(nonzero) : 0.0;
      q_total += sum;
    }
    double kl = 0.0;
    for (int64_t b = 0; b < i; ++b) {
      if (p[size_t(b)] == 0.0) continue;
      const double pb = p[size_t(b)] / p_total;
      // The folded tail can land in an empty bin of Q: smooth instead of an infinite KL.
      const double qb = q_total > 0.0 ? std::max(q[size_t(b)] / q_total, 1e-12) : 1e-12;
      kl += pb * std::log(pb / qb);
    }
    if (kl < best_kl) best_kl = kl, best = i;
  }
  return float(best) * bin_width;
}

}  // namespace duet::compress
