// Reference softmax family: per row, in double, straight from the definitions.
#include <algorithm>
#include <cmath>

#include "duet/kernels/softmax.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {
namespace {

void check(const char* what, int64_t rows, int64_t cols) {
  DUET_CHECK(rows >= 0 && cols >= 1, what, ": expected rows >= 0 and cols >= 1, got ", rows, "x",
             cols);
}

// log(sum(exp(x))) of one row, shifted by the maximum so exp never overflows.
double log_sum_exp(int64_t cols, const float* x) {
  const double m = *std::max_element(x, x + cols);
  double s = 0;
  for (int64_t j = 0; j < cols; ++j) s += std::exp(double(x[j]) - m);
  return m + std::log(s);
}

}  // namespace

void softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
  check("softmax_forward", rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const double lse = log_sum_exp(cols, x + r * cols);
    for (int64_t j = 0; j < cols; ++j)
      y[r * cols + j] = static_cast<float>(std::exp(double(x[r * cols + j]) - lse));
  }
}

void softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
  check("softmax_backward", rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += double(dy[o + j]) * y[o + j];
    for (int64_t j = 0; j < cols; ++j) dx[o + j] = static_cast<float>(y[o + j] * (dy[o + j] - s));
  }
}

void log_softmax_forward(int64_t rows, int64_t cols, const float* x, float* y) {
  check("log_softmax_forward", rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const double lse = log_sum_exp(cols, x + r * cols);
    for (int64_t j = 0; j < cols; ++j)
      y[r * cols + j] = static_cast<float>(double(x[r * cols + j]) - lse);
  }
}

void log_softmax_backward(int64_t rows, int64_t cols, const float* y, const float* dy, float* dx) {
  check("log_softmax_backward", rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += dy[o + j];
    for (int64_t j = 0; j < cols; ++j)
      dx[o + j] = static_cast<float>(dy[o + j] - std::exp(double(y[o + j])) * s);
  }
}

}  // namespace duet::kernels::ref
