// The channel-blocked convolution: Winograd (conv2d_winograd_avx2.cpp) or the direct
// AVX2/AVX-512 kernel (conv2d_direct_avx2.cpp) where they apply, otherwise a round trip through
// the channel-major convolution.
#include "duet/kernels/conv2d_blocked.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace detail {

void forward_blocked_via_channel_major(ChannelMajorConv conv, const Conv2dShape& s, bool x_blocked,
                                       const float* x, const float* w, float* y,
                                       const Epilogue& e) {
  const int64_t hw = s.in_h * s.in_w, pq = s.out_h() * s.out_w();
  std::vector<float> xc, yc(size_t(s.batch * s.out_channels * pq)), rc;
  if (x_blocked) {
    xc.resize(size_t(s.batch * s.in_channels * hw));
    from_channel_blocked(s.batch, s.in_channels, hw, x, xc.data());
    x = xc.data();
  }
  Epilogue ec = e;
  ec.axis = ChannelAxis::row;
  if (e.residual) {
    rc.resize(yc.size());
    from_channel_blocked(s.batch, s.out_channels, pq, e.residual, rc.data());
    ec.residual = rc.data();
    ec.ld_residual = pq;
  }
  conv(s, x, w, yc.data(), ec);
  to_channel_blocked(s.batch, s.out_channels, pq, yc.data(), y);
}

void check_blocked(const Conv2dShape& s, const float* x, const float* w, float* y) {
  check_conv2d_shape(s);
  DUET_CHECK(s.batch == 0 || (x && w && y), "conv2d_forward_blocked: null tensor pointer");
}

bool input_gradient_as_forward(const Conv2dShape& s, Conv2dShape& t) {
  if (s.groups != 1 || s.stride_h != 1 || s.stride_w != 1 || s.dilation_h != 1 ||
      s.dilation_w != 1 || s.pad_h > s.kernel_h - 1 || s.pad_w > s.kernel_w - 1)
    return false;
  t = s;
  t.in_channels = s.out_channels;
  t.out_channels = s.in_channels;
  t.in_h = s.out_h();
  t.in_w = s.out_w();
  t.pad_h = s.kernel_h - 1 - s.pad_h;
  t.pad_w = s.kernel_w - 1 - s.pad_w;
  return t.out_h() == s.in_h && t.out_w() == s.in_w;
}

}  // namespace detail

// Both conversions run image by image across the threads; with AVX2 through the channel-major
// convolutions' own 16 x 16 (8 x 8) transposes (an image is one row of hw pixels to them).
void to_channel_blocked(int64_t n, int64_t c, int64_t hw, const float* x, float* xb) {
  const int64_t blocks = channel_blocks(c), plane = blocks * hw * kChannelBlock;
  const bool avx2 = isa_at_least(Isa::avx2);
  parallel_for(n, std::max<int64_t>(1, 16384 / plane), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* src = x + i * c * hw;
      float* dst = xb + i * plane;
      if (avx2) {
        detail::image_to_blocked_avx2(c, hw, src, dst);
        continue;
      }
      for (int64_t b = 0; b < blocks; ++b) {
        float* d = dst + b * hw * kChannelBlock;
        const int64_t live = std::min(kChannelBlock, c - b * kChannelBlock);
        if (live < kChannelBlock) std::memset(d, 0, size_t(hw * kChannelBlock) * sizeof(float));
        for (int64_t j = 0; j < live; ++j)
          for (int64_t p = 0; p < hw; ++p)
            d[p * kChannelBlock + j] = src[(b * kChannelBlock + j) * hw + p];
      }
    }
  });
}

void from_channel_blocked(int64_t n, int64_t c, int64_t hw, const float* xb, float* x) {
  const int64_t blocks = channel_blocks(c), plane = blocks * hw * kChannelBlock;
  const bool avx2 = isa_at_least(Isa::avx2);
  parallel_for(n, std::max<int64_t>(1, 16384 / plane), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (avx2) {
        detail::image_from_blocked_avx2(c, hw, xb + i * plane, x + i * c * hw);
        continue;
      }
      for (int64_t b = 0; b < blocks; ++b) {
        const float* src = xb + i * plane + b * hw * kChannelBlock;
        float* dst = x + (i * c + b * kChannelBlock) * hw;
        const int64_t live = std::min(kChannelBlock, c - b * kChannelBlock);
        for (int64_t j = 0; j < live; ++j)
          for (int64_t p = 0; p < hw; ++p) dst[j * hw + p] = src[p * kChannelBlock + j];
      }
    }
  });
}

