// The layout moves around the channel-major Winograd convolution, against plain loops of their
// contracts on sizes with channel and pixel tails: winograd::block_rows under every ISA the CPU
// has (AVX2's two 8-lane passes, AVX-512's 16 x 16 transposes), and the AVX-512
// store_transposed. The conv compare cases reach them only through whole convolutions, where a
// wrong lane can hide behind a tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "duet/kernels/conv2d_fused.h"
#include "duet/kernels/conv2d_layout_avx512.h"
#include "duet/kernels/conv2d_winograd_parts.h"
#include "duet/kernels/gemm.h"
#include "duet/kernels/isa.h"

namespace {

using duet::kernels::Activation;
using duet::kernels::Isa;

constexpr int64_t kBlock = 16;

std::vector<float> uniform(size_t n, unsigned seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& e : v) e = u(rng);
  return v;
}

// Runs f under each ISA with vector kernels that the CPU has, and restores the active one.
template <class Fn>
void for_each_vector_isa(Fn&& f) {
  const Isa before = duet::kernels::active_isa();
  for (Isa isa : {Isa::avx2, Isa::avx512}) {
    if (!duet::kernels::cpu_has(isa)) continue;
    duet::kernels::set_isa(isa);
    SCOPED_TRACE(std::string(duet::kernels::isa_name(isa)));
    f();
  }
  duet::kernels::set_isa(before);
}

// Vector exp against std::exp: a few 1e-7 relative, so the activations agree to 2e-6 here.
::testing::AssertionResult close_to(float fast, float ref) {
  if (std::fabs(fast - ref) <= 2e-6 * std::max(1.0f, std::fabs(ref)))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "fast " << fast << ", reference " << ref;
}

TEST(LayoutMoves, BlockRowsMatchesItsContract) {
  if (!duet::kernels::cpu_has(Isa::avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  struct Case {
    int64_t C, H, W, row0, rows;
  };
  const Case cases[] = {{1, 5, 7, 0, 5},   {7, 9, 13, 2, 4},  {16, 4, 4, 0, 4},
                        {17, 6, 29, 1, 5}, {33, 3, 16, 1, 1}, {40, 8, 11, 3, 5}};
  const Activation acts[] = {Activation::none, Activation::relu, Activation::silu,
                             Activation::gelu};
  for_each_vector_isa([&] {
    for (const Case& c : cases)
      for (int with_prologue = 0; with_prologue < 2; ++with_prologue)
        for (Activation act : acts) {
          if (!with_prologue && act != Activation::none) continue;
          const auto x = uniform(size_t(c.C * c.H * c.W), unsigned(c.C * 100 + c.W));
          const auto scale = uniform(size_t(c.C), 7, 0.5f, 1.5f);
          const auto shift = uniform(size_t(c.C), 8);
          const duet::kernels::Prologue p{scale.data(), shift.data(), act};
          const int64_t blocks = (c.C + kBlock - 1) / kBlock, n = c.rows * c.W;
          std::vector<float> dst(size_t(blocks * n * kBlock), NAN);
          duet::kernels::detail::winograd::block_rows(x.data(), c.C, c.H, c.W, c.row0, c.rows,
                                                      dst.data(), with_prologue ? &p : nullptr);
          for (int64_t ch = 0; ch < blocks * kBlock; ++ch)
            for (int64_t i = 0; i < n; ++i) {
              const float got = dst[size_t((ch / kBlock * n + i) * kBlock + ch % kBlock)];
              const std::string where = "C=" + std::to_string(c.C) + " W=" + std::to_string(c.W) +
                                        " channel " + std::to_string(ch) + " pixel " +
                                        std::to_string(i);
              if (ch >= c.C) {
                ASSERT_EQ(got, 0.0f) << where;  // the last block's padding lanes
                continue;
              }
              const float v = x[size_t((ch * c.H + c.row0) * c.W + i)];
              if (!with_prologue) {
                ASSERT_EQ(got, v) << where;  // a plain move
                continue;
              }
              ASSERT_TRUE(
                  close_to(got, duet::kernels::apply_activation(act, v * scale[ch] + shift[ch])))
                  << where;
            }
        }
  });
}

TEST(LayoutMoves, StoreTransposedAvx512MatchesItsContract) {
  if (!duet::kernels::cpu_has(Isa::avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  struct Case {
    int64_t len, nk, ldct, ldy, ch0;
  };
  const Case cases[] = {{1, 1, 16, 3, 0},
                        {15, 7, 16, 20, 2},
                        {16, 16, 16, 16, 0},
                        {37, 33, 48, 40, 5},
                        {64, 40, 48, 70, 0}};
  for (const Case& c : cases)
    for (Activation act : {Activation::none, Activation::relu, Activation::silu, Activation::gelu})
      for (int with_residual = 0; with_residual < 2; ++with_residual) {
        const int64_t channels = c.ch0 + c.nk;
        const auto ct = uniform(size_t(c.len * c.ldct), unsigned(c.len + c.nk));
        const auto scale = uniform(size_t(channels), 3, 0.5f, 1.5f);
        const auto shift = uniform(size_t(channels), 4);
        const auto bias = uniform(size_t(channels), 5);
        const auto res = uniform(size_t(c.nk * c.ldy), 6);
        duet::kernels::Epilogue e;
        e.scale = scale.data();
        e.shift = shift.data();
        e.bias = bias.data();
        e.act = act;
        // Pixels past len keep their sentinel: the store must not touch them.
        std::vector<float> y(size_t(c.nk * c.ldy), -7.0f);
        duet::kernels::detail::store_transposed_avx512(ct.data(), c.ldct, c.len, c.nk, y.data(),
                                                       c.ldy, e, c.ch0,
                                                       with_residual ? res.data() : nullptr);
        for (int64_t k = 0; k < c.nk; ++k)
          for (int64_t i = 0; i < c.ldy; ++i) {
            const float got = y[size_t(k * c.ldy + i)];
            const std::string where = "len=" + std::to_string(c.len) +
                                      " nk=" + std::to_string(c.nk) + " channel " +
                                      std::to_string(k) + " pixel " + std::to_string(i);
            if (i >= c.len) {
              ASSERT_EQ(got, -7.0f) << where;
              continue;
            }
            const int64_t ch = c.ch0 + k;
            float v = ct[size_t(i * c.ldct + k)] * scale[size_t(ch)] + shift[size_t(ch)];
            v += bias[size_t(ch)];
            if (with_residual) v += res[size_t(k * c.ldy + i)];
            ASSERT_TRUE(close_to(got, duet::kernels::apply_activation(act, v))) << where;
          }
      }
}

}  // namespace
