// conv2d behaviour the compare table cannot express: bad shapes throw duet::Error instead of
// reading out of bounds, and the batch-parallel weight gradient is bit-identical across runs.
#include <gtest/gtest.h>

#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/tensor/error.h"

namespace {

using duet::kernels::Conv2dShape;

Conv2dShape small_shape() {
  Conv2dShape s;
  s.batch = 2;
  s.in_channels = 4;
  s.out_channels = 6;
  s.in_h = s.in_w = 5;
  s.kernel_h = s.kernel_w = 3;
  s.pad_h = s.pad_w = 1;
  return s;
}

TEST(Conv2d, RejectsBadShapes) {
  std::vector<float> buf(4096, 0.0f);
  float* p = buf.data();
  auto bad = small_shape();
  bad.groups = 3;  // does not divide 4 input channels
  EXPECT_THROW(duet::kernels::conv2d_forward(bad, p, p, p), duet::Error);
  bad = small_shape();
  bad.pad_h = bad.pad_w = 0;
  bad.kernel_h = 7;  // larger than the unpadded 5x5 input
  EXPECT_THROW(duet::kernels::conv2d_backward_data(bad, p, p, p), duet::Error);
  bad = small_shape();
  bad.stride_w = 0;
  EXPECT_THROW(duet::kernels::conv2d_backward_weight(bad, p, p, p, nullptr), duet::Error);
  bad = small_shape();
  bad.in_h = -1;
  EXPECT_THROW(duet::kernels::ref::conv2d_forward(bad, p, p, p), duet::Error);
  EXPECT_THROW(duet::kernels::conv2d_forward(small_shape(), nullptr, p, p), duet::Error);
}

TEST(Conv2d, WeightGradientIsDeterministic) {
  Conv2dShape s = small_shape();
  s.batch = 7;
  s.in_h = s.in_w = 9;
  std::vector<float> x(size_t(s.batch * s.in_channels * s.in_h * s.in_w));
  std::vector<float> dy(size_t(s.batch * s.out_channels * s.out_h() * s.out_w()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 37) % 101) / 50.0f - 1.0f;
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = float((i * 53) % 97) / 48.0f - 1.0f;
  const size_t nw = size_t(s.out_channels * s.in_channels * 9);
  std::vector<float> dw1(nw), dw2(nw), db1(6), db2(6);
  duet::kernels::conv2d_backward_weight(s, x.data(), dy.data(), dw1.data(), db1.data());
  duet::kernels::conv2d_backward_weight(s, x.data(), dy.data(), dw2.data(), db2.data());
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(db1, db2);
  float norm = 0;
  for (float v : dw1) norm += v * v;
  EXPECT_GT(norm, 0.0f);
}

}  // namespace
