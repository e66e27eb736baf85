// conv2d behaviour the compare table cannot express: bad shapes throw duet::Error instead of
// reading out of bounds, the batch-parallel weight gradient is bit-identical across runs (also
// the Winograd one over many passes), and which 3x3 convolutions the channel-major Winograd takes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

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

// The op harness's shapes fit one pass of the Winograd weight gradient; training's do not. Here
// the chunks (8 with 2 threads) each run several passes whose tile rows cross image borders, in
// both variants, checked against the direct kernel (itself checked against the reference in the
// op harness) and for bit identity between runs.
TEST(Conv2d, WinogradWeightGradientOverManyPassesMatchesDirect) {
  if (!duet::kernels::isa_at_least(duet::kernels::Isa::avx2)) GTEST_SKIP() << "no AVX2";
  using duet::kernels::detail::set_winograd_tile;
  const int threads = duet::num_threads();
  duet::set_num_threads(2);
  for (int64_t tile : {2, 4})
    for (int64_t channels : {16, 32}) {
      Conv2dShape s;
      s.batch = 128 / (channels / 16);
      s.in_channels = s.out_channels = channels;
      s.in_h = 26;  // F(4x4)'s last tile row half outside
      s.in_w = 27;  // an odd width: the last tile of each row is partly outside
      s.kernel_h = s.kernel_w = 3;
      s.pad_h = s.pad_w = 1;
      set_winograd_tile(tile);
      ASSERT_TRUE(
          duet::kernels::conv2d_takes_winograd(s, duet::kernels::ConvPass::weight_gradient));
      std::vector<float> x(size_t(s.batch * s.in_channels * s.in_h * s.in_w));
      std::vector<float> dy(size_t(s.batch * s.out_channels * s.out_h() * s.out_w()));
      for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 37) % 101) / 50.0f - 1.0f;
      for (size_t i = 0; i < dy.size(); ++i) dy[i] = float((i * 53) % 97) / 48.0f - 1.0f;
      const size_t nw = size_t(channels * channels * 9), nk = size_t(channels);
      std::vector<float> wino(nw), again(nw), direct(nw), db_wino(nk), db_again(nk), db_direct(nk);
      duet::kernels::conv2d_backward_weight(s, x.data(), dy.data(), wino.data(), db_wino.data());
      duet::kernels::conv2d_backward_weight(s, x.data(), dy.data(), again.data(), db_again.data());
      set_winograd_tile(0);
      duet::kernels::set_winograd(false);
      duet::kernels::conv2d_backward_weight(s, x.data(), dy.data(), direct.data(),
                                            db_direct.data());
      duet::kernels::set_winograd(true);
      EXPECT_EQ(wino, again);
      EXPECT_EQ(db_wino, db_again);
      // Each weight sums batch x P x Q products of magnitude <= 1; both kernels accumulate in
      // float, so their rounding differs by far less than 2e-7 of that count (the largest
      // differences seen: 28-39x below it with F(2x2), 10-17x below with F(4x4), whose
      // transforms round more), while a wrong tile or pass is off by order 1.
      float scale = 0;
      for (float v : direct) scale = std::max(scale, std::abs(v));
      ASSERT_GT(scale, 10.0f);
      const float tolerance = 2e-7f * float(s.batch * s.out_h() * s.out_w());
      for (size_t i = 0; i < nw; ++i)
        ASSERT_NEAR(wino[i], direct[i], tolerance) << "F" << tile << " dw " << i;
      for (size_t k = 0; k < nk; ++k)
        EXPECT_NEAR(db_wino[k], db_direct[k], 1e-5f * std::abs(db_direct[k]) + 1e-2f) << k;
    }
  duet::set_num_threads(threads);
}

