// The int8 convolution against its reference twin: bit-identical outputs (the integer part is
// exact, and both paths apply the same float epilogue operations in the same order, scale and
// bias as one fused multiply-add (int8_scaled_sum); Winograd
// F(4x4), whose transformed weights are rounded, within a stated tolerance) on tail
// shapes — output channels not a multiple of 16, input channels not a multiple of 4, pixel
// counts not a multiple of 4 — with stride, dilation, padding, both ISAs, the AVX-VNNI
// micro-kernel where the CPU has it, and both threading paths (many images / few images). Plus
// the quantiser's rules and the weight packer's checks. The channel-blocked form (input blocked or
// channel-major, output and residual blocked) must give the same values, and zero padding lanes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/conv2d_int8_winograd.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace {

using namespace duet::kernels;

struct Case {
  int64_t batch, c, k, h, w, r, stride, pad, dilation;
};

std::vector<float> pattern(size_t n, int seed, float lo, float hi) {
  std::vector<float> v(n);
  uint32_t s = 2463534242u + uint32_t(seed) * 7919u;
  for (auto& x : v) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    x = lo + (hi - lo) * float(s % 100000) / 100000.0f;
  }
  return v;
}

// Weights in [-max, max], every code reached, so pair sums reach their bound.
std::vector<int8_t> int8_pattern(size_t n, int seed, int32_t max = kWeightMax) {
  std::vector<int8_t> v(n);
  uint32_t s = 88172645u + uint32_t(seed) * 104729u;
  for (auto& x : v) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    x = int8_t(int32_t(s % uint32_t(2 * max + 1)) - max);
  }
  return v;
}

Conv2dShape shape_of(const Case& c) {
  Conv2dShape s;
  s.batch = c.batch, s.in_channels = c.c, s.out_channels = c.k, s.in_h = c.h, s.in_w = c.w;
  s.kernel_h = s.kernel_w = c.r;
  s.stride_h = s.stride_w = c.stride;
  s.pad_h = s.pad_w = c.pad;
  s.dilation_h = s.dilation_w = c.dilation;
  return s;
}