namespace {
std::atomic<bool> winograd_on{true};
}  // namespace

bool use_winograd() {
  return winograd_on.load(std::memory_order_relaxed);
}

void set_winograd(bool on) {
  winograd_on.store(on, std::memory_order_relaxed);
}

BlockedAlgo blocked_algo(const Conv2dShape& s) {
  if (!isa_at_least(Isa::avx2)) return BlockedAlgo::channel_major;
  if (use_winograd() && detail::winograd_packed_size(s) > 0)
    return detail::winograd_tile(s, detail::WinogradLayout::blocked) == 4 ? BlockedAlgo::winograd4
                                                                          : BlockedAlgo::winograd;
  if (detail::direct_blocked_packed_size(s) > 0) return BlockedAlgo::direct;
  return BlockedAlgo::channel_major;
}

void conv2d_forward_blocked(const Conv2dShape& s, bool x_blocked, const float* x, const float* w,
                            float* y, const Epilogue& e, const float* packed) {
  detail::check_blocked(s, x, w, y);
  if (s.batch == 0) return;
  switch (blocked_algo(s)) {
    case BlockedAlgo::winograd:
    case BlockedAlgo::winograd4:
      if (detail::winograd_forward_blocked_avx2(s, x_blocked, x, w, packed, y, e)) return;
      break;
    case BlockedAlgo::direct:
      if (detail::direct_forward_blocked_avx2(s, x_blocked, x, w, packed, y, e)) return;
      break;
    case BlockedAlgo::channel_major:
      break;
  }
  detail::forward_blocked_via_channel_major(conv2d_forward, s, x_blocked, x, w, y, e);
}

int64_t blocked_packed_size(const Conv2dShape& s) {
  switch (blocked_algo(s)) {
    case BlockedAlgo::winograd:
    case BlockedAlgo::winograd4:
      return detail::winograd_packed_size(s);
    case BlockedAlgo::direct:
      return detail::direct_blocked_packed_size(s);
    case BlockedAlgo::channel_major:
      break;
  }
  return 0;
}

void pack_blocked_weights(const Conv2dShape& s, const float* w, float* packed) {
  const BlockedAlgo algo = blocked_algo(s);
  DUET_CHECK(algo != BlockedAlgo::channel_major,
             "pack_blocked_weights: no packed form for this shape");
  if (algo == BlockedAlgo::winograd || algo == BlockedAlgo::winograd4)
    detail::winograd_pack_avx2(s, w, packed);
  else
    detail::direct_pack_blocked_avx2(s, w, packed);
}

void global_avg_pool_blocked(int64_t n, int64_t c, int64_t hw, const float* xb, float* out) {
  DUET_CHECK(n >= 0 && c >= 1 && hw >= 1, "global_avg_pool_blocked: expected c, hw >= 1, got ", c,
             ", ", hw);
  const int64_t blocks = channel_blocks(c);
  float sum[kChannelBlock];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = xb + (i * blocks + b) * hw * kChannelBlock;
      std::fill(sum, sum + kChannelBlock, 0.0f);
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t j = 0; j < kChannelBlock; ++j) sum[j] += src[p * kChannelBlock + j];
      const int64_t live = std::min(kChannelBlock, c - b * kChannelBlock);
      for (int64_t j = 0; j < live; ++j)
        out[i * c + b * kChannelBlock + j] = sum[j] / static_cast<float>(hw);
    }
}

