// Internals shared by the conv2d fast paths and their reference twins: shape validation, the
// tiled im2col / col2im packers behind implicit GEMM, and the direct depthwise loops.
// Not part of the public kernel API; include conv2d.h for that.
#pragma once

#include <cstdint>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_fused.h"

namespace duet::kernels::detail {

// Throws duet::Error unless the shape describes a valid convolution with a non-empty output.
void check_conv2d_shape(const Conv2dShape& s);

// Packs rows (c, r, u) of the im2col matrix of one image-group (xg: Cg x H x W) for output pixels
// [t0, t0 + len) into col[((c * R + r) * U + u) * ld + j], j < len; padding reads as zero.
void im2col_tile(const Conv2dShape& s, const float* xg, int64_t t0, int64_t len, float* col,
                 int64_t ld);
// The adjoint: dxg[c, h, w] += col[(c, r, u) * ld + j] for every in-bounds tap of pixel t0 + j.
void col2im_tile_add(const Conv2dShape& s, const float* col, int64_t t0, int64_t len, int64_t ld,
                     float* dxg);

// groups == in_channels == out_channels: one filter per plane, a poor fit for GEMM.
void depthwise_forward(const Conv2dShape& s, const float* x, const float* w, float* y,
                       const Epilogue& e);
void depthwise_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void depthwise_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw);

// conv2d_forward_blocked through a channel-major convolution `conv` (the fast one, or the
// reference for the twin): x and the residual are unblocked into scratch, the output blocked.
using ChannelMajorConv = void (*)(const Conv2dShape&, const float*, const float*, float*,
                                  const Epilogue&);
void forward_blocked_via_channel_major(ChannelMajorConv conv, const Conv2dShape& s, bool x_blocked,
                                       const float* x, const float* w, float* y, const Epilogue& e);
// Shape check plus non-null pointers for a non-empty batch.
void check_blocked(const Conv2dShape& s, const float* x, const float* w, float* y);

// AVX2 implicit GEMM straight from a zero-padded copy of each image (conv2d_direct_avx2.cpp).
// Call only when isa_at_least(Isa::avx2); false means the shape is not handled (use the tiles).
bool direct_forward_avx2(const Conv2dShape& s, const float* x, const float* w, float* y,
                         const Epilogue& e);
// The same with channel-blocked output (and input when x_blocked); groups 1 only. packed (may be
// null) holds w as direct_pack_blocked_avx2 wrote it; its size is direct_blocked_packed_size,
// 0 for shapes this path never takes.
int64_t direct_blocked_packed_size(const Conv2dShape& s);
void direct_pack_blocked_avx2(const Conv2dShape& s, const float* w, float* packed);
bool direct_forward_blocked_avx2(const Conv2dShape& s, bool x_blocked, const float* x,
                                 const float* w, const float* packed, float* y, const Epilogue& e);

// Winograd convolution (conv2d_winograd_avx2.cpp) of 3x3 kernels, stride and dilation 1,
// groups 1, padding <= 2, at least kWinogradMinChannels input channels (fewer leave the
// transforms too little product to pay for) and kWinogradMinTiles 2x2 output tiles per image.
// winograd_tile picks the variant for a layout: 0 where Winograd does not run, else the output
// tile's edge, 4 for F(4x4, 3x3) (4x fewer multiply-adds than direct, rounding error about 5x
// F(2x2)'s) or 2 for F(2x2, 3x3) (2.25x fewer). Channel-major convolutions (sampling, training
// where the layout is off) take F(4x4) when the batch has at least kWinogradMinTiles4 4x4 tiles
// (fewer leave the threads' micro-tiles half empty: the UNet's 7x7 maps at batch 1);
// channel-blocked ones from kWinogradMinTiles4Blocked tiles: every training batch, and the
// folded classifiers' chunks of 4 images down to ResNet-20's 64-channel 7 x 7 layers (16 tiles),
// where F(4x4) made the whole batch-250 inference 15-30 % faster than F(2x2) on AVX2 and AVX-512
// (docs/benchmarks.md, 2026-12-02); batch 1 keeps F(2x2) at 7 x 7 (4 tiles: with 2 threads each
// gets 2, and the run took 0.34-0.36 ms against 0.28). set_winograd_tile(2 or 4) forces one
// variant wherever Winograd runs, 0 goes back to the choice above ($DUET_WINOGRAD_TILE sets it at
// start-up, for benchmarks); weights packed before a change must be packed again.
// On channel-blocked activations the packed weights are the transformed 3x3 filters,
// winograd_packed_size floats (0: the shape does not run here).
// Call the AVX2 functions only when isa_at_least(Isa::avx2); false: not handled here.
inline constexpr int64_t kWinogradMinChannels = 16;
inline constexpr int64_t kWinogradMinTiles = 16;
inline constexpr int64_t kWinogradMinTiles4 = 32;
inline constexpr int64_t kWinogradMinTiles4Blocked = 16;
enum class WinogradLayout { blocked, channel_major };
int64_t winograd_tile(const Conv2dShape& s, WinogradLayout layout);
void set_winograd_tile(int64_t m);
int64_t forced_winograd_tile();  // set_winograd_tile's m (0: each pass chooses)
int64_t winograd_packed_size(const Conv2dShape& s);
void winograd_pack_avx2(const Conv2dShape& s, const float* w, float* packed);
bool winograd_forward_blocked_avx2(const Conv2dShape& s, bool x_blocked, const float* x,
                                   const float* w, const float* packed, float* y,
                                   const Epilogue& e);