// Every path against the reference twin, bit for bit. With weight_max <= kPairableWeightMax
// the AVX2 path (no VNNI) takes the paired kernel, which must give the same sums.
void check_case(const Case& c, Activation act, bool with_residual, int seed,
                int32_t weight_max = kWeightMax) {
  const Conv2dShape s = shape_of(c);
  const auto x = pattern(size_t(c.batch * c.c * c.h * c.w), seed, -1.5f, 2.5f);
  const auto wq = int8_pattern(size_t(c.k * c.c * c.r * c.r), seed, weight_max);
  const int64_t out_n = c.batch * c.k * s.out_h() * s.out_w();
  const auto scale = pattern(size_t(c.k), seed + 1, 0.001f, 0.01f);
  const auto bias = pattern(size_t(c.k), seed + 3, -0.5f, 0.5f);
  const auto residual = pattern(size_t(out_n), seed + 4, -1.0f, 1.0f);
  Epilogue e;
  if (act != Activation::silu || with_residual) {  // one case per file runs the plain int path
    e.scale = scale.data(), e.bias = bias.data();
  }
  e.act = act;
  if (with_residual) e.residual = residual.data(), e.ld_residual = s.out_h() * s.out_w();
  // The range puts the zero point inside, so padding and negative inputs both matter.
  const auto xq = ActivationQuant::from_range(-1.2f, 2.0f);
  const auto packed = pack_int8_conv_weights(wq.data(), c.k, c.c, c.r, c.r);
  ASSERT_EQ(packed.taps_pair_in_int16(), weight_max <= kPairableWeightMax);

  const size_t count = static_cast<size_t>(out_n);
  std::vector<float> want(count), got(count, std::nanf(""));
  ref::conv2d_int8_forward(s, x.data(), xq, wq.data(), want.data(), e);
  // Blocked copies of the input and residual, and the blocked run's result brought back.
  const int64_t hw = c.h * c.w, pq = s.out_h() * s.out_w();
  std::vector<float> xb(size_t(c.batch * channel_blocks(c.c) * hw * kChannelBlock));
  std::vector<float> rb(size_t(c.batch * channel_blocks(c.k) * pq * kChannelBlock));
  to_channel_blocked(c.batch, c.c, hw, x.data(), xb.data());
  to_channel_blocked(c.batch, c.k, pq, residual.data(), rb.data());
  std::vector<float> yb(rb.size()), unblocked(count), padding_check(rb.size());
  Epilogue eb = e;
  if (with_residual) eb.residual = rb.data();
  struct Path {
    Isa isa;
    bool vnni;
    const char* name;
  };
  for (const Path path :
       {Path{Isa::generic, false, "generic"}, Path{Isa::avx2, false, "avx2"},
        Path{Isa::avx2, true, "avx-vnni"}, Path{Isa::avx512, true, "avx512-vnni"}}) {
    if (!cpu_has(path.isa)) continue;
    if (path.vnni && !(path.isa == Isa::avx512 ? cpu_has_avx512_vnni() : cpu_has_avx_vnni()))
      continue;
    // Winograd (3x3 stride 1 on AVX2 without VNNI: exact F(2x2), and F(4x4) where its tiles are
    // forced and it applies, compared within a tolerance) and, switched off, the direct kernels.
    struct Mode {
      int threads;
      bool winograd;
      int64_t tile;
    };
    for (const Mode mode : {Mode{1, true, 2}, Mode{2, true, 2}, Mode{1, false, 0}, Mode{1, true, 4},
                            Mode{2, true, 4}}) {
      const auto [threads, winograd, tile] = mode;
      if ((!winograd || tile == 4) && path.isa != Isa::avx2) continue;
      const Isa saved_isa = active_isa();
      const bool saved_vnni = vnni_switched_on();
      const int saved_threads = duet::num_threads();
      set_isa(path.isa);
      set_avx_vnni(path.vnni);
      duet::set_num_threads(threads);
      set_winograd(winograd);
      detail::set_winograd_tile(tile);
      const bool f4 = int8_winograd4_takes(s, packed);
      if (tile == 4 && !f4) {  // nothing new to check: the F(2x2) modes ran this
        set_isa(saved_isa);
        set_avx_vnni(saved_vnni);
        set_winograd(true);
        detail::set_winograd_tile(0);
        duet::set_num_threads(saved_threads);
        continue;
      }
      conv2d_int8_forward(s, x.data(), xq, packed, got.data(), e);
      for (bool x_blocked : {false, true}) {
        std::fill(yb.begin(), yb.end(), std::nanf(""));
        conv2d_int8_forward_blocked(s, x_blocked, x_blocked ? xb.data() : x.data(), xq, packed,
                                    yb.data(), eb);
        from_channel_blocked(c.batch, c.k, pq, yb.data(), unblocked.data());
        to_channel_blocked(c.batch, c.k, pq, unblocked.data(), padding_check.data());
        for (size_t i = 0; i < yb.size(); ++i)  // padding lanes (and everything) as rebuilt
          ASSERT_EQ(yb[i], padding_check[i]) << "blocked element " << i << " path " << path.name;
        for (int64_t i = 0; i < out_n; ++i) {
          const float a = unblocked[size_t(i)], b = got[size_t(i)];
          // The vector SiLU may round differently where it is inlined (FMA contraction).
          const float tol = act == Activation::silu ? 1e-5f * (1.0f + std::fabs(b)) : 0.0f;
          ASSERT_LE(std::fabs(a - b), tol)
              << "blocked (input " << (x_blocked ? "blocked" : "NCHW") << ") element " << i
              << " path " << path.name << " threads " << threads << " winograd " << winograd << ": "
              << a << " vs " << b;
        }
      }
      set_isa(saved_isa);
      set_avx_vnni(saved_vnni);
      set_winograd(true);
      detail::set_winograd_tile(0);
      duet::set_num_threads(saved_threads);
      float peak = 0;
      for (float v : want) peak = std::max(peak, std::fabs(v));
      for (int64_t i = 0; i < out_n; ++i) {
        if (f4)  // F(4x4)'s rounded V (test below): measured up to 4.1e-3 of the peak here
          ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 1e-2f * peak)
              << "element " << i << " path " << path.name << " threads " << threads << " F(4x4)";
        else if (act == Activation::silu)  // the vector SiLU is accurate to ~1e-6 relative
          ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 1e-5f * (1.0f + std::fabs(want[size_t(i)])))
              << "element " << i << " path " << path.name << " threads " << threads;
        else
          ASSERT_EQ(got[size_t(i)], want[size_t(i)])
              << "element " << i << " path " << path.name << " threads " << threads << " winograd "
              << winograd;
      }
    }
  }
}

