// conv2d compare cases: forward (plain and with the full fused epilogue), backward-data and
// backward-weight (+ bias gradient) against the double-accumulating reference loops, on shapes
// that hit SIMD tails, tile edges, padding/stride/dilation corners, groups and depthwise.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_fused.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/tensor/allocator.h"

namespace {

using duet::kernels::Activation;
using duet::kernels::Conv2dShape;
using duet::kernels::Epilogue;

struct Row {
  int64_t n, c, k, h, w, r, s, stride, pad_h, pad_w, dil, groups;
};

Conv2dShape shape_of(const Row& r) {
  Conv2dShape s;
  s.batch = r.n;
  s.in_channels = r.c;
  s.out_channels = r.k;
  s.in_h = r.h;
  s.in_w = r.w;
  s.kernel_h = r.r;
  s.kernel_w = r.s;
  s.stride_h = s.stride_w = r.stride;
  s.pad_h = r.pad_h;
  s.pad_w = r.pad_w;
  s.dilation_h = s.dilation_w = r.dil;
  s.groups = r.groups;
  return s;
}

std::string label(const Row& r) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "n%ld_c%ldk%ld_%ldx%ld_f%ldx%ld_s%ld_p%ld%ld_d%ld_g%ld", long(r.n),
                long(r.c), long(r.k), long(r.h), long(r.w), long(r.r), long(r.s), long(r.stride),
                long(r.pad_h), long(r.pad_w), long(r.dil), long(r.groups));
  return buf;
}

// Seeded per-channel scale, shift and bias and a residual, for the full fused epilogue.
struct EpilogueInputs {
  std::vector<float> scale, shift, bias, residual;
  EpilogueInputs(size_t channels, size_t outputs, uint64_t seed)
      : scale(duet::test::random_vector(channels, seed, 0.5f, 1.5f)),
        shift(duet::test::random_vector(channels, seed + 1)),
        bias(duet::test::random_vector(channels, seed + 2)),
        residual(duet::test::random_vector(outputs, seed + 3)) {}
  // Every part of the epilogue, with `res` (this residual, or a re-laid-out copy) and `act`.
  Epilogue full(const float* res, Activation act) const {
    Epilogue e;
    e.scale = scale.data();
    e.shift = shift.data();
    e.bias = bias.data();
    e.residual = res;
    e.act = act;
    return e;
  }
};

// How a case runs the fast kernel's 3x3 stride-1 convolutions: Winograd off (the direct
// kernel), on with the variant duet picks, or on with one variant forced (tile 2 or 4).
struct WinogradMode {
  bool on;
  int64_t tile;  // 0: duet's choice
  std::string suffix() const {
    return !on         ? "_direct"
           : tile == 0 ? ""
                       : "_f" + std::to_string(tile) + "x" + std::to_string(tile);
  }
  // Runs f with this mode, restoring the defaults after.
  template <class Fn>
  void run(Fn&& f) const {
    duet::kernels::set_winograd(on);
    duet::kernels::detail::set_winograd_tile(tile);
    f();
    duet::kernels::detail::set_winograd_tile(0);
    duet::kernels::set_winograd(true);
  }
};

// The modes a shape runs in: duet's choice always; where Winograd takes the shape in `layout`,
// also the other variant and the direct kernel, so that each keeps its coverage.
std::vector<WinogradMode> winograd_modes(int64_t chosen_tile) {
  std::vector<WinogradMode> modes{{true, 0}};
  if (chosen_tile != 0) {
    modes.push_back({true, chosen_tile == 4 ? 2 : 4});
    modes.push_back({false, 0});
  }
  return modes;
}

// F(4x4, 3x3)'s transforms (coefficients up to 5 and 8) leave about 5x the rounding error of
// F(2x2, 3x3) and the direct kernel (worst seen on these shapes: 1.7e-5 x sqrt(reduction), one
// element of 128 -> 128 at 14 x 14; below 5e-6 x sqrt(reduction) up to 64 channels).
double winograd_atol(double atol, double reduction, int64_t tile) {
  return tile == 4 ? 2.5e-5 * std::sqrt(reduction) + 1e-6 : atol;
}

