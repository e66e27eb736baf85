#include "duet/kernels/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/kernels/nn_vec.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

// Loss sums are taken per fixed block and the block partials added in order, so the result is
// the same for every thread count.
constexpr int64_t kRowBlock = 64;
constexpr int64_t kElemBlock = 8192;

void check_targets(int64_t n, int64_t c, const int32_t* targets) {
  for (int64_t i = 0; i < n; ++i)
    DUET_CHECK(targets[i] >= 0 && targets[i] < c, "cross_entropy: target[", i, "] = ", targets[i],
               " is outside [0, ", c, ")");
}

}  // namespace

float cross_entropy(int64_t n, int64_t c, const float* logits, const int32_t* targets,
                    float label_smoothing, float grad, float* dlogits) {
  DUET_CHECK(n >= 1 && c >= 1, "cross_entropy: expected logits [n >= 1, c >= 1], got ", n, "x", c);
  DUET_CHECK(label_smoothing >= 0.0f && label_smoothing < 1.0f,
             "cross_entropy: label_smoothing must be in [0, 1), got ", label_smoothing);
  check_targets(n, c, targets);
  const auto& v = detail::nn_vec();
  const double eps = label_smoothing;
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
  std::vector<double> partial(blocks, 0.0);
  const float g_n = grad / static_cast<float>(n);
  const float smooth = static_cast<float>(eps / c) * g_n;
  const float hit = static_cast<float>(1.0 - eps) * g_n;
  parallel_for(blocks, 1, [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      double acc = 0;
      const int64_t r_end = std::min(n, (blk + 1) * kRowBlock);
      for (int64_t r = blk * kRowBlock; r < r_end; ++r) {
        const float* x = logits + r * c;
        const int32_t t = targets[r];
        const float m = v.max(c, x);
        float* d = dlogits ? dlogits + r * c : nullptr;
        const float s = v.exp_sum(c, x, m, d);
        const double lse = double(m) + std::log(double(s));
        acc += lse - (1.0 - eps) * x[t];
        if (eps > 0) acc -= eps * double(v.sum(c, x)) / double(c);
        if (d) {
          v.affine(c, d, g_n / s, -smooth, d);
          d[t] -= hit;
        }
      }
      partial[blk] = acc;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return static_cast<float>(total / double(n));
}

float mse_forward(int64_t n, const float* a, const float* b) {
  DUET_CHECK(n >= 1, "mse_forward: expected at least one element, got ", n);
  const int64_t blocks = (n + kElemBlock - 1) / kElemBlock;
  std::vector<double> partial(blocks, 0.0);
  parallel_for(blocks, 4, [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      float acc[8] = {};
      const int64_t e = std::min(n, (blk + 1) * kElemBlock);
      int64_t i = blk * kElemBlock;
      for (; i + 8 <= e; i += 8)
        for (int l = 0; l < 8; ++l) {
          const float d = a[i + l] - b[i + l];
          acc[l] += d * d;
        }
      for (int l = 0; i < e; ++i, ++l) acc[l] += (a[i] - b[i]) * (a[i] - b[i]);
      double s = 0;
      for (float x : acc) s += x;
      partial[blk] = s;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return static_cast<float>(total / double(n));
}

void mse_backward(int64_t n, const float* a, const float* b, float grad, float* da, float* db) {
  DUET_CHECK(n >= 1, "mse_backward: expected at least one element, got ", n);
  const float k = 2.0f * grad / static_cast<float>(n);
  parallel_for(n, 32768, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const float d = k * (a[i] - b[i]);
      if (da) da[i] = d;
      if (db) db[i] = -d;
    }
  });
}

}  // namespace duet::kernels
