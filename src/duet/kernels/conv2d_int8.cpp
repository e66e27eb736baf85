// The int8 convolution driver: each image is quantised once into a padded NHWC u8 copy, then
// every output pixel reads its taps straight from that copy (four channels per 32-bit load, no
// im2col), 16 output channels at a time, into int32; the store converts to float, transposes to
// NCHW (or writes the block as it is into a channel-blocked output) and applies the epilogue
// while the block is in cache. Without AVX-512 VNNI, 3x3 stride-1 convs instead transform each
// quantised image into Winograd tiles and compute whole images per 16-channel block
// (conv2d_int8_winograd.h): F(4x4) where the batch has the tiles for it, with sums within a
// small stated error of the direct ones, else (without VNNI) the exact F(2x2); the stores are the
// same. Portable loops here; the AVX2 inner loops are in conv2d_int8_avx2.cpp and
// conv2d_int8_winograd_avx2.cpp (the Winograd blocks in conv2d_int8_winograd_blocks.h).
#include "duet/kernels/conv2d_int8.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/conv2d_int8_winograd.h"
#include "duet/kernels/gemm_epilogue.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {

ActivationQuant ActivationQuant::from_range(float lo, float hi) {
  DUET_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi,
             "activation range must be finite with lo <= hi, got [", lo, ", ", hi, "]");
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  ActivationQuant q;
  // A degenerate (all-zero) range still needs a usable scale: any positive value maps 0 to the
  // zero point exactly.
  const float span = hi - lo;
  q.scale = span > 1e-20f ? span / float(kActivationLevels - 1) : 1.0f;
  q.inv_scale = 1.0f / q.scale;
  q.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / q.scale), 0.0f, 127.0f));
  return q;
}

Int8ConvWeights pack_int8_conv_weights(const int8_t* w, int64_t K, int64_t C, int64_t R,
                                       int64_t S) {
  DUET_CHECK(w && K >= 1 && C >= 1 && R >= 1 && S >= 1, "pack_int8_conv_weights: bad shape [", K,
             ", ", C, ", ", R, ", ", S, "]");
  // |sum| <= taps x 127 x 127 must fit the int32 accumulators.
  DUET_CHECK(C * R * S <= (int64_t{1} << 31) / (127 * 127 + 1),
             "pack_int8_conv_weights: ", C * R * S, " taps per output would overflow int32 sums");
  Int8ConvWeights p;
  p.out_channels = K, p.in_channels = C, p.kernel_h = R, p.kernel_w = S;
  p.channels4 = (C + 3) / 4 * 4;
  const int64_t G4 = p.groups4(), blocks = (K + kInt8BlockK - 1) / kInt8BlockK;
  p.packed.assign(size_t(blocks * G4 * kInt8BlockK * 4), 0);
  p.weight_sums.assign(size_t(K), 0);
  for (int64_t k = 0; k < K; ++k) {
    int8_t* blk = p.packed.data() + (k / kInt8BlockK) * G4 * kInt8BlockK * 4;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s) {
          const int8_t v = w[((k * C + c) * R + r) * S + s];
          DUET_CHECK(v >= -kWeightMax, "pack_int8_conv_weights: weight -128 at output channel ", k,
                     " (weights must lie in [-127, 127])");
          const int64_t g = (r * S + s) * (p.channels4 / 4) + c / 4;
          blk[(g * kInt8BlockK + k % kInt8BlockK) * 4 + c % 4] = v;
          p.weight_sums[size_t(k)] += v;
          p.max_abs_weight = std::max(p.max_abs_weight, std::abs(int32_t{v}));
        }
  }
  if (R == 3 && S == 3) {
    p.winograd = detail::winograd_int8_weights(w, K, C, p.channels4);
    detail::winograd4_int8_weights(w, K, C, p.channels4, p.winograd4, p.winograd4_scales);
  }
  return p;
}