// The element counts of a groups-1 shape's tensors, channel-major and blocked.
struct BlockedSizes {
  int64_t hw, pq;
  size_t nx, ny, nxb, nyb, nw, nk;
  explicit BlockedSizes(const Conv2dShape& s)
      : hw(s.in_h * s.in_w),
        pq(s.out_h() * s.out_w()),
        nx(size_t(s.batch * s.in_channels * hw)),
        ny(size_t(s.batch * s.out_channels * pq)),
        nxb(size_t(s.batch * duet::kernels::channel_blocks(s.in_channels) * hw *
                   duet::kernels::kChannelBlock)),
        nyb(size_t(s.batch * duet::kernels::channel_blocks(s.out_channels) * pq *
                   duet::kernels::kChannelBlock)),
        nw(size_t(s.out_channels * s.in_channels * s.kernel_h * s.kernel_w)),
        nk(size_t(s.out_channels)) {}
};

// The channel-blocked forward (inference chains): input blocked, or channel-major as a network's
// first layer, with and without the full epilogue; the output is compared whole, padding lanes
// included (both sides must leave them zero).
void add_blocked_cases(const Row& row, const Conv2dShape& s, uint64_t seed, double atol) {
  const BlockedSizes z(s);
  const int64_t hw = z.hw, pq = z.pq;
  const size_t nx = z.nx, ny = z.ny, nxb = z.nxb, nyb = z.nyb, nw = z.nw, nk = z.nk;
  // Shapes that take Winograd by default also run with the other variant and with it switched
  // off, so the direct blocked kernel keeps its coverage of 3x3 stride-1 convolutions.
  using duet::kernels::detail::WinogradLayout;
  const int64_t chosen = duet::kernels::detail::winograd_tile(s, WinogradLayout::blocked);
  const double reduction = double(s.in_channels * s.kernel_h * s.kernel_w);
  for (const WinogradMode& mode : winograd_modes(chosen))
    for (bool x_blocked : {false, true})
      for (bool epi : {false, true}) {
        const int64_t tile = !mode.on ? 0 : mode.tile != 0 ? mode.tile : chosen;
        const double tol = winograd_atol(atol, reduction, tile);
        std::string name = std::string("conv2d/fwd_blocked") + mode.suffix() +
                           (x_blocked ? "_in" : "") + (epi ? "_epi/" : "/") + label(row);
        duet::test::add_kernel_case(
            {name, s.flops(), tol, 1e-4, [=] {
               auto x = duet::test::random_vector(nx, seed + 11);
               auto w = duet::test::random_vector(nw, seed + 12);
               const EpilogueInputs ep(nk, ny, seed + 13);
               std::vector<float> xb(nxb), resb(nyb);
               duet::kernels::to_channel_blocked(s.batch, s.in_channels, hw, x.data(), xb.data());
               duet::kernels::to_channel_blocked(s.batch, s.out_channels, pq, ep.residual.data(),
                                                 resb.data());
               // Blocked inputs run on weights packed once, as a network's layers do (and as
               // perf mode should time them); plain inputs let the kernel pack its own.
               std::shared_ptr<duet::memory::FloatScratch> packed;
               mode.run([&] {
                 if (x_blocked && duet::kernels::blocked_packed_size(s) > 0) {
                   packed = std::make_shared<duet::memory::FloatScratch>(
                       duet::kernels::blocked_packed_size(s));
                   duet::kernels::pack_blocked_weights(s, w.data(), packed->get());
                 }
               });
               return [=](bool fast, std::vector<float>& out) {
                 const Epilogue e = epi ? ep.full(resb.data(), Activation::silu) : Epilogue{};
                 out.assign(nyb, NAN);
                 const float* in = x_blocked ? xb.data() : x.data();
                 if (fast)
                   mode.run([&] {
                     duet::kernels::conv2d_forward_blocked(s, x_blocked, in, w.data(), out.data(),
                                                           e, packed ? packed->get() : nullptr);
                   });
                 else
                   duet::kernels::ref::conv2d_forward_blocked(s, x_blocked, in, w.data(),
                                                              out.data(), e);
               };
             }});
      }
}

