// conv2d behaviour the compare table cannot express: bad shapes throw duet::Error instead of
// reading out of bounds, the batch-parallel weight gradient is bit-identical across runs, and
// which 3x3 convolutions the channel-major Winograd takes.
#include <gtest/gtest.h>

#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/isa.h"
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

TEST(Conv2d, WinogradTakesWideStrideOneConvsOnly) {
  if (!duet::kernels::isa_at_least(duet::kernels::Isa::avx2)) GTEST_SKIP() << "no AVX2";
  auto shape = [](int64_t c, int64_t k, int64_t hw, int64_t stride, int64_t pad) {
    Conv2dShape s;
    s.batch = 8;
    s.in_channels = c;
    s.out_channels = k;
    s.in_h = s.in_w = hw;
    s.kernel_h = s.kernel_w = 3;
    s.stride_h = s.stride_w = stride;
    s.pad_h = s.pad_w = pad;
    return s;
  };
  using duet::kernels::conv2d_takes_winograd;
  for (bool grad : {false, true}) {
    EXPECT_TRUE(conv2d_takes_winograd(shape(32, 32, 14, 1, 1), grad));   // ResNet-20 stage 2
    EXPECT_TRUE(conv2d_takes_winograd(shape(256, 128, 7, 1, 1), grad));  // unet-s skip concat
    EXPECT_TRUE(conv2d_takes_winograd(shape(32, 48, 10, 1, 0), grad));   // grad: padding 2
    EXPECT_FALSE(conv2d_takes_winograd(shape(16, 16, 28, 1, 1), grad));  // too narrow
    EXPECT_FALSE(conv2d_takes_winograd(shape(32, 16, 28, 1, 1), grad));
    EXPECT_FALSE(conv2d_takes_winograd(shape(32, 64, 14, 2, 1), grad));  // stride 2
    EXPECT_FALSE(conv2d_takes_winograd(shape(64, 64, 5, 1, 1), grad));   // 9 tiles
  }
  duet::kernels::set_winograd(false);
  EXPECT_FALSE(conv2d_takes_winograd(shape(32, 32, 14, 1, 1), false));
  duet::kernels::set_winograd(true);
}

}  // namespace