namespace detail {

void fill_padding(uint8_t* out, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t C4,
                  int32_t zero_point) {
  const int64_t Wp = W + 2 * pw, Hp = H + 2 * ph;
  const int z = zero_point;
  if (C < C4) {  // every pixel has spare channels: set the whole image
    std::memset(out, z, size_t(Hp * Wp * C4));
    return;
  }
  std::memset(out, z, size_t(ph * Wp * C4));                       // the rows above
  std::memset(out + (ph + H) * Wp * C4, z, size_t(ph * Wp * C4));  // and below
  for (int64_t r = ph; r < ph + H; ++r) {                          // each row's left and right ends
    std::memset(out + r * Wp * C4, z, size_t(pw * C4));
    std::memset(out + (r * Wp + pw + W) * C4, z, size_t(pw * C4));
  }
}

void quantize_to_padded_nhwc(const float* x, int64_t C, int64_t H, int64_t W, int64_t ph,
                             int64_t pw, int64_t C4, const ActivationQuant& q, uint8_t* out) {
  const int64_t Wp = W + 2 * pw;
  fill_padding(out, C, H, W, ph, pw, C4, q.zero_point);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t v = 0; v < W; ++v)
        out[((h + ph) * Wp + v + pw) * C4 + c] = quantize_activation(x[(c * H + h) * W + v], q);
}

void int8_block_generic(const uint8_t* image, const int64_t* base, int64_t count,
                        const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                        int32_t* acc) {
  for (int64_t j = 0; j < count; ++j)
    for (int64_t k = 0; k < kInt8BlockK; ++k) {
      int32_t sum = 0;
      for (int64_t g = 0; g < groups4; ++g) {
        const uint8_t* a = image + base[j] + tap_offsets[g];
        const int8_t* b = wblock + (g * kInt8BlockK + k) * 4;
        for (int t = 0; t < 4; ++t) sum += int32_t(a[t]) * int32_t(b[t]);
      }
      acc[j * kInt8BlockK + k] = sum;
    }
}

void quantize_blocked_channels(const float* x, int64_t c_begin, int64_t C, int64_t H, int64_t W,
                               int64_t ph, int64_t pw, int64_t C4, const ActivationQuant& q,
                               uint8_t* out) {
  const int64_t Wp = W + 2 * pw;
  for (int64_t c = c_begin; c < C; ++c)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t v = 0; v < W; ++v)
        out[((h + ph) * Wp + v + pw) * C4 + c] =
            quantize_activation(x[((c / 16 * H + h) * W + v) * 16 + c % 16], q);
}

void quantize_blocked_to_padded_nhwc(const float* x, int64_t C, int64_t H, int64_t W, int64_t ph,
                                     int64_t pw, int64_t C4, const ActivationQuant& q,
                                     uint8_t* out) {
  fill_padding(out, C, H, W, ph, pw, C4, q.zero_point);
  quantize_blocked_channels(x, 0, C, H, W, ph, pw, C4, q, out);
}

void quantize_blocked_to_padded_nhwc_avx512(const float* x, int64_t C, int64_t H, int64_t W,
                                            int64_t ph, int64_t pw, int64_t C4,
                                            const ActivationQuant& q, uint8_t* out) {
  fill_padding(out, C, H, W, ph, pw, C4, q.zero_point);
  const int64_t whole = C / 16;
  quantize_blocked_interior_avx512(x, whole, H, W, ph, pw, C4, q.inv_scale, q.zero_point, out);
  quantize_blocked_channels(x, whole * 16, C, H, W, ph, pw, C4, q, out);
}

void int8_store_blocked_generic(const int32_t* acc, int64_t count, int64_t kn,
                                const int32_t* zero_point_sums, const Epilogue& e, int64_t k0,
                                const float* residual, float* yb) {
  for (int64_t j = 0; j < count; ++j)
    for (int64_t k = 0; k < kInt8BlockK; ++k) {
      const int64_t at = j * kInt8BlockK + k, ch = k0 + k;
      if (k >= kn) {
        yb[at] = 0.0f;
        continue;
      }
      float v = int8_scaled_sum(e, acc[at] - zero_point_sums[k], ch);
      if (residual) v += residual[at];
      yb[at] = gemm_detail::activate(e.act, v);
    }
}

void int8_store_generic(const int32_t* acc, int64_t count, int64_t kn,
                        const int32_t* zero_point_sums, const Epilogue& e, int64_t k0, int64_t p0,
                        float* yb, int64_t ld) {
  for (int64_t k = 0; k < kn; ++k)
    for (int64_t j = 0; j < count; ++j) {
      float v = int8_scaled_sum(e, acc[j * kInt8BlockK + k] - zero_point_sums[k], k0 + k);
      if (e.residual) v += e.residual[(k0 + k) * e.ld_residual + p0 + j];
      yb[k * ld + j] = gemm_detail::activate(e.act, v);
    }
}

}  // namespace detail

