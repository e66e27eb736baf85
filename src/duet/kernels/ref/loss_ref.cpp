// Reference losses: every row and element in double, written from the formulas in loss.h.
#include <algorithm>
#include <cmath>

#include "duet/kernels/loss.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {

float cross_entropy(int64_t n, int64_t c, const float* logits, const int32_t* targets,
                    float label_smoothing, float grad, float* dlogits) {
  DUET_CHECK(n >= 1 && c >= 1, "cross_entropy: expected logits [n >= 1, c >= 1], got ", n, "x", c);
  DUET_CHECK(label_smoothing >= 0.0f && label_smoothing < 1.0f,
             "cross_entropy: label_smoothing must be in [0, 1), got ", label_smoothing);
  for (int64_t i = 0; i < n; ++i)
    DUET_CHECK(targets[i] >= 0 && targets[i] < c, "cross_entropy: target[", i, "] = ", targets[i],
               " is outside [0, ", c, ")");
  const double eps = label_smoothing;
  double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    const float* x = logits + r * c;
    const double m = *std::max_element(x, x + c);
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += std::exp(x[j] - m);
    const double lse = m + std::log(s);
    double nll = 0, smooth = 0;  // -log p[target], mean_j -log p[j]
    for (int64_t j = 0; j < c; ++j) {
      const double neg_log_p = lse - x[j];
      if (j == targets[r]) nll = neg_log_p;
      smooth += neg_log_p / double(c);
    }
    total += (1 - eps) * nll + eps * smooth;
    if (dlogits) {
      for (int64_t j = 0; j < c; ++j) {
        const double p = std::exp(x[j] - lse);
        const double want = (j == targets[r] ? 1 - eps : 0.0) + eps / double(c);
        dlogits[r * c + j] = static_cast<float>(grad * (p - want) / double(n));
      }
    }
  }
  return static_cast<float>(total / double(n));
}

float mse_forward(int64_t n, const float* a, const float* b) {
  DUET_CHECK(n >= 1, "mse_forward: expected at least one element, got ", n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return static_cast<float>(s / double(n));
}

void mse_backward(int64_t n, const float* a, const float* b, float grad, float* da, float* db) {
  DUET_CHECK(n >= 1, "mse_backward: expected at least one element, got ", n);
  for (int64_t i = 0; i < n; ++i) {
    const double d = 2.0 * grad * (double(a[i]) - b[i]) / double(n);
    if (da) da[i] = static_cast<float>(d);
    if (db) db[i] = static_cast<float>(-d);
  }
}

}  // namespace duet::kernels::ref