const Case kTailCases[] = {
    // batch, C, K, H, W, R, stride, pad, dilation
    {1, 16, 16, 8, 8, 3, 1, 1, 1},    // ResNet-20 stage shape, batch 1 (few-images path)
    {5, 16, 32, 9, 9, 3, 2, 1, 1},    // stride 2 + K a multiple of 16, many-images path
    {3, 3, 5, 7, 6, 3, 1, 1, 1},      // C not a multiple of 4, K < 16, odd sizes
    {4, 6, 17, 11, 10, 3, 1, 2, 2},   // dilation 2, pad 2, K = 17 (one-channel tail block)
    {2, 1, 33, 5, 5, 1, 1, 0, 1},     // 1x1, one input channel, K = 33
    {6, 64, 20, 3, 3, 3, 1, 1, 1},    // 9 pixels: 4 + 4 + 1 micro-kernel tail
    {1, 8, 16, 17, 13, 5, 2, 2, 1},   // 5x5 stride 2, more than 64 output pixels per image
    {2, 32, 20, 9, 7, 3, 1, 1, 1},    // odd height and width, K = 20
    {3, 20, 16, 6, 28, 3, 1, 1, 1},   // C = 20 (not a multiple of 16), 28 wide, many images
    {1, 256, 17, 4, 5, 3, 1, 1, 1},   // 2304 taps per output: large int32 sums
    {1, 16, 16, 3, 33, 3, 1, 1, 1},   // 33 columns: 64-pixel chunks straddle rows unevenly
    {2, 48, 64, 14, 14, 3, 1, 1, 1},  // a ResNet-20 middle layer, several output blocks
    // 16-byte pixels (C4 = 16) at stride 1, whose one-block layers AVX-512 VNNI runs four
    // pixels a vector: rows of 10 (quads and a 2-pixel tail), quads gathered across rows and
    // chunks, spare input channels (C = 13), a single block after a pair (K = 48), dilation 2.
    {3, 13, 48, 7, 10, 3, 1, 1, 1},
    {1, 16, 16, 9, 9, 3, 1, 2, 2},
    {4, 16, 16, 28, 28, 3, 1, 1, 1},  // ResNet-20's first stage, many-images path
};

TEST(Conv2dInt8, MatchesReferenceOnTailShapes) {
  int seed = 0;
  for (const Case& c : kTailCases) {
    SCOPED_TRACE(::testing::Message() << "case " << seed);
    check_case(c, Activation::relu, true, seed);
    check_case(c, Activation::none, false, seed + 100);
    check_case(c, Activation::silu, false, seed + 200);
    ++seed;
  }
}

