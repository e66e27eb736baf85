// The packed-weights cache of sampling (kernels/packed_weights.h): used only inside a scope,
// packed once per layer while the weights stay, packed anew when they change, and the Winograd
// forward gives the same output with and without it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/isa.h"
#include "duet/kernels/packed_weights.h"
#include "duet/tensor/parallel.h"

namespace {

using duet::kernels::PackedWeightsScope;
using duet::kernels::detail::cached_packed_weights;
using duet::kernels::detail::weights_hash;

std::vector<float> uniform(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& e : v) e = u(rng);
  return v;
}

TEST(PackedWeights, PacksOncePerScopeAndAgainWhenWeightsChange) {
  std::vector<float> w = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  int packs = 0;
  auto pack = [&](float* dst) {
    ++packs;
    for (size_t i = 0; i < w.size(); ++i) dst[i] = 2 * w[i];
  };
  const int64_t n = int64_t(w.size());
  EXPECT_EQ(cached_packed_weights(w.data(), n, 4, n, pack), nullptr);  // no scope: no cache
  EXPECT_EQ(packs, 0);
  {
    PackedWeightsScope scope;
    const float* p = cached_packed_weights(w.data(), n, 4, n, pack);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p[10], 22.0f);
    EXPECT_EQ(cached_packed_weights(w.data(), n, 4, n, pack), p);
    EXPECT_EQ(packs, 1);
    {
      PackedWeightsScope nested;  // nesting keeps the entries
    }
    EXPECT_EQ(cached_packed_weights(w.data(), n, 4, n, pack), p);
    EXPECT_EQ(packs, 1);
    cached_packed_weights(w.data(), n, 2, n, pack);  // another packing of the same weights
    EXPECT_EQ(packs, 2);
    w[7] = -1;  // changed in place: the hash no longer matches
    const float* q = cached_packed_weights(w.data(), n, 4, n, pack);
    EXPECT_EQ(packs, 3);
    EXPECT_EQ(q[7], -2.0f);
  }
  EXPECT_EQ(cached_packed_weights(w.data(), n, 4, n, pack), nullptr);
}

TEST(PackedWeights, HashSeesEveryWord) {
  std::vector<float> w(37);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i) * 0.25f;
  const uint64_t h = weights_hash(w.data(), int64_t(w.size()));
  for (size_t i = 0; i < w.size(); ++i) {
    std::vector<float> v = w;
    v[i] = std::nextafter(v[i], 100.0f);
    EXPECT_NE(weights_hash(v.data(), int64_t(v.size())), h) << i;
  }
  EXPECT_NE(weights_hash(w.data(), 36), h);
}

TEST(PackedWeights, HashSeesWordsInEveryBlock) {
  using duet::kernels::detail::kHashBlock;
  const auto w = uniform(size_t(3 * kHashBlock + 41), 3);
  const uint64_t h = weights_hash(w.data(), int64_t(w.size()));
  for (size_t i : {size_t(0), size_t(kHashBlock - 1), size_t(kHashBlock),
                   size_t(2 * kHashBlock + 77), w.size() - 1}) {
    std::vector<float> v = w;
    v[i] = std::nextafter(v[i], 100.0f);
    EXPECT_NE(weights_hash(v.data(), int64_t(v.size())), h) << i;
  }
  // Two blocks swapped: each block's hash is the same, their order is not.
  std::vector<float> v = w;
  std::swap_ranges(v.begin(), v.begin() + kHashBlock, v.begin() + kHashBlock);
  EXPECT_NE(weights_hash(v.data(), int64_t(v.size())), h);
}

TEST(PackedWeights, HashIsTheSameOnAnyThreadCountAndItsAvx2TwinAgrees) {
  using duet::kernels::detail::kHashBlock;
  using duet::kernels::detail::weights_hash_block;
  using duet::kernels::detail::weights_hash_block_avx2;
  const auto w = uniform(size_t(5 * kHashBlock + 3), 4);
  const int saved = duet::num_threads();
  duet::set_num_threads(1);
  const uint64_t one = weights_hash(w.data(), int64_t(w.size()));
  duet::set_num_threads(2);
  const uint64_t two = weights_hash(w.data(), int64_t(w.size()));
  duet::set_num_threads(saved);
  EXPECT_EQ(one, two);
  if (!duet::kernels::isa_at_least(duet::kernels::Isa::avx2)) GTEST_SKIP() << "no AVX2";
  for (int64_t n :
       {int64_t{0}, int64_t{1}, int64_t{31}, int64_t{32}, int64_t{33}, int64_t{1000}, kHashBlock})
    EXPECT_EQ(weights_hash_block_avx2(w.data() + 7, n), weights_hash_block(w.data() + 7, n)) << n;
}

TEST(PackedWeights, WinogradForwardIsTheSameWithTheCache) {
  if (!duet::kernels::isa_at_least(duet::kernels::Isa::avx2)) GTEST_SKIP() << "no AVX2";
  duet::kernels::Conv2dShape s;
  s.batch = 4;
  s.in_channels = s.out_channels = 32;
  s.in_h = s.in_w = 14;
  s.kernel_h = s.kernel_w = 3;
  s.pad_h = s.pad_w = 1;
  ASSERT_TRUE(duet::kernels::conv2d_takes_winograd(s, duet::kernels::ConvPass::forward));
  auto x = uniform(size_t(4 * 32 * 14 * 14), 1);
  auto w = uniform(size_t(32 * 32 * 9), 2);
  std::vector<float> plain(x.size()), first(x.size()), second(x.size()), changed(x.size());
  duet::kernels::conv2d_forward(s, x.data(), w.data(), plain.data());
  PackedWeightsScope scope;
  duet::kernels::conv2d_forward(s, x.data(), w.data(), first.data());
  duet::kernels::conv2d_forward(s, x.data(), w.data(), second.data());
  EXPECT_EQ(first, plain);
  EXPECT_EQ(second, plain);
  w[5] += 1.0f;  // the layer's weights change inside the scope: packed again
  duet::kernels::conv2d_forward(s, x.data(), w.data(), changed.data());
  std::vector<float> expected(x.size());
  duet::kernels::ref::conv2d_forward(s, x.data(), w.data(), expected.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(changed[i], expected[i], 1e-3) << i;
}

}  // namespace
