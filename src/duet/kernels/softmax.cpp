#include "duet/kernels/softmax.h"

#include <algorithm>
#include <cmath>

#include "duet/kernels/nn_vec.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

void check(const char* what, int64_t rows, int64_t cols) {
  DUET_CHECK(rows >= 0 && cols >= 1, what, ": expected rows >= 0 and cols >= 1, got ", rows, "x",
             cols);
}

// Rows per thread chunk so that a chunk holds at least ~16k elements.
int64_t row_grain(int64_t cols) {
  return std::max<int64_t>(1, 16384 / cols);
}

}  // namespace

void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
  check("softmax_forward", rows, cols);
  const auto& v = detail::nn_vec();
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      const float s = v.exp_sum(cols, xr, v.max(cols, xr), yr);
      v.affine(cols, yr, 1.0f / s, 0.0f, yr);
    }
  });
}

void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
  check("softmax_backward", rows, cols);
  const auto& v = detail::nn_vec();
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r * cols;
      v.softmax_bwd(cols, y + o, dy + o, v.dot(cols, y + o, dy + o), dx + o);
    }
  });
}

void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
  check("log_softmax_forward", rows, cols);
  const auto& v = detail::nn_vec();
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * cols;
      const float m = v.max(cols, xr);
      const float log_s = std::log(v.exp_sum(cols, xr, m, nullptr));
      // (x - m) - log_s rather than x - (m + log_s): m + log_s would round at the scale of m.
      v.affine(cols, xr, 1.0f, -m, y + r * cols);
      v.affine(cols, y + r * cols, 1.0f, -log_s, y + r * cols);
    }
  });
}

void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
  check("log_softmax_backward", rows, cols);
  const auto& v = detail::nn_vec();
  parallel_for(rows, row_grain(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r * cols;
      v.log_softmax_bwd(cols, y + o, dy + o, v.sum(cols, dy + o), dx + o);
    }
  });
}

}  // namespace duet::kernels