// 7-bit weights: on AVX2 without VNNI two tap groups share one int16 sum (the paired kernel),
// with odd and even group counts (C = 3: 9 groups; C = 16: 36) and 1, 2 or 3 trailing pixels.
TEST(Conv2dInt8, SevenBitWeightsPairTapsExactly) {
  int seed = 300;
  for (const Case& c : kTailCases) {
    SCOPED_TRACE(::testing::Message() << "case " << seed);
    check_case(c, Activation::relu, true, seed, kPairableWeightMax);
    check_case(c, Activation::none, false, seed + 100, kPairableWeightMax);
    ++seed;
  }
  // All activations at 127 against all weights at +-63: every pair sum at its bound.
  const Case c{1, 8, 16, 5, 6, 3, 1, 0, 1};
  const Conv2dShape s = shape_of(c);
  const std::vector<float> x(size_t(c.c * c.h * c.w), 1.0f);
  const auto xq = ActivationQuant::from_range(0.0f, 1.0f);  // 1.0 -> code 127, zero point 0
  if (!cpu_has(Isa::avx2)) GTEST_SKIP() << "no AVX2: the paired kernel does not run here";
  const Isa saved_isa = active_isa();
  const bool saved_vnni = vnni_switched_on();
  set_isa(Isa::avx2);  // AVX2 without VNNI: the paired kernel's path
  set_avx_vnni(false);
  for (int8_t sign : {int8_t{1}, int8_t{-1}}) {
    const std::vector<int8_t> wq(size_t(c.k * c.c * 9), int8_t(sign * kPairableWeightMax));
    const auto packed = pack_int8_conv_weights(wq.data(), c.k, c.c, 3, 3);
    std::vector<float> want(size_t(c.k * s.out_h() * s.out_w())), got(want.size());
    ref::conv2d_int8_forward(s, x.data(), xq, wq.data(), want.data(), {});
    conv2d_int8_forward(s, x.data(), xq, packed, got.data(), {});
    const float bound = float(sign) * 72.0f * 127.0f * float(kPairableWeightMax);  // 72 taps
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(want[i], bound);
      EXPECT_EQ(got[i], want[i]) << "element " << i;
    }
  }
  set_isa(saved_isa);
  set_avx_vnni(saved_vnni);
}

// One single-image 3x3 stride-1 case of the integer Winograd tests: weights (random, or the
// extremes: all at +-127), a padded u8 image (random codes, or stripes of 0 and 127), their
// transformed tiles U for tile edge 2 or 4 (the scalar and AVX2 transforms must agree exactly),
// and the direct generic kernel's int32 sums to compare with.
struct WinogradSumsCase {
  struct Shape {
    int64_t c, k, h, w, pad;
  };
  Conv2dShape s;
  Int8ConvWeights packed, packed_abs;  // packed_abs: |w|, whose direct sums bound the terms
  int64_t Hp, Wp, C4, PQ;
  std::vector<uint8_t> image;
  detail::WinogradTiles tiles;
  std::vector<int16_t> u;
  std::vector<int32_t> taps;
  std::vector<int64_t> base;

  WinogradSumsCase(const Shape& sh, bool extreme, int seed, int64_t edge)
      : s(shape_of(Case{1, sh.c, sh.k, sh.h, sh.w, 3, 1, sh.pad, 1})) {
    auto wq = int8_pattern(size_t(sh.k * sh.c * 9), seed);
    if (extreme)
      for (size_t i = 0; i < wq.size(); ++i) wq[i] = int8_t((i / 3) % 2 ? 127 : -127);
    std::vector<int8_t> wabs(wq.size());
    for (size_t i = 0; i < wq.size(); ++i) wabs[i] = int8_t(std::abs(int32_t{wq[i]}));
    packed = pack_int8_conv_weights(wq.data(), sh.k, sh.c, 3, 3);
    packed_abs = pack_int8_conv_weights(wabs.data(), sh.k, sh.c, 3, 3);
    Hp = sh.h + 2 * sh.pad, Wp = sh.w + 2 * sh.pad, C4 = packed.channels4;
    image.resize(size_t(Hp * Wp * C4));
    const auto codes = pattern(image.size(), seed + 1, 0.0f, 127.99f);
    for (size_t i = 0; i < image.size(); ++i)
      image[i] = extreme ? uint8_t((i / size_t(C4 * Wp)) % 3 == 0 ? 0 : 127) : uint8_t(codes[i]);
    tiles = detail::winograd_tiles(s, edge);
    PQ = tiles.P * tiles.Q;
    // The direct sums: every output pixel's tap offsets into the same padded image.
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t t = 0; t < 3; ++t)
        for (int64_t ch = 0; ch < C4; ch += 4) taps.push_back(int32_t((r * Wp + t) * C4 + ch));
    for (int64_t p = 0; p < tiles.P; ++p)
      for (int64_t q = 0; q < tiles.Q; ++q) base.push_back((p * Wp + q) * C4);
    const int64_t positions = edge == 4 ? detail::kWinograd4Positions : detail::kWinogradPositions;
    u.resize(size_t(positions * tiles.count * C4));
    detail::winograd_int8_input(image.data(), Hp, Wp, C4, tiles, u.data());
  }

  // Whether the AVX2 input transform gives u exactly (true where there is no AVX2).
  bool avx2_input_matches() const {
    if (!cpu_has(Isa::avx2)) return true;
    std::vector<int16_t> u_avx2(u.size());
    detail::winograd_int8_input_avx2(image.data(), Hp, Wp, C4, tiles, u_avx2.data());
    return u_avx2 == u;
  }

  std::vector<int32_t> direct_sums(const Int8ConvWeights& w, int64_t kb) const {
    std::vector<int32_t> sums(size_t(PQ * 16));
    for (int64_t p0 = 0; p0 < PQ; p0 += 64)
      detail::int8_block_generic(image.data(), base.data() + p0, std::min<int64_t>(64, PQ - p0),
                                 taps.data(), w.groups4(), w.packed.data() + kb * w.groups4() * 64,
                                 sums.data() + p0 * 16);
    return sums;
  }
};

