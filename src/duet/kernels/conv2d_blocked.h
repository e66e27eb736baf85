// Channel-blocked activations for inference. A blocked tensor of C channels is
// [N][ceil(C / 16)][H][W][16]: channel c of pixel (h, w) sits in block c / 16, lane c % 16, and
// the lanes past C are zero. The direct convolution's micro-tile computes 16 output channels of
// a pixel in one vector, so writing blocks needs no transpose, and reading them fills the padded
// plane with whole-row copies: a chain of blocked convolutions (a folded ResNet) skips the two
// passes a channel-major (NCHW) output costs per layer. Convert only at the network's edges.
#pragma once

#include <cstdint>

#include "duet/kernels/conv2d.h"

namespace duet::kernels {

inline constexpr int64_t kChannelBlock = 16;

inline int64_t channel_blocks(int64_t channels) {
  return (channels + kChannelBlock - 1) / kChannelBlock;
}

// x [N, C, HW] channel-major <-> xb [N, ceil(C / 16), HW, 16] (to_blocked zeroes the padding).
void to_channel_blocked(int64_t n, int64_t c, int64_t hw, const float* x, float* xb);
void from_channel_blocked(int64_t n, int64_t c, int64_t hw, const float* xb, float* x);

// How conv2d_forward_blocked computes a shape on this CPU: Winograd for 3x3 stride-1
// convolutions with >= 16 input channels and >= 16 tiles of 2x2 output pixels per image (7x7
// pixels or more), F(4x4, 3x3) (winograd4) where the batch has enough 4x4 tiles and F(2x2, 3x3)
// (winograd) below, as detail::winograd_tile decides; the direct implicit GEMM for the other
// shapes, both with AVX2; otherwise a round trip through the channel-major convolution. Depends
// on everything in s (the batch too, through the tile count), on the active ISA, on
// use_winograd() and on a forced Winograd tile. winograd4 stays last: callers size per-form
// arrays from it.
enum class BlockedAlgo { channel_major, direct, winograd, winograd4 };
BlockedAlgo blocked_algo(const Conv2dShape& s);

// Winograd on (the default) or off, for the whole process, blocked and channel-major
// convolutions alike, and the int8 convolution's exact integer Winograd (conv2d_int8_winograd.h):
// off, their shapes run the direct kernels (`duet bench infer|train|gen --no-winograd` measure
// the difference). Weights packed before a
// switch must be packed again: blocked_algo tells which form a shape needs.
bool use_winograd();
void set_winograd(bool on);

// y (blocked, s.out_channels channels) = epilogue(conv(x, w)), where x is blocked when
// x_blocked and NCHW otherwise (a network's input image), w is [K, C / groups, R, S] as in
// conv2d_forward, the epilogue's per-channel arrays are indexed by output channel and its
// residual (if any) is blocked like y (ld_residual is unused). Overwrites y.
// `packed` (may be null) is w as pack_blocked_weights wrote it under the same blocked_algo(s),
// reused across calls.
void conv2d_forward_blocked(const Conv2dShape& s, bool x_blocked, const float* x, const float* w,
                            float* y, const Epilogue& epilogue = {}, const float* packed = nullptr);

// The packed form of a layer's weights for blocked_algo(s), for many conv2d_forward_blocked
// calls with the same w (the chunks of a batch): its size in floats has the same dependencies
// as blocked_algo and is 0 where there is none (then pass null). A caller that keeps it checks
// that blocked_algo(s) is still the one it packed for. packed must be 64-byte aligned (any
// tensor or memory::allocate block is).
int64_t blocked_packed_size(const Conv2dShape& s);
void pack_blocked_weights(const Conv2dShape& s, const float* w, float* packed);

// out[N, C] = mean over the HW pixels of blocked xb; the backward spreads dy[N, C] / HW over the
// pixels of blocked dxb (zero in the padding lanes).
void global_avg_pool_blocked(int64_t n, int64_t c, int64_t hw, const float* xb, float* out);
void global_avg_pool_blocked_backward(int64_t n, int64_t c, int64_t hw, const float* dy,
                                      float* dxb);

// The gradients of conv2d_forward_blocked (training on blocked activations): dy and dx are
// blocked, x blocked when x_blocked; dw [K, C / groups, R, S] and dbias [K] (may be null) as in
// conv2d_backward_weight. With AVX2: stride-1 input gradients are the blocked forward
// convolution of dy with the flipped filters, 3x3 stride-1 weight gradients with >= 16 channels
// run Winograd (F(4x4, 3x3) where it needs fewer products) on the blocks where they lie, and the
// other shapes (strided and 1x1 layers, a 1-channel stem) direct kernels on the blocks
// (conv2d_blocked_grad_rows.h), whose weight gradient sums a fixed number of image chunks in order
// (the bits do not depend on the threads). Without AVX2, or with groups, through the channel-major
// kernels.
void conv2d_backward_data_blocked(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weight_blocked(const Conv2dShape& s, bool x_blocked, const float* x,
                                    const float* dy, float* dw, float* dbias);

namespace ref {
// The twin: converts to NCHW, runs ref::conv2d_forward, converts back.
void conv2d_forward_blocked(const Conv2dShape& s, bool x_blocked, const float* x, const float* w,
                            float* y, const Epilogue& epilogue = {});
}  // namespace ref

}  // namespace duet::kernels