// The blocked gradients (training on blocked activations): dx blocked from blocked dy (stride 1:
// the blocked forward of the flipped filters; strided: the direct blocked kernel), and dw + dbias
// from blocked dy and blocked or channel-major x (3x3 stride 1: Winograd on the blocks; others
// direct). The twin converts to channel-major and runs the reference kernels.
void add_blocked_gradient_cases(const Row& row, const Conv2dShape& s, uint64_t seed) {
  const BlockedSizes z(s);
  const int64_t hw = z.hw, pq = z.pq;
  const size_t nx = z.nx, ny = z.ny, nxb = z.nxb, nyb = z.nyb, nw = z.nw, nk = z.nk;
  using duet::kernels::detail::WinogradLayout;
  const int64_t chosen = duet::kernels::detail::winograd_tile(s, WinogradLayout::blocked);
  const double red_data = double(nw / size_t(s.in_channels)), red_w = double(ny / nk);
  for (const WinogradMode& mode : winograd_modes(chosen)) {
    const int64_t tile = !mode.on ? 0 : mode.tile != 0 ? mode.tile : chosen;
    duet::test::add_kernel_case(
        {"conv2d/bwd_data_blocked" + mode.suffix() + "/" + label(row), s.flops(),
         winograd_atol(2e-6 * std::sqrt(red_data) + 1e-6, red_data, tile), 1e-4, [=] {
           auto dy = duet::test::random_vector(ny, seed + 21);
           auto w = duet::test::random_vector(nw, seed + 22);
           std::vector<float> dyb(nyb);
           duet::kernels::to_channel_blocked(s.batch, s.out_channels, pq, dy.data(), dyb.data());
           return [=](bool fast, std::vector<float>& out) {
             out.assign(nxb, NAN);
             if (fast) {
               mode.run([&] {
                 duet::kernels::conv2d_backward_data_blocked(s, dyb.data(), w.data(), out.data());
               });
               return;
             }
             std::vector<float> dx(nx);
             duet::kernels::ref::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
             duet::kernels::to_channel_blocked(s.batch, s.in_channels, hw, dx.data(), out.data());
           };
         }});
    for (bool x_blocked : {false, true})
      duet::test::add_kernel_case(
          {"conv2d/bwd_weight_blocked" + mode.suffix() + (x_blocked ? "_in/" : "/") + label(row),
           s.flops(), 2e-6 * std::sqrt(red_w * double(nw / nk)) + 1e-5, 1e-4, [=] {
             auto x = duet::test::random_vector(nx, seed + 23);
             auto dy = duet::test::random_vector(ny, seed + 24);
             std::vector<float> xb(nxb), dyb(nyb);
             duet::kernels::to_channel_blocked(s.batch, s.in_channels, hw, x.data(), xb.data());
             duet::kernels::to_channel_blocked(s.batch, s.out_channels, pq, dy.data(), dyb.data());
             return [=](bool fast, std::vector<float>& out) {
               out.assign(nw + nk, NAN);
               float* db = out.data() + nw;
               if (fast)
                 mode.run([&] {
                   duet::kernels::conv2d_backward_weight_blocked(
                       s, x_blocked, x_blocked ? xb.data() : x.data(), dyb.data(), out.data(), db);
                 });
               else
                 duet::kernels::ref::conv2d_backward_weight(s, x.data(), dy.data(), out.data(), db);
             };
           }});
  }
}