void global_avg_pool_blocked_backward(int64_t n, int64_t c, int64_t hw, const float* dy,
                                      float* dxb) {
  DUET_CHECK(n >= 0 && c >= 1 && hw >= 1,
             "global_avg_pool_blocked_backward: expected c, hw >= 1, got ", c, ", ", hw);
  const int64_t blocks = channel_blocks(c);
  parallel_for(n * blocks, std::max<int64_t>(1, 16384 / (hw * kChannelBlock)),
               [&](int64_t begin, int64_t end) {
                 float g[kChannelBlock];
                 for (int64_t item = begin; item < end; ++item) {
                   const int64_t i = item / blocks, b = item % blocks;
                   const int64_t live = std::min(kChannelBlock, c - b * kChannelBlock);
                   for (int64_t j = 0; j < kChannelBlock; ++j)
                     g[j] = j < live ? dy[i * c + b * kChannelBlock + j] / static_cast<float>(hw)
                                     : 0.0f;
                   float* dst = dxb + item * hw * kChannelBlock;
                   for (int64_t p = 0; p < hw; ++p)
                     std::copy_n(g, kChannelBlock, dst + p * kChannelBlock);
                 }
               });
}

namespace {

const detail::BlockedConvGradRows* grad_rows_for_cpu() {
  if (isa_at_least(Isa::avx512)) return &detail::blocked_conv_grad_rows_avx512();
  if (isa_at_least(Isa::avx2)) return &detail::blocked_conv_grad_rows_avx2();
  return nullptr;
}

detail::ConvGeometry geometry_of(const Conv2dShape& s) {
  return {s.in_channels, s.out_channels, s.in_h,       s.in_w,      s.out_h(),
          s.out_w(),     s.kernel_h,     s.kernel_w,   s.stride_h,  s.stride_w,
          s.pad_h,       s.pad_w,        s.dilation_h, s.dilation_w};
}

// The weight-gradient sums are split into this many chunks of images whatever the thread count,
// and added in chunk order, so the bits never depend on the threads.
constexpr int64_t kWeightChunks = 8;

// Adds one image's blocked output gradient [Kb][pq][16], summed over its pixels, to
// sums[Kb * 16]: per lane in float over the image, then in double.
void add_pixel_sums(const float* dyb, int64_t Kb, int64_t pq, double* sums) {
  for (int64_t kb = 0; kb < Kb; ++kb) {
    float lane[kChannelBlock] = {};
    const float* d = dyb + kb * pq * kChannelBlock;
    for (int64_t p = 0; p < pq; ++p)
      for (int64_t j = 0; j < kChannelBlock; ++j) lane[j] += d[p * kChannelBlock + j];
    for (int64_t j = 0; j < kChannelBlock; ++j) sums[kb * kChannelBlock + j] += lane[j];
  }
}

std::vector<float> unblocked(int64_t n, int64_t c, int64_t hw, const float* xb) {
  std::vector<float> x(size_t(n * c * hw));
  from_channel_blocked(n, c, hw, xb, x.data());
  return x;
}

}  // namespace

void conv2d_backward_data_blocked(const Conv2dShape& s, const float* dy, const float* w,
                                  float* dx) {
  detail::check_conv2d_shape(s);
  if (s.batch == 0) return;
  const int64_t C = s.in_channels, K = s.out_channels, R = s.kernel_h, S = s.kernel_w;
  Conv2dShape t;
  if (isa_at_least(Isa::avx2) && detail::input_gradient_as_forward(s, t)) {
    memory::FloatScratch flipped(C * K * R * S);
    parallel_for(C, std::max<int64_t>(1, 4096 / (K * R * S)), [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t r = 0; r < R * S; ++r)
            flipped.get()[(c * K + k) * R * S + r] = w[(k * C + c) * R * S + R * S - 1 - r];
    });
    return conv2d_forward_blocked(t, true, dy, flipped.get(), dx);
  }
  const int64_t Cb = channel_blocks(C), Kb = channel_blocks(K);
  const int64_t H = s.in_h, W = s.in_w, PQ = s.out_h() * s.out_w();
  if (const detail::BlockedConvGradRows* rows = grad_rows_for_cpu(); rows && s.groups == 1) {
    // The filters as [R][S][K][Cb][16]: 16 input channels of a tap and output channel together.
    memory::FloatScratch filters(R * S * K * Cb * kChannelBlock);
    float* wt = filters.get();
    std::fill(wt, wt + R * S * K * Cb * kChannelBlock, 0.0f);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < R * S; ++r)
          wt[(r * K + k) * Cb * kChannelBlock + c] = w[(k * C + c) * R * S + r];
    const detail::ConvGeometry g = geometry_of(s);
    parallel_for(s.batch * Cb * H, std::max<int64_t>(1, 4096 / (W * K * R * S)),
                 [&](int64_t begin, int64_t end) {
                   for (int64_t item = begin; item < end; ++item) {
                     const int64_t n = item / (Cb * H), cb = item / H % Cb, h = item % H;
                     rows->data_row(g, dy + n * Kb * PQ * kChannelBlock, wt, cb, h,
                                    dx + item * W * kChannelBlock);
                   }
                 });
    return;
  }
  // Without AVX2, or with groups: through the channel-major input gradient.
  const int64_t hw = s.in_h * s.in_w, pq = s.out_h() * s.out_w();
  const std::vector<float> dyc = unblocked(s.batch, K, pq, dy);
  std::vector<float> dxc(size_t(s.batch * C * hw));
  conv2d_backward_data(s, dyc.data(), w, dxc.data());
  to_channel_blocked(s.batch, C, hw, dxc.data(), dx);
}