// The same for channel-major x and y (conv2d_forward, training): each chunk of tile rows blocks
// the input rows it reads into scratch and transposes its products into y with the epilogue;
// the weights are packed on every call (they change every training step). Only with at least
// kWinogradChannelMajorMinChannels input and output channels for F(2x2, 3x3): at 16, its two
// conversions cost more than the 16-deep products save (ResNet-20's 16 -> 16 at 28 x 28, batch
// 128: 3.9 ms against 3.3 ms direct; 32 -> 32 at 14 x 14: 2.7 against 3.0 ms); F(4x4, 3x3),
// with 4x fewer products, pays from kWinogradChannelMajorMinChannels4 (the same 16 -> 16:
// 2.4-2.6 ms forward and 2.5-2.6 ms input gradient against 3.2-3.5 ms direct).
inline constexpr int64_t kWinogradChannelMajorMinChannels = 32;
inline constexpr int64_t kWinogradChannelMajorMinChannels4 = 16;
bool winograd_channel_major_fits(const Conv2dShape& s);
// dx of a stride-1 convolution s (groups 1, dilation 1, padding below the kernel) is the
// convolution t of dy, padded by R - 1 - pad, with the filters flipped and their in and out
// channels swapped; false where s is no such case (conv2d_blocked.cpp).
bool input_gradient_as_forward(const Conv2dShape& s, Conv2dShape& t);
// The same t for a 3x3 s, when the channel-major Winograd takes it.
bool winograd_input_gradient_shape(const Conv2dShape& s, Conv2dShape& t);
// With a prologue (conv2d_fused.h), applied as the input rows are blocked, and an image bias
// (image n: image_bias + n * K), added to the epilogue's bias in the store. cache_weights: w
// are a layer's weights, whose packing a PackedWeightsScope may keep (packed_weights.h);
// false for weights made for this call (the input gradient's flipped filters).
struct WinogradExtras {
  const Prologue* prologue = nullptr;
  const float* image_bias = nullptr;
  bool cache_weights = false;
};
bool winograd_forward_avx2(const Conv2dShape& s, const float* x, const float* w, float* y,
                           const Epilogue& e, const WinogradExtras& extras = {});
// conv2d_backward_data of a shape whose transposed convolution runs there (stride 1).
bool winograd_backward_data_avx2(const Conv2dShape& s, const float* dy, const float* w, float* dx);

// The weight gradient (and bias gradient) of 3x3, stride-1 convolutions with at least
// kWinogradWeightMinChannels input and output channels, by Winograd F(4x4, 3x3) or F(2x2, 3x3)
// on channel-major x and dy, or channel-blocked ones when blocked
// (conv2d_winograd_weight_avx2.cpp); false when the shape does not run there.
inline constexpr int64_t kWinogradWeightMinChannels = 16;

// A convolution's geometry as plain numbers (input C x H x W, output K x P x Q, kernel R x S),
// for the ISA files, which must not call shared inline code such as Conv2dShape's.
struct ConvGeometry {
  int64_t C, K, H, W, P, Q, R, S, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

// The direct gradients of blocked convolutions (conv2d_blocked_grad_rows.h), one table per ISA:
// weight_image adds one image's weight-gradient sums to acc [Kb][C][R][S][16]; data_row writes
// the input gradient of input row h of channel block cb of one image (dx_row: W x 16 floats)
// from filters wt laid out [R][S][K][Cb][16].
struct BlockedConvGradRows {
  void (*weight_image)(const ConvGeometry& g, const float* xb, const float* dyb, float* acc);
  void (*data_row)(const ConvGeometry& g, const float* dyb, const float* wt, int64_t cb, int64_t h,
                   float* dx_row);
};
const BlockedConvGradRows& blocked_conv_grad_rows_avx2();
const BlockedConvGradRows& blocked_conv_grad_rows_avx512();

// One image (c planes of hw pixels) into channel blocks and back, through the channel-major
// convolutions' transposes (conv2d_winograd_avx2.cpp); to_channel_blocked and
// from_channel_blocked of n = 1.
void image_to_blocked_avx2(int64_t c, int64_t hw, const float* x, float* xb);
void image_from_blocked_avx2(int64_t c, int64_t hw, const float* xb, float* x);
bool winograd_weight_gradient_fits(const Conv2dShape& s);
bool winograd_backward_weight_avx2(const Conv2dShape& s, bool blocked, const float* x,
                                   const float* dy, float* dw, float* dbias);

bool direct_backward_data_avx2(const Conv2dShape& s, const float* dy, const float* w, float* dx);
bool direct_backward_weight_avx2(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                                 float* dbias);

}  // namespace duet::kernels::detail