// The integer Winograd's int32 sums, from its scalar twin and from AVX2, against the direct
// generic kernel's, for every pixel and channel block: random codes and weights, and the extremes
// (codes 0 and 127 in stripes, weights all at +-127) that drive |U| and |V| to their bounds.
TEST(Conv2dInt8, WinogradSumsEqualTheDirectSums) {
  using Shape = WinogradSumsCase::Shape;
  int seed = 700;
  for (const Shape sh : {Shape{16, 16, 28, 28, 1}, Shape{3, 17, 7, 6, 1}, Shape{20, 33, 5, 9, 2},
                         Shape{64, 16, 1, 1, 1}, Shape{200, 16, 3, 4, 0}}) {
    for (int extreme : {0, 1}) {
      SCOPED_TRACE(::testing::Message() << "C " << sh.c << " K " << sh.k << " " << sh.h << "x"
                                        << sh.w << " pad " << sh.pad << " extreme " << extreme);
      const WinogradSumsCase w(sh, extreme, seed, 2);
      seed += 2;
      ASSERT_TRUE(detail::int8_winograd_applies(w.s, w.packed));
      ASSERT_TRUE(w.avx2_input_matches());
      for (int64_t kb = 0; kb < (sh.k + 15) / 16; ++kb) {
        const auto direct = w.direct_sums(w.packed, kb);
        const int16_t* v = w.packed.winograd.data() + kb * detail::kWinogradPositions * w.C4 * 16;
        std::vector<int32_t> twin(direct.size(), -1);
        detail::winograd_int8_block(w.u.data(), v, w.C4, w.tiles, twin.data());
        ASSERT_EQ(twin, direct) << "block " << kb << ", scalar twin";
        if (!cpu_has(Isa::avx2)) continue;
        alignas(64) static int32_t fast[28 * 28 * 16];
        std::fill(fast, fast + w.PQ * 16, -1);
        detail::winograd_int8_block_avx2(w.u.data(), v, w.C4, w.tiles, fast);
        ASSERT_TRUE(std::equal(direct.begin(), direct.end(), fast)) << "block " << kb << ", AVX2";
      }
    }
  }
}