void add_cases(const Row& row) {
  const Conv2dShape s = shape_of(row);
  const size_t nx = size_t(s.batch * s.in_channels * s.in_h * s.in_w);
  const size_t ny = size_t(s.batch * s.out_channels * s.out_h() * s.out_w());
  const size_t nw = size_t(s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w);
  const size_t nk = size_t(s.out_channels);
  const uint64_t seed = std::hash<std::string>{}(label(row)) & 0xffffff;
  // Float accumulation error grows like the square root of the reduction length.
  const double red_fwd = double(nw / nk), red_w = double(ny / nk);
  const double atol_fwd = 2e-6 * std::sqrt(red_fwd) + 1e-6;
  const double atol_w = 2e-6 * std::sqrt(red_w * red_fwd) + 1e-5;

  // Shapes that take the channel-major Winograd (in any pass) also run with the other variant
  // and with it switched off, so the direct kernel keeps its coverage of all three passes.
  using duet::kernels::ConvPass;
  using duet::kernels::detail::WinogradLayout;
  bool takes_winograd = false;
  for (ConvPass pass : {ConvPass::forward, ConvPass::input_gradient, ConvPass::weight_gradient})
    takes_winograd = takes_winograd || duet::kernels::conv2d_takes_winograd(s, pass);
  // The forward pass and the input gradient (its transposed twin) take the same variant.
  const int64_t chosen =
      takes_winograd ? duet::kernels::detail::winograd_tile(s, WinogradLayout::channel_major) : 0;
  for (const WinogradMode& mode : winograd_modes(chosen)) {
    const std::string direct = mode.suffix();
    const int64_t tile = !mode.on ? 0 : mode.tile != 0 ? mode.tile : chosen;
    auto with_winograd = [mode](auto&& fast) { mode.run(fast); };
    for (bool epi : {false, true}) {
      duet::test::add_kernel_case(
          {"conv2d/fwd" + direct + (epi ? "_epi/" : "/") + label(row), s.flops(),
           winograd_atol(atol_fwd, red_fwd, tile), 1e-4, [=] {
             auto x = duet::test::random_vector(nx, seed + 1);
             auto w = duet::test::random_vector(nw, seed + 2);
             const EpilogueInputs ep(nk, ny, seed + 3);
             return [=](bool fast, std::vector<float>& out) {
               const Epilogue e = epi ? ep.full(ep.residual.data(), Activation::relu) : Epilogue{};
               out.assign(ny, NAN);
               if (fast)
                 with_winograd(
                     [&] { duet::kernels::conv2d_forward(s, x.data(), w.data(), out.data(), e); });
               else
                 duet::kernels::ref::conv2d_forward(s, x.data(), w.data(), out.data(), e);
             };
           }});
    }
    // The fused forward (a GroupNorm + SiLU in front, an embedding added after): its prologue's
    // outputs reach about 2.5 in magnitude, so the products' rounding does too. The shapes
    // take turns at the activations, so that each vector twin of each meets the layout moves.
    constexpr Activation kActs[] = {Activation::silu, Activation::gelu, Activation::relu,
                                    Activation::none};
    const Activation prologue_act = kActs[seed % 4], epilogue_act = kActs[(seed / 4) % 4];
    if (s.groups == 1)
      duet::test::add_kernel_case(
          {"conv2d/fwd_fused" + direct + "/" + label(row), s.flops(),
           3 * winograd_atol(atol_fwd, red_fwd, tile), 1e-4, [=] {
             auto x = duet::test::random_vector(nx, seed + 4);
             auto w = duet::test::random_vector(nw, seed + 5);
             const EpilogueInputs ep(nk, ny, seed + 6);
             const size_t planes = size_t(s.batch * s.in_channels);
             auto scale = duet::test::random_vector(planes, seed + 14, 0.5f, 1.5f);
             auto shift = duet::test::random_vector(planes, seed + 15);
             auto image_bias = duet::test::random_vector(size_t(s.batch) * nk, seed + 16);
             return [=](bool fast, std::vector<float>& out) {
               const duet::kernels::Prologue p{scale.data(), shift.data(), prologue_act};
               const Epilogue e = ep.full(ep.residual.data(), epilogue_act);
               out.assign(ny, NAN);
               if (fast)
                 with_winograd([&] {
                   duet::kernels::conv2d_forward_fused(s, x.data(), w.data(), out.data(), p,
                                                       image_bias.data(), e);
                 });
               else
                 duet::kernels::ref::conv2d_forward_fused(s, x.data(), w.data(), out.data(), p,
                                                          image_bias.data(), e);
             };
           }});
    // Its training form (ops::conv2d_add): no prologue, so the input goes in as it is; bias,
    // residual and (on every other shape) an image bias added in the store.
    const size_t biases = seed % 2 == 0 ? size_t(s.batch) * nk : 0;
    if (s.groups == 1)
      duet::test::add_kernel_case({"conv2d/fwd_add" + direct + "/" + label(row), s.flops(),
                                   winograd_atol(atol_fwd, red_fwd, tile), 1e-4, [=] {
                                     auto x = duet::test::random_vector(nx, seed + 17);
                                     auto w = duet::test::random_vector(nw, seed + 18);
                                     auto bias = duet::test::random_vector(nk, seed + 19);
                                     auto residual = duet::test::random_vector(ny, seed + 20);
                                     auto image_bias = duet::test::random_vector(biases, seed + 21);
                                     return [=](bool fast, std::vector<float>& out) {
                                       Epilogue e;
                                       e.bias = bias.data();
                                       e.residual = residual.data();
                                       const float* ib = biases ? image_bias.data() : nullptr;
                                       out.assign(ny, NAN);
                                       if (fast)
                                         with_winograd([&] {
                                           duet::kernels::conv2d_forward_fused(
                                               s, x.data(), w.data(), out.data(), {}, ib, e);
                                         });
                                       else
                                         duet::kernels::ref::conv2d_forward_fused(
                                             s, x.data(), w.data(), out.data(), {}, ib, e);
                                     };
                                   }});
    duet::test::add_kernel_case(
        {"conv2d/bwd_data" + direct + "/" + label(row), s.flops(),
         winograd_atol(2e-6 * std::sqrt(double(nw)) + 1e-6, double(nw), tile), 1e-4, [=] {
           auto dy = duet::test::random_vector(ny, seed + 7);
           auto w = duet::test::random_vector(nw, seed + 8);
           return [=](bool fast, std::vector<float>& out) {
             out.assign(nx, NAN);
             if (fast)
               with_winograd([&] {
                 duet::kernels::conv2d_backward_data(s, dy.data(), w.data(), out.data());
               });
             else
               duet::kernels::ref::conv2d_backward_data(s, dy.data(), w.data(), out.data());
           };
         }});
    duet::test::add_kernel_case(
        {"conv2d/bwd_weight" + direct + "/" + label(row), s.flops(), atol_w, 1e-4, [=] {
           auto x = duet::test::random_vector(nx, seed + 9);
           auto dy = duet::test::random_vector(ny, seed + 10);
           return [=](bool fast, std::vector<float>& out) {
             out.assign(nw + nk, NAN);
             float* db = out.data() + nw;
             if (fast)
               with_winograd([&] {
                 duet::kernels::conv2d_backward_weight(s, x.data(), dy.data(), out.data(), db);
               });
             else
               duet::kernels::ref::conv2d_backward_weight(s, x.data(), dy.data(), out.data(), db);
           };
         }});
  }
  if (s.groups == 1) {
    add_blocked_cases(row, s, seed, atol_fwd);
    add_blocked_gradient_cases(row, s, seed);
  }
}

