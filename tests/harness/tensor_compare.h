// Comparing a tensor with a golden one in the tests: the largest absolute difference, or the
// largest difference relative to the golden tensor's scale, in double.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "duet/tensor/tensor.h"

namespace duet::test {

// max |a - b| over all elements; a shape mismatch is a test failure and returns infinity.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i)
    m = std::max(m, std::fabs(static_cast<double>(va[i]) - static_cast<double>(vb[i])));
  return m;
}

// max |a - b| / max(max |b|, 1e-3): the error relative to the golden b's largest magnitude (a
// floor keeps near-zero tensors from inflating it); infinity on a shape mismatch.
inline double relative_error(const Tensor& a, const Tensor& b) {
  const double diff = max_abs_diff(a, b);
  double scale = 1e-3;
  for (float v : b.to_vector()) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  return diff / scale;
}

}  // namespace duet::test