// F(4x4)'s sums against the exact direct sums: its V is rounded per position, so each sum may
// be off by a small fraction of the sum of |code x weight| over the taps (S, the direct sum with
// |w|), growing as the bound on |V| shrinks with the channel count. The scalar and AVX2 input
// transforms must agree exactly, the AVX2 block with the scalar one within one (float rounding of
// the output transform) and the AVX-VNNI block with the AVX2 one exactly. Random and extreme
// codes and weights, 3 to 900 channels (the bound on |V| from 15,541 down to 276 steps), odd
// sizes and 7x7 (two tiles a side, the second cut off).
TEST(Conv2dInt8, Int8Winograd4SumsAreCloseToTheDirectSums) {
  using Shape = WinogradSumsCase::Shape;
  int seed = 900;
  for (const Shape sh : {Shape{16, 16, 28, 28, 1}, Shape{3, 17, 7, 6, 1}, Shape{20, 33, 5, 9, 2},
                         Shape{64, 16, 7, 7, 1}, Shape{900, 16, 6, 5, 1}}) {
    for (int extreme : {0, 1}) {
      SCOPED_TRACE(::testing::Message() << "C " << sh.c << " K " << sh.k << " " << sh.h << "x"
                                        << sh.w << " pad " << sh.pad << " extreme " << extreme);
      const WinogradSumsCase w(sh, extreme, seed, 4);
      seed += 2;
      ASSERT_TRUE(detail::int8_winograd4_applies(w.s, w.packed));
      // Measured: 2.2e-4 at 16 channels, 2.5e-4 at 64, 1.5e-3 at 900 (the float output
      // transform's rounding, then V's steps): bounded with a margin of 3x or more.
      const double bound = 5e-4 + 2.0 / double(detail::winograd4_levels(w.C4));
      for (int16_t x : w.u) ASSERT_LE(std::abs(int32_t{x}), detail::kWinograd4MaxU);
      ASSERT_TRUE(w.avx2_input_matches());
      for (int64_t kb = 0; kb < (sh.k + 15) / 16; ++kb) {
        const auto direct = w.direct_sums(w.packed, kb),
                   magnitude = w.direct_sums(w.packed_abs, kb);
        const int16_t* v = w.packed.winograd4.data() + kb * detail::kWinograd4Positions * w.C4 * 16;
        const float* steps =
            w.packed.winograd4_scales.data() + kb * detail::kWinograd4Positions * 16;
        std::vector<int32_t> twin(direct.size(), -1);
        detail::winograd4_int8_block(w.u.data(), v, steps, w.C4, w.tiles, twin.data());
        for (size_t i = 0; i < direct.size(); ++i) {
          const double err = std::fabs(double(twin[i]) - double(direct[i]));
          const double rel = err / (1.0 + double(magnitude[i]));
          ASSERT_LE(rel, bound) << "block " << kb << " element " << i << ": " << twin[i] << " vs "
                                << direct[i] << " (S " << magnitude[i] << ")";
        }
        if (!cpu_has(Isa::avx2)) continue;
        alignas(64) static int32_t fast[28 * 28 * 16];
        std::fill(fast, fast + w.PQ * 16, -1);
        detail::winograd4_int8_block_avx2(w.u.data(), v, steps, w.C4, w.tiles, fast);
        for (size_t i = 0; i < direct.size(); ++i)
          ASSERT_LE(std::abs(fast[i] - twin[i]), 1) << "block " << kb << " element " << i;
        if (!cpu_has_avx_vnni()) continue;
        alignas(64) static int32_t vnni[28 * 28 * 16];  // the same integers, the same floats
        std::fill(vnni, vnni + w.PQ * 16, -1);
        detail::winograd4_int8_block_vnni(w.u.data(), v, steps, w.C4, w.tiles, vnni);
        ASSERT_TRUE(std::equal(vnni, vnni + w.PQ * 16, fast)) << "block " << kb << ", AVX-VNNI";
      }
    }
  }
}

// Where int32 could overflow (9 x channels4 x 508 x 9 x max|w| >= 2^31), or an image's tiles
// would take more than kWinogradMaxTileBytes, the direct kernel runs.
TEST(Conv2dInt8, WinogradOnlyWhereItsSumsFitInt32) {
  Conv2dShape s;
  s.in_channels = 412, s.out_channels = 16, s.in_h = s.in_w = 4, s.kernel_h = s.kernel_w = 3;
  s.pad_h = s.pad_w = 1;
  std::vector<int8_t> w(size_t(16 * 412 * 9), 127);
  EXPECT_FALSE(detail::int8_winograd_applies(s, pack_int8_conv_weights(w.data(), 16, 412, 3, 3)));
  std::fill(w.begin(), w.end(), int8_t{kPairableWeightMax});  // 7-bit weights: room for 412
  EXPECT_TRUE(detail::int8_winograd_applies(s, pack_int8_conv_weights(w.data(), 16, 412, 3, 3)));
  s.in_h = s.in_w = 512;  // 16 x 256 x 256 tiles x 412 channels x 2 bytes: past the cap
  EXPECT_FALSE(detail::int8_winograd_applies(s, pack_int8_conv_weights(w.data(), 16, 412, 3, 3)));
  s.in_h = s.in_w = 4;
  s.stride_h = s.stride_w = 2;
  EXPECT_FALSE(detail::int8_winograd_applies(s, pack_int8_conv_weights(w.data(), 16, 412, 3, 3)));
  // F(4x4) rounds V instead: it runs while |V| keeps kWinograd4MinLevels steps (up to 972
  // channels), whatever the weights.
  s.stride_h = s.stride_w = 1;
  std::fill(w.begin(), w.end(), int8_t{127});
  EXPECT_TRUE(detail::int8_winograd4_applies(s, pack_int8_conv_weights(w.data(), 16, 412, 3, 3)));
  std::vector<int8_t> wide(size_t(16 * 976 * 9), 127);
  s.in_channels = 976;
  EXPECT_FALSE(
      detail::int8_winograd4_applies(s, pack_int8_conv_weights(wide.data(), 16, 976, 3, 3)));
  s.in_channels = 972;
  EXPECT_TRUE(
      detail::int8_winograd4_applies(s, pack_int8_conv_weights(wide.data(), 16, 972, 3, 3)));
}

