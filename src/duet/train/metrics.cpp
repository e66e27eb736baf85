#include "duet/train/metrics.h"

#include <algorithm>
#include <cmath>

#include "duet/tensor/error.h"

namespace duet::train {

int64_t argmax_row(const float* probs, int64_t row, int64_t k) {
  const float* p = probs + row * k;
  int64_t best = 0;
  for (int64_t j = 1; j < k; ++j)
    if (p[j] > p[best]) best = j;
  return best;
}

ClassifyMetrics classify_metrics(const float* probs, const int32_t* labels, int64_t n, int64_t k,
                                 int ece_bins) {
  DUET_CHECK(n >= 0 && k >= 1, "metrics: bad sizes n=", n, " k=", k);
  DUET_CHECK(ece_bins >= 1, "metrics: ece_bins must be >= 1, got ", ece_bins);
  ClassifyMetrics m;
  m.count = n, m.num_classes = k, m.ece_bins = ece_bins;
  m.class_accuracy.assign(static_cast<size_t>(k), 0.0);
  m.class_count.assign(static_cast<size_t>(k), 0);
  m.confusion.assign(static_cast<size_t>(k * k), 0);
  std::vector<double> bin_conf(static_cast<size_t>(ece_bins), 0.0);
  std::vector<int64_t> bin_correct(static_cast<size_t>(ece_bins), 0), bin_n(bin_correct);
  int64_t correct = 0;
  double nll = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = labels[i];
    DUET_CHECK(y >= 0 && y < k, "metrics: label ", y, " of image ", i, " outside [0, ", k, ")");
    const int64_t pred = argmax_row(probs, i, k);
    const double conf = probs[i * k + pred];
    const bool ok = pred == y;
    correct += ok;
    nll -= std::log(std::max(static_cast<double>(probs[i * k + y]), 1e-30));
    ++m.class_count[static_cast<size_t>(y)];
    ++m.confusion[static_cast<size_t>(y * k + pred)];
    // Bin b holds confidences in (b/B, (b+1)/B]; confidence 0 falls in bin 0.
    int b = static_cast<int>(std::ceil(conf * ece_bins)) - 1;
    b = std::clamp(b, 0, ece_bins - 1);
    bin_conf[static_cast<size_t>(b)] += conf;
    bin_correct[static_cast<size_t>(b)] += ok;
    ++bin_n[static_cast<size_t>(b)];
  }
  if (n > 0) {
    m.accuracy = static_cast<double>(correct) / static_cast<double>(n);
    m.mean_loss = nll / static_cast<double>(n);
    for (int b = 0; b < ece_bins; ++b) {
      const auto bi = static_cast<size_t>(b);
      if (bin_n[bi] == 0) continue;
      const double nb = static_cast<double>(bin_n[bi]);
      m.ece += nb / static_cast<double>(n) *
               std::abs(static_cast<double>(bin_correct[bi]) / nb - bin_conf[bi] / nb);
    }
  }
  for (int64_t c = 0; c < k; ++c) {
    const auto ci = static_cast<size_t>(c);
    if (m.class_count[ci] > 0)
      m.class_accuracy[ci] =
          static_cast<double>(m.confusion_at(c, c)) / static_cast<double>(m.class_count[ci]);
  }
  return m;
}

nlohmann::json ClassifyMetrics::to_json(const std::vector<std::string>& class_names) const {
  nlohmann::json per_class = nlohmann::json::array(), conf = nlohmann::json::array();
  for (int64_t c = 0; c < num_classes; ++c) {
    const auto ci = static_cast<size_t>(c);
    per_class.push_back({{"class", c},
                         {"name", ci < class_names.size() ? class_names[ci] : std::to_string(c)},
                         {"count", class_count[ci]},
                         {"accuracy", class_accuracy[ci]}});
    nlohmann::json row = nlohmann::json::array();
    for (int64_t p = 0; p < num_classes; ++p) row.push_back(confusion_at(c, p));
    conf.push_back(row);
  }
  return {{"count", count},       {"accuracy", accuracy},   {"loss", mean_loss}, {"ece", ece},
          {"ece_bins", ece_bins}, {"per_class", per_class}, {"confusion", conf}};
}

}  // namespace duet::train