void conv2d_backward_weight_blocked(const Conv2dShape& s, bool x_blocked, const float* x,
                                    const float* dy, float* dw, float* dbias) {
  detail::check_conv2d_shape(s);
  const int64_t hw = s.in_h * s.in_w, pq = s.out_h() * s.out_w();
  if (s.batch > 0 && x_blocked && isa_at_least(Isa::avx2) && use_winograd() &&
      detail::winograd_backward_weight_avx2(s, true, x, dy, dw, dbias))
    return;
  if (const detail::BlockedConvGradRows* rows = grad_rows_for_cpu(); rows && s.groups == 1) {
    const int64_t C = s.in_channels, K = s.out_channels, RS = s.kernel_h * s.kernel_w;
    const int64_t Cb = channel_blocks(C), Kb = channel_blocks(K);
    // A channel-major image (the stem's input) is blocked once. Scratch from the caching
    // allocator: fresh vectors of this size cost page faults on every training step.
    memory::FloatScratch xb(x_blocked ? 0 : s.batch * Cb * hw * kChannelBlock);
    if (!x_blocked) {
      to_channel_blocked(s.batch, C, hw, x, xb.get());
      x = xb.get();
    }
    const int64_t chunks = std::min(s.batch, kWeightChunks), sums = Kb * C * RS * kChannelBlock;
    memory::FloatScratch sums_of_chunks(chunks * sums);
    float* acc = sums_of_chunks.get();
    std::fill(acc, acc + chunks * sums, 0.0f);
    // The bias gradient rides along, per chunk like the weights' (a serial pass over dy took
    // 0.3-0.6 ms a layer at batch 128).
    const int64_t Kp = Kb * kChannelBlock;
    std::vector<double> bias_of_chunks(dbias ? size_t(chunks * Kp) : 0, 0.0);
    const detail::ConvGeometry g = geometry_of(s);
    parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t chunk = begin; chunk < end; ++chunk)
        for (int64_t n = s.batch * chunk / chunks; n < s.batch * (chunk + 1) / chunks; ++n) {
          const float* dyn = dy + n * Kb * pq * kChannelBlock;
          rows->weight_image(g, x + n * Cb * hw * kChannelBlock, dyn, acc + chunk * sums);
          if (dbias) add_pixel_sums(dyn, Kb, pq, bias_of_chunks.data() + chunk * Kp);
        }
    });
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < RS; ++r) {
          const int64_t at =
              ((k / kChannelBlock * C + c) * RS + r) * kChannelBlock + k % kChannelBlock;
          double v = 0;
          for (int64_t chunk = 0; chunk < chunks; ++chunk) v += acc[chunk * sums + at];
          dw[(k * C + c) * RS + r] = float(v);
        }
    if (dbias)
      for (int64_t k = 0; k < K; ++k) {
        double v = 0;
        for (int64_t chunk = 0; chunk < chunks; ++chunk)
          v += bias_of_chunks[size_t(chunk * Kp + k)];
        dbias[k] = float(v);
      }
    return;
  }
  // Without AVX2, or with groups: through the channel-major weight gradient.
  std::vector<float> xc;
  if (x_blocked) {
    xc = unblocked(s.batch, s.in_channels, hw, x);
    x = xc.data();
  }
  const std::vector<float> dyc = unblocked(s.batch, s.out_channels, pq, dy);
  conv2d_backward_weight(s, x, dyc.data(), dw, dbias);
}

}  // namespace duet::kernels