TEST(Conv2d, WhichPassesTakeWinograd) {
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
  using duet::kernels::ConvPass;
  for (ConvPass pass : {ConvPass::forward, ConvPass::input_gradient, ConvPass::weight_gradient}) {
    const bool weight = pass == ConvPass::weight_gradient;
    EXPECT_TRUE(conv2d_takes_winograd(shape(32, 32, 14, 1, 1), pass));   // ResNet-20 stage 2
    EXPECT_TRUE(conv2d_takes_winograd(shape(256, 128, 7, 1, 1), pass));  // unet-s skip concat
    EXPECT_TRUE(conv2d_takes_winograd(shape(32, 48, 10, 1, 0), pass));   // grad: padding 2
    EXPECT_FALSE(conv2d_takes_winograd(shape(32, 64, 14, 2, 1), pass));  // stride 2
    // 16 channels: wide enough for F(4x4, 3x3) (8 images of 49 4x4 tiles), not for F(2x2) in
    // the forward pass and input gradient, where the channels are the products' reduction (one
    // image of 7x7: 4 tiles of 4x4, so F(2x2)); the weight gradient reduces over the tiles.
    EXPECT_TRUE(conv2d_takes_winograd(shape(16, 16, 28, 1, 1), pass));  // ResNet-20 stage 1
    EXPECT_TRUE(conv2d_takes_winograd(shape(32, 16, 28, 1, 1), pass));
    Conv2dShape one_small = shape(16, 16, 7, 1, 1);
    one_small.batch = 1;
    EXPECT_EQ(conv2d_takes_winograd(one_small, pass), weight);
    EXPECT_FALSE(conv2d_takes_winograd(shape(8, 16, 28, 1, 1), pass));
    // 9 tiles an image: too few for the forward products; the weight gradient spans images.
    EXPECT_EQ(conv2d_takes_winograd(shape(64, 64, 5, 1, 1), pass), weight);
  }
  Conv2dShape dilated = shape(32, 32, 14, 1, 2);
  dilated.dilation_h = dilated.dilation_w = 2;
  EXPECT_FALSE(conv2d_takes_winograd(dilated, ConvPass::weight_gradient));
  Conv2dShape grouped = shape(32, 32, 14, 1, 1);
  grouped.groups = 2;
  EXPECT_FALSE(conv2d_takes_winograd(grouped, ConvPass::weight_gradient));
  duet::kernels::set_winograd(false);
  EXPECT_FALSE(conv2d_takes_winograd(shape(32, 32, 14, 1, 1), ConvPass::forward));
  EXPECT_FALSE(conv2d_takes_winograd(shape(32, 32, 14, 1, 1), ConvPass::weight_gradient));
  duet::kernels::set_winograd(true);
}

TEST(Conv2d, WhichWinogradVariant) {
  using duet::kernels::detail::set_winograd_tile;
  using duet::kernels::detail::winograd_tile;
  using duet::kernels::detail::WinogradLayout;
  auto shape = [](int64_t c, int64_t hw, int64_t batch = 8) {
    Conv2dShape s;
    s.batch = batch;
    s.in_channels = s.out_channels = c;
    s.in_h = s.in_w = hw;
    s.kernel_h = s.kernel_w = 3;
    s.pad_h = s.pad_w = 1;
    return s;
  };
  for (int64_t hw : {7, 14, 28}) {
    // Channel-major layers (training, the UNet) take F(4x4, 3x3) for 32 4x4 tiles a batch or
    // more (8 images of 7x7: four tiles each), channel-blocked ones from 16 (a folded
    // classifier's chunk of 4 images of 7x7; batch 1 at 14x14, not at 7x7).
    EXPECT_EQ(winograd_tile(shape(64, hw), WinogradLayout::channel_major), 4) << hw;
    EXPECT_EQ(winograd_tile(shape(16, hw), WinogradLayout::blocked), 4) << hw;
    EXPECT_EQ(winograd_tile(shape(16, hw, 4), WinogradLayout::blocked), 4) << hw;
    EXPECT_EQ(winograd_tile(shape(16, hw, 3), WinogradLayout::blocked), hw == 7 ? 2 : 4) << hw;
    EXPECT_EQ(winograd_tile(shape(64, hw, 1), WinogradLayout::channel_major), hw == 28 ? 4 : 2);
    EXPECT_EQ(winograd_tile(shape(64, hw, 1), WinogradLayout::blocked), hw == 7 ? 2 : 4);
  }
  // Under 16 tiles of 2x2 (6x6 maps): no Winograd, whichever variant is asked for.
  EXPECT_EQ(winograd_tile(shape(64, 6), WinogradLayout::channel_major), 0);
  set_winograd_tile(4);
  EXPECT_EQ(winograd_tile(shape(64, 6), WinogradLayout::channel_major), 0);
  EXPECT_EQ(winograd_tile(shape(16, 28), WinogradLayout::blocked), 4);
  // F(4x4)'s 36 transformed filters past the 16 MiB packing bound fall back to F(2x2)'s 16.
  EXPECT_EQ(winograd_tile(shape(352, 14), WinogradLayout::channel_major), 2);
  set_winograd_tile(2);
  EXPECT_EQ(winograd_tile(shape(64, 28), WinogradLayout::channel_major), 2);
  set_winograd_tile(0);
  EXPECT_THROW(set_winograd_tile(3), duet::Error);
}

}  // namespace
