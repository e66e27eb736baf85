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
#include "duet/tensor/error.h"

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

}  // namespace detail

void to_channel_blocked(int64_t n, int64_t c, int64_t hw, const float* x, float* xb) {
  const int64_t blocks = channel_blocks(c);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks; ++b) {
      float* dst = xb + (i * blocks + b) * hw * kChannelBlock;
      const int64_t live = std::min(kChannelBlock, c - b * kChannelBlock);
      if (live < kChannelBlock) std::memset(dst, 0, size_t(hw * kChannelBlock) * sizeof(float));
      for (int64_t j = 0; j < live; ++j) {
        const float* src = x + (i * c + b * kChannelBlock + j) * hw;
        for (int64_t p = 0; p < hw; ++p) dst[p * kChannelBlock + j] = src[p];
      }
    }
}

void from_channel_blocked(int64_t n, int64_t c, int64_t hw, const float* xb, float* x) {
  const int64_t blocks = channel_blocks(c);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* src =
          xb + ((i * blocks + ch / kChannelBlock) * hw) * kChannelBlock + ch % kChannelBlock;
      float* dst = x + (i * c + ch) * hw;
      for (int64_t p = 0; p < hw; ++p) dst[p] = src[p * kChannelBlock];
    }
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

}  // namespace duet::kernels