namespace {

constexpr int64_t kPixelChunk = 64;  // output pixels per work item (acc: 64 x 16 int32, 4 KiB)

struct Plan {
  int64_t C4, Hp, Wp, image_bytes, P, Q, PQ, chunks, kblocks, G4;
  std::vector<int32_t> tap_offsets;  // per tap group, bytes from the pixel's tap-(0, 0) byte
  std::vector<int64_t> base;         // per output pixel, bytes from the image start
};

Plan make_plan(const Conv2dShape& s, const Int8ConvWeights& w) {
  Plan p{};
  p.C4 = w.channels4;
  p.Hp = s.in_h + 2 * s.pad_h;
  p.Wp = s.in_w + 2 * s.pad_w;
  const double bytes = double(p.Hp) * double(p.Wp) * double(p.C4);
  DUET_CHECK(bytes < double(std::numeric_limits<int32_t>::max()), "conv2d_int8: padded image of ",
             p.Hp, "x", p.Wp, "x", p.C4, " bytes is too large");
  p.image_bytes = p.Hp * p.Wp * p.C4;
  p.P = s.out_h(), p.Q = s.out_w(), p.PQ = p.P * p.Q;
  p.chunks = (p.PQ + kPixelChunk - 1) / kPixelChunk;
  p.kblocks = (s.out_channels + kInt8BlockK - 1) / kInt8BlockK;
  p.G4 = w.groups4();
  p.tap_offsets.reserve(size_t(p.G4));
  for (int64_t r = 0; r < s.kernel_h; ++r)
    for (int64_t t = 0; t < s.kernel_w; ++t)
      for (int64_t c = 0; c < p.C4; c += 4)
        p.tap_offsets.push_back(int32_t(((r * s.dilation_h) * p.Wp + t * s.dilation_w) * p.C4 + c));
  p.base.resize(size_t(p.PQ));
  const int64_t row_step = s.stride_h * p.Wp * p.C4, pixel_step = s.stride_w * p.C4;
  int64_t* base = p.base.data();
  for (int64_t i = 0; i < p.P; ++i)
    for (int64_t j = 0, at = i * row_step; j < p.Q; ++j, at += pixel_step) *base++ = at;
  return p;
}

// How conv2d_int8_forward reads x and writes y: channel-major or channel-blocked.
struct IoLayout {
  bool x_blocked = false, y_blocked = false;
};

// Which kernels a call runs, resolved once per call rather than per work item.
struct Paths {
  bool avx2, avx512;
  decltype(&detail::int8_block_generic) block;
  // Two channel blocks per call where the CPU has a kernel for it (AVX-512 VNNI), else null.
  decltype(&detail::int8_block_pair_avx512vnni) block_pair;
  int64_t blocks_per_item() const { return block_pair ? 2 : 1; }
  // 3x3 stride 1 on AVX2 without VNNI, unless switched off (set_winograd): exact Winograd
  // F(2x2, 3x3) instead of `block`; where int8_winograd4_takes, F(4x4, 3x3) instead of either,
  // by this block (null: F(4x4) does not run).
  bool winograd;
  decltype(&detail::winograd4_int8_block_avx2) winograd4_block;
};

Paths resolve_paths(const Conv2dShape& s, const Int8ConvWeights& w) {
  const bool avx2 = isa_at_least(Isa::avx2);
  // Images of 16-byte pixels at stride 1: four neighbouring pixels a vector (the quads kernel).
  const auto avx512_vnni_block = w.channels4 == 16 && s.stride_w == 1
                                     ? detail::int8_block_quads_avx512vnni
                                     : detail::int8_block_avx512vnni;
  return {avx2,
          avx2 && isa_at_least(Isa::avx512),
          !avx2                    ? detail::int8_block_generic
          : use_avx512_vnni()      ? avx512_vnni_block
          : use_avx_vnni()         ? detail::int8_block_vnni
          : w.taps_pair_in_int16() ? detail::int8_block_avx2_paired
                                   : detail::int8_block_avx2,
          avx2 && use_avx512_vnni() ? detail::int8_block_pair_avx512vnni : nullptr,
          int8_winograd_enabled() && detail::int8_winograd_applies(s, w),
          !int8_winograd4_takes(s, w) ? nullptr
          : use_avx_vnni()            ? detail::winograd4_int8_block_vnni
                                      : detail::winograd4_int8_block_avx2};
}

// Stores the int32 sums of `count` output pixels from p0 of image n, channels [kb * 16, +16):
// float conversion, zero-point correction and the epilogue, into y (channel-major or blocked).
void store_sums(const Conv2dShape& s, const Plan& p, const int32_t* acc, const Int8ConvWeights& w,
                int32_t zero_point, int64_t n, int64_t p0, int64_t count, int64_t kb, float* y,
                const Epilogue& e, const Paths& paths, bool y_blocked) {
  const bool avx2 = paths.avx2;
  const int64_t k0 = kb * kInt8BlockK, kn = std::min(kInt8BlockK, s.out_channels - k0);
  float* yb = y + (n * s.out_channels + k0) * p.PQ + p0;
  // Padding and activations carry the zero point; subtracting zero_point x sum(w) once per
  // channel makes the sum one of w * (q - zero_point), exactly, in int32.
  alignas(32) int32_t zero_point_sums[kInt8BlockK] = {};
  for (int64_t k = 0; k < kn; ++k) zero_point_sums[k] = zero_point * w.weight_sums[size_t(k0 + k)];
  if (y_blocked) {  // block kb of image n holds these 16 channels for every pixel
    const int64_t at = ((n * p.kblocks + kb) * p.PQ + p0) * kInt8BlockK;
    const float* residual = e.residual ? e.residual + at : nullptr;
    if (paths.avx512 &&
        detail::int8_store_blocked_avx512(acc, count, kn, zero_point_sums, e, k0, residual, y + at))
      return;
    (avx2 ? detail::int8_store_blocked_avx2 : detail::int8_store_blocked_generic)(
        acc, count, kn, zero_point_sums, e, k0, residual, y + at);
    return;
  }
  Epilogue en = e;  // the image's [K, P*Q] block, as conv2d_forward's GEMM store sees it
  en.axis = ChannelAxis::row;
  if (e.residual) en.residual = e.residual + n * s.out_channels * p.PQ;
  en.ld_residual = p.PQ;
  (avx2 ? detail::int8_store_avx2 : detail::int8_store_generic)(acc, count, kn, zero_point_sums, en,
                                                                k0, p0, yb, p.PQ);
}

// One direct work item: output pixels [chunk * 64, +64) of image n, channels [kb * 16, +16), and
// the next block's too where paths.block_pair runs (and there is one).
void run_item(const Conv2dShape& s, const Plan& p, const uint8_t* image, const Int8ConvWeights& w,
              int32_t zero_point, int64_t n, int64_t chunk, int64_t kb, float* y, const Epilogue& e,
              const Paths& paths, bool y_blocked) {
  alignas(64) int32_t acc[2][kPixelChunk * kInt8BlockK];
  const int64_t p0 = chunk * kPixelChunk, count = std::min(kPixelChunk, p.PQ - p0);
  const int8_t* wblock = w.packed.data() + kb * p.G4 * kInt8BlockK * 4;
  if (paths.block_pair && kb + 1 < p.kblocks) {
    paths.block_pair(image, p.base.data() + p0, count, p.tap_offsets.data(), p.G4, wblock, acc[0],
                     acc[1]);
    store_sums(s, p, acc[0], w, zero_point, n, p0, count, kb, y, e, paths, y_blocked);
    store_sums(s, p, acc[1], w, zero_point, n, p0, count, kb + 1, y, e, paths, y_blocked);
    return;
  }
  paths.block(image, p.base.data() + p0, count, p.tap_offsets.data(), p.G4, wblock, acc[0]);
  store_sums(s, p, acc[0], w, zero_point, n, p0, count, kb, y, e, paths, y_blocked);
}

// One Winograd work item: every output pixel of image n, channels [kb * 16, +16), from the
// image's transformed tiles u (F(4x4) when tiles.edge is 4, else F(2x2)); acc holds P x Q x 16
// int32 (64-byte aligned).
void run_winograd_item(const Conv2dShape& s, const Plan& p, const detail::WinogradTiles& tiles,
                       const int16_t* u, const Int8ConvWeights& w, int32_t zero_point, int64_t n,
                       int64_t kb, float* y, const Epilogue& e, const Paths& paths, bool y_blocked,
                       int32_t* acc) {
  if (tiles.edge == 4) {
    const int64_t positions = detail::kWinograd4Positions;
    paths.winograd4_block(u, w.winograd4.data() + kb * positions * p.C4 * kInt8BlockK,
                          w.winograd4_scales.data() + kb * positions * kInt8BlockK, p.C4, tiles,
                          acc);
  } else {
    detail::winograd_int8_block_avx2(
        u, w.winograd.data() + kb * detail::kWinogradPositions * p.C4 * kInt8BlockK, p.C4, tiles,
        acc);
  }
  store_sums(s, p, acc, w, zero_point, n, 0, p.PQ, kb, y, e, paths, y_blocked);
}

// int8_forward's Winograd form (F(4x4) where paths.winograd4_block is set, else F(2x2)): each image
// quantised and transformed once, then one work item per 16-channel block of outputs, with the same
// two threading shapes as the direct form.
template <class Quantize>
void winograd_forward(const Conv2dShape& s, const Plan& p, const Quantize& quantize,
                      const Int8ConvWeights& w, int32_t zero_point, float* y, const Epilogue& e,
                      const Paths& paths, IoLayout io, int nt) {
  const detail::WinogradTiles tiles = detail::winograd_tiles(s, paths.winograd4_block ? 4 : 2);
  const int64_t positions =
      paths.winograd4_block ? detail::kWinograd4Positions : detail::kWinogradPositions;
  const int64_t u_elems = positions * tiles.count * p.C4;
  auto prepare = [&](int64_t n, uint8_t* image, int16_t* u) {
    quantize(n, image);
    detail::winograd_int8_input_avx2(image, p.Hp, p.Wp, p.C4, tiles, u);
  };
  if (s.batch >= 2 * nt) {  // many images: one thread per image, its tiles still in cache
    parallel_for(s.batch, 1, [&](int64_t b, int64_t end) {
      const memory::Scratch<uint8_t> image(p.image_bytes + 64);
      const memory::Scratch<int16_t> u(u_elems);
      const memory::Scratch<int32_t> acc(p.PQ * kInt8BlockK);
      for (int64_t n = b; n < end; ++n) {
        prepare(n, image.get(), u.get());
        for (int64_t kb = 0; kb < p.kblocks; ++kb)
          run_winograd_item(s, p, tiles, u.get(), w, zero_point, n, kb, y, e, paths, io.y_blocked,
                            acc.get());
      }
    });
    return;
  }
  // Few images: prepare them all, then split images x channel blocks with the direct form's
  // ~2 M (direct) multiply-adds per thread at least.
  const int64_t macs_per_item = p.PQ * kInt8BlockK * p.G4 * 4;
  const int64_t grain =
      std::max<int64_t>(1, ((int64_t{1} << 21) + macs_per_item - 1) / macs_per_item);
  const memory::Scratch<uint8_t> image(p.image_bytes + 64);
  const memory::Scratch<int16_t> us(s.batch * u_elems);
  for (int64_t n = 0; n < s.batch; ++n) prepare(n, image.get(), us.get() + n * u_elems);
  parallel_for(s.batch * p.kblocks, grain, [&](int64_t b, int64_t end) {
    const memory::Scratch<int32_t> acc(p.PQ * kInt8BlockK);
    for (int64_t i = b; i < end; ++i)
      run_winograd_item(s, p, tiles, us.get() + (i / p.kblocks) * u_elems, w, zero_point,
                        i / p.kblocks, i % p.kblocks, y, e, paths, io.y_blocked, acc.get());
  });
}

void int8_forward(const Conv2dShape& s, const float* x, const ActivationQuant& xq,
                  const Int8ConvWeights& w, float* y, const Epilogue& e, IoLayout io) {
  detail::check_conv2d_shape(s);
  DUET_CHECK(s.groups == 1, "conv2d_int8: groups must be 1, got ", s.groups);
  DUET_CHECK(w.out_channels == s.out_channels && w.in_channels == s.in_channels &&
                 w.kernel_h == s.kernel_h && w.kernel_w == s.kernel_w,
             "conv2d_int8: packed weights [", w.out_channels, ", ", w.in_channels, ", ", w.kernel_h,
             ", ", w.kernel_w, "] do not match the shape's [", s.out_channels, ", ", s.in_channels,
             ", ", s.kernel_h, ", ", s.kernel_w, "]");
  DUET_CHECK(x && y, "conv2d_int8: null buffer");
  DUET_CHECK(e.axis == ChannelAxis::row, "conv2d_int8: the epilogue's channel axis must be rows");
  DUET_CHECK(!e.shift, "conv2d_int8: the epilogue takes scale and bias, not shift");
  if (s.batch == 0) return;
  const Paths paths = resolve_paths(s, w);
  const bool avx2 = paths.avx2;
  const Plan p = make_plan(s, w);
  const int64_t in_image =
      (io.x_blocked ? channel_blocks(s.in_channels) * kChannelBlock : s.in_channels) * s.in_h *
      s.in_w;
  const auto quantize_blocked = !avx2          ? detail::quantize_blocked_to_padded_nhwc
                                : paths.avx512 ? detail::quantize_blocked_to_padded_nhwc_avx512
                                               : detail::quantize_blocked_to_padded_nhwc_avx2;
  const auto quantize_image = io.x_blocked ? quantize_blocked
                                           : (avx2 ? detail::quantize_to_padded_nhwc_avx2
                                                   : detail::quantize_to_padded_nhwc);
  auto quantize = [&](int64_t n, uint8_t* dst) {
    quantize_image(x + n * in_image, s.in_channels, s.in_h, s.in_w, s.pad_h, s.pad_w, p.C4, xq,
                   dst);
  };
  // A work item: a chunk of pixels by one channel block, or two (paths.block_pair).
  const int64_t kstep = paths.blocks_per_item(), kitems = (p.kblocks + kstep - 1) / kstep;
  const int64_t items_per_image = p.chunks * kitems;
  const int nt = in_parallel_region() ? 1 : num_threads();
  if (paths.winograd || paths.winograd4_block)
    return winograd_forward(s, p, quantize, w, xq.zero_point, y, e, paths, io, nt);

  if (s.batch >= 2 * nt) {
    // Many images: each thread quantises an image into its own buffer and convolves it whole,
    // so the u8 copy is still in L1/L2 for every output channel block.
    parallel_for(s.batch, 1, [&](int64_t b, int64_t end) {
      // Not zeroed: the quantiser writes every byte the kernel reads.
      const auto image = std::make_unique_for_overwrite<uint8_t[]>(size_t(p.image_bytes) + 64);
      for (int64_t n = b; n < end; ++n) {
        quantize(n, image.get());
        for (int64_t item = 0; item < items_per_image; ++item)
          run_item(s, p, image.get(), w, xq.zero_point, n, item / kitems, item % kitems * kstep, y,
                   e, paths, io.y_blocked);
      }
    });
    return;
  }
  // Few images (batch 1 latency): quantise them all, then split pixels x channel blocks, with at
  // least ~2 M multiply-adds per thread: handing a worker less costs more than it saves, and on a
  // busy machine far more (measured: ResNet-20 batch 1 at 2 threads went from 0.6 ms to 4 ms with
  // one item per thread while other processes held the cores). With AVX-512 VNNI and blocked
  // activations the ResNet-20 layers (1.8 M) then run on one thread: 0.21-0.22 ms per image
  // against 0.25-0.34 ms at a 1 M grain and 0.29 ms on one thread throughout.
  const int64_t macs_per_item = kPixelChunk * kInt8BlockK * kstep * p.G4 * 4;
  const int64_t grain =
      std::max<int64_t>(1, ((int64_t{1} << 21) + macs_per_item - 1) / macs_per_item);
  const auto images =
      std::make_unique_for_overwrite<uint8_t[]>(size_t(s.batch * p.image_bytes) + 64);
  parallel_for(s.batch, 1, [&](int64_t b, int64_t end) {
    for (int64_t n = b; n < end; ++n) quantize(n, images.get() + n * p.image_bytes);
  });
  parallel_for(s.batch * items_per_image, grain, [&](int64_t b, int64_t end) {
    for (int64_t i = b; i < end; ++i) {
      const int64_t n = i / items_per_image, item = i % items_per_image;
      run_item(s, p, images.get() + n * p.image_bytes, w, xq.zero_point, n, item / kitems,
               item % kitems * kstep, y, e, paths, io.y_blocked);
    }
  });
}

}  // namespace

bool int8_winograd_enabled() {
  return isa_at_least(Isa::avx2) && !use_avx512_vnni() && !use_avx_vnni() && use_winograd();
}

bool int8_winograd4_takes(const Conv2dShape& s, const Int8ConvWeights& w) {
  return isa_at_least(Isa::avx2) && !use_avx512_vnni() && use_winograd() &&
         detail::winograd_tile(s, detail::WinogradLayout::blocked) == 4 &&
         detail::int8_winograd4_applies(s, w);
}

void conv2d_int8_forward(const Conv2dShape& s, const float* x, const ActivationQuant& xq,
                         const Int8ConvWeights& w, float* y, const Epilogue& e) {
  int8_forward(s, x, xq, w, y, e, {});
}

void conv2d_int8_forward_blocked(const Conv2dShape& s, bool x_blocked, const float* x,
                                 const ActivationQuant& xq, const Int8ConvWeights& w, float* y,
                                 const Epilogue& e) {
  int8_forward(s, x, xq, w, y, e, {x_blocked, true});
}

}  // namespace duet::kernels
