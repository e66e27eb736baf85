#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "duet/tensor/allocator.h"
#include "duet/tensor/dtype.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
#include "duet/tensor/tensor.h"

using namespace duet;

TEST(Philox, MatchesRandom123KnownAnswers) {
  // Known-answer vectors published with Random123 (kat_vectors, philox4x32_10).
  auto zero = philox4x32(0, 0, 0);
  EXPECT_EQ(zero[0], 0x6627e8d5u);
  EXPECT_EQ(zero[1], 0xe169c58du);
  EXPECT_EQ(zero[2], 0xbc57ac4cu);
  EXPECT_EQ(zero[3], 0x9b00dbd8u);
  auto ones = philox4x32(~0ull, ~0ull, ~0ull);
  EXPECT_EQ(ones[0], 0x408f276du);
  EXPECT_EQ(ones[1], 0x41c83b0eu);
  EXPECT_EQ(ones[2], 0xa20bc7c6u);
  EXPECT_EQ(ones[3], 0x6d5451fdu);
  auto pi = philox4x32(0x85a308d3243f6a88ull, 0x0370734413198a2eull, 0x299f31d0a4093822ull);
  EXPECT_EQ(pi[0], 0xd16cfe09u);
  EXPECT_EQ(pi[1], 0x94fdccebu);
  EXPECT_EQ(pi[2], 0x5001e420u);
  EXPECT_EQ(pi[3], 0x24126ea1u);
}

TEST(Generator, SameSeedSameNumbersAnyThreadCount) {
  std::vector<float> a(10001), b(10001);
  set_num_threads(1);
  Generator g1(42);
  g1.normal(a.data(), 10001);
  set_num_threads(2);
  Generator g2(42);
  g2.normal(b.data(), 10001);
  EXPECT_EQ(a, b);
  EXPECT_EQ(g1.offset(), 2501u);
}

TEST(Generator, NormalHasUnitMomentsAndUniformIsInRange) {
  const int n = 200000;
  std::vector<float> z(n), u(n);
  Generator g(7);
  g.normal(z.data(), n);
  g.uniform(u.data(), n, -2.0f, 3.0f);
  double mean = 0, sq = 0;
  for (float v : z) mean += v, sq += double(v) * v;
  mean /= n;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sq / n - mean * mean, 1.0, 0.02);
  for (float v : u) ASSERT_TRUE(v >= -2.0f && v < 3.0f);
  const double umean = std::accumulate(u.begin(), u.end(), 0.0) / n;
  EXPECT_NEAR(umean, 0.5, 0.02);
}

TEST(DType, HalfConversionsRoundTripAndRoundToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);                // overflow -> inf
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);       // smallest subnormal
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie -> even
  for (uint32_t h = 0; h < 0x7c00; ++h) ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_from_name("F8_E4M3"), DType::f8_e4m3);
  EXPECT_FALSE(dtype_from_name("F128").has_value());
}

TEST(Tensor, ViewsShareStorageAndIndexCorrectly) {
  std::vector<float> v(24);
  std::iota(v.begin(), v.end(), 0.0f);
  Tensor t = Tensor::from_vector(v, {2, 3, 4});
  Tensor p = t.permute({2, 0, 1});  // [4, 2, 3]
  EXPECT_EQ(p.shape(), Shape({4, 2, 3}));
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_TRUE(p.shares_storage(t));
  auto pv = p.to_vector();
  EXPECT_EQ(pv[1], 4.0f);       // p[0,0,1] = t[0,1,0]
  EXPECT_EQ(pv[3], 12.0f);      // p[0,1,0] = t[1,0,0]
  Tensor s = t.slice(1, 1, 3);  // [2, 2, 4]
  EXPECT_EQ(s.to_vector()[0], 4.0f);
  EXPECT_EQ(s.to_vector()[8], 16.0f);
  Tensor sel = t.select(2, 3);  // [2, 3]
  EXPECT_EQ(sel.shape(), Shape({2, 3}));
  EXPECT_EQ(sel.to_vector(), (std::vector<float>{3, 7, 11, 15, 19, 23}));
  Tensor r = t.reshape_infer({6, -1});
  EXPECT_EQ(r.shape(), Shape({6, 4}));
  EXPECT_THROW(t.reshape({5, 5}), Error);
  EXPECT_THROW(p.reshape({24}), Error);  // not contiguous
  EXPECT_THROW(t.slice(0, 1, 3), Error);
  EXPECT_THROW(t.data<int32_t>(), Error);
  EXPECT_THROW(Shape({1, 2, 3, 4, 5, 6, 7}), Error);
  EXPECT_THROW(Shape({int64_t{1} << 40, int64_t{1} << 40}).numel(), Error);
}

TEST(Allocator, AlignedAndTracksPeak) {
  memory::reset_peak();
  const size_t before = memory::current_bytes();
  {
    Tensor a = Tensor::zeros({1000});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw_data()) % 64, 0u);
    EXPECT_GE(memory::current_bytes(), before + 4000);
    EXPECT_GE(memory::peak_bytes(), before + 4000);
  }
  EXPECT_EQ(memory::current_bytes(), before);
  Tensor b = Tensor::zeros({1000});  // served from the cache
  EXPECT_EQ(b.to_vector()[999], 0.0f);
}

TEST(Parallel, ChunksCoverRangeOnce) {
  set_num_threads(2);
  std::vector<int> hits(1000, 0);
  parallel_for(1000, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
  });
  for (int h : hits) ASSERT_EQ(h, 1);
}