const duet::test::Register reg([] {
  const Row rows[] = {
      // n  c   k   h    w   r  s  str pad_h pad_w dil groups
      {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},        // smallest pointwise
      {3, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1},        // 3x3 same padding, batch 3
      {1, 13, 24, 28, 28, 3, 3, 2, 1, 1, 1, 1},    // stride 2
      {3, 7, 13, 5, 1, 3, 1, 1, 1, 0, 1, 1},       // 3x1 kernel on width 1
      {1, 24, 24, 28, 28, 1, 1, 1, 0, 0, 1, 1},    // pointwise as plain GEMM
      {3, 24, 24, 5, 5, 1, 1, 1, 0, 0, 1, 2},      // pointwise, 2 groups
      {3, 24, 7, 13, 13, 1, 1, 2, 0, 0, 1, 1},     // 1x1 stride 2 (packed path)
      {1, 7, 3, 13, 13, 5, 5, 1, 2, 2, 2, 1},      // 5x5 dilated
      {3, 13, 7, 5, 5, 3, 3, 1, 0, 0, 1, 1},       // 3x3 no padding
      {3, 7, 13, 10, 10, 3, 3, 1, 1, 1, 1, 1},     // 2-image blocks with a 1-image remainder
      {1, 3, 13, 3, 127, 3, 3, 1, 1, 1, 1, 1},     // width 127: tile edges inside rows
      {1, 3, 7, 2, 128, 3, 3, 2, 1, 1, 1, 1},      // width 128, stride 2
      {3, 24, 24, 5, 5, 3, 3, 1, 1, 1, 1, 2},      // 2 groups
      {1, 24, 24, 14, 14, 3, 3, 1, 1, 1, 2, 2},    // 2 groups, dilation 2
      {3, 24, 24, 14, 14, 3, 3, 1, 1, 1, 1, 24},   // depthwise
      {1, 13, 13, 5, 5, 3, 3, 2, 1, 1, 1, 13},     // depthwise stride 2
      {3, 7, 7, 13, 13, 5, 5, 1, 2, 2, 2, 7},      // depthwise 5x5 dilated
      {3, 16, 16, 28, 28, 3, 3, 1, 1, 1, 1, 1},    // ResNet-20 stage 1
      {1, 16, 32, 28, 28, 3, 3, 2, 1, 1, 1, 1},    // ResNet-20 transition
      {2, 32, 64, 14, 14, 3, 3, 2, 1, 1, 1, 1},    // ResNet-20 transition to 64 channels
      {2, 64, 64, 7, 7, 3, 3, 1, 1, 1, 1, 1},      // ResNet-20 stage 3: four 16-wide panels
      {3, 32, 32, 14, 14, 3, 3, 1, 1, 1, 1, 1},    // ResNet-20 stage 2: 12-tile runs and a rest
      {1, 128, 128, 14, 14, 3, 3, 1, 1, 1, 1, 1},  // unet-s's widest level
      {2, 96, 32, 14, 14, 3, 3, 1, 1, 1, 1, 1},    // a UNet concatenation: 6 blocks in, 2 out
      {1, 40, 32, 18, 10, 3, 3, 1, 1, 1, 1, 1},    // 3 blocks in, one partial; runs of 12 + 3
      {2, 1, 16, 5, 5, 3, 3, 1, 1, 1, 1, 1},       // one input channel
      {2, 3, 16, 7, 1, 3, 3, 1, 3, 1, 1, 1},     // pad beyond the kernel: no stride-1 bwd_data flip
      {2, 13, 16, 14, 13, 3, 3, 2, 1, 1, 1, 1},  // stride 2, odd width
      {1, 7, 16, 14, 14, 3, 3, 2, 2, 2, 2, 1},   // stride 2, dilation 2
      {2, 16, 24, 28, 28, 3, 3, 1, 1, 1, 1, 1},  // 24 outputs: a half-empty second panel
      {2, 40, 48, 9, 11, 3, 3, 1, 1, 1, 1, 1},   // three panels: a two-panel tile and one more
      {1, 48, 40, 10, 10, 3, 3, 2, 1, 1, 1, 1},  // the same for strided backward-data phases
      {1, 192, 160, 5, 5, 3, 3, 1, 1, 1, 1, 1},  // weights past the channel-major direct bound
      {2, 16, 16, 10, 9, 3, 3, 1, 0, 0, 1, 1},   // Winograd without padding: 8 x 7 output
      {1, 20, 16, 5, 7, 3, 3, 1, 2, 2, 1, 1},    // Winograd, padding 2: tiles past the image
      {1, 17, 33, 8, 8, 3, 3, 1, 1, 1, 1, 1},    // Winograd, partial input and output blocks
      {1, 16, 16, 6, 6, 3, 3, 1, 1, 1, 1, 1},    // 9 tiles: too few for Winograd
      {1, 64, 64, 7, 7, 3, 3, 1, 1, 1, 1, 1},    // Winograd at batch 1: tile rows split
      {3, 32, 32, 14, 14, 3, 3, 1, 1, 0, 1, 1},  // Winograd, padding only along the rows
      // Channel-major Winograd (>= 32 channels each side; bwd_data is its transposed twin):
      {2, 32, 48, 10, 9, 3, 3, 1, 0, 0, 1, 1},   // no padding, so bwd_data pads by 2
      {1, 40, 36, 5, 7, 3, 3, 1, 2, 2, 1, 1},    // padding 2, channels past a block
      {1, 33, 35, 31, 29, 3, 3, 1, 1, 1, 1, 1},  // odd sizes, chunks of tile rows, 8x8 tails
      {5, 32, 40, 7, 7, 3, 3, 1, 1, 1, 1, 1},    // 4 tiles of 4x4 an image: chunks span images
      {2, 96, 32, 28, 28, 3, 3, 1, 1, 1, 1, 1},  // wide: chunks grow to fill their micro-tiles
  };
  for (const Row& r : rows)
    if (r.c % r.groups == 0 && r.k % r.groups == 0) add_cases(r);
});

}  // namespace