TEST(Conv2dInt8, QuantiserRules) {
  const auto q = ActivationQuant::from_range(0.0f, 12.7f);  // post-ReLU: zero point 0
  EXPECT_EQ(q.zero_point, 0);
  EXPECT_FLOAT_EQ(q.scale, 0.1f);
  EXPECT_EQ(quantize_activation(0.0f, q), 0);
  EXPECT_EQ(quantize_activation(0.25f, q), 2);     // 2.5 rounds half to even
  EXPECT_EQ(quantize_activation(0.35f, q), 4);     // 3.5 rounds half to even
  EXPECT_EQ(quantize_activation(100.0f, q), 127);  // clamped
  EXPECT_EQ(quantize_activation(-3.0f, q), 0);
  EXPECT_EQ(quantize_activation(std::nanf(""), q), 0);
  EXPECT_EQ(quantize_activation(std::numeric_limits<float>::infinity(), q), 127);
  const auto sym = ActivationQuant::from_range(-1.0f, 1.0f);
  EXPECT_EQ(sym.zero_point, 64);  // round(1 / (2 / 127)) = round(63.5) = 64
  const auto flat = ActivationQuant::from_range(0.0f, 0.0f);  // all-zero channel: usable scale
  EXPECT_GT(flat.scale, 0.0f);
  EXPECT_EQ(quantize_activation(0.0f, flat), flat.zero_point);
  EXPECT_THROW(ActivationQuant::from_range(1.0f, 0.0f), duet::Error);
  EXPECT_THROW(ActivationQuant::from_range(0.0f, std::nanf("")), duet::Error);
}

TEST(Conv2dInt8, PackerChecks) {
  std::vector<int8_t> w(2 * 3 * 3 * 3, 1);
  const auto p = pack_int8_conv_weights(w.data(), 2, 3, 3, 3);
  EXPECT_EQ(p.channels4, 4);
  EXPECT_EQ(p.weight_sums, (std::vector<int32_t>{27, 27}));
  w[5] = -128;  // outside the symmetric range: vpmaddubsw pair sums could saturate
  EXPECT_THROW(pack_int8_conv_weights(w.data(), 2, 3, 3, 3), duet::Error);
  Conv2dShape s;
  s.in_channels = 4;  // does not match the packed 3
  s.out_channels = 2, s.kernel_h = s.kernel_w = 3, s.in_h = s.in_w = 4;
  std::vector<float> buf(512);
  EXPECT_THROW(conv2d_int8_forward(s, buf.data(), ActivationQuant{}, p, buf.data()), duet::Error);
  // The int8 epilogue is scale and bias in one fused multiply-add; a shift would be ignored.
  s.in_channels = 3;
  Epilogue e;
  const float shift[2] = {1.0f, 2.0f};
  e.shift = shift;
  EXPECT_THROW(conv2d_int8_forward(s, buf.data(), ActivationQuant{}, p, buf.data(), e),
               duet::Error);
  EXPECT_THROW(ref::conv2d_int8_forward(s, buf.data(), ActivationQuant{}, w.data(), buf.data(), e),
               duet::Error);
}

}  // namespace
