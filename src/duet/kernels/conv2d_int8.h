// int8 convolution for inference: float NCHW (or channel-blocked) input quantised on the fly to
// 7-bit unsigned activations, per-output-channel symmetric int8 weights packed once, int32
// accumulation, and the float epilogue (scale and bias in one fused multiply-add, residual,
// activation) fused into the store.
//
// Why 7-bit activations: AVX2's vpmaddubsw multiplies u8 x s8 and adds adjacent pairs into a
// saturating int16. With activations in [0, 127] and weights in [-127, 127] a pair sum is at most
// 2 x 127 x 127 = 32258 < 32767, so nothing ever saturates and the int32 result is exact: the fast
// path and the reference twin agree bit for bit before the float epilogue.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_int8_tile.h"
#include "duet/kernels/gemm.h"

namespace duet::kernels {

inline constexpr int32_t kActivationLevels = 128;  // activations are 0..127
inline constexpr int32_t kWeightMax = 127;         // weights are -127..127 (never -128)
// Weights within -63..63 (7 bits, duet quantize --weight-bits 7) let AVX2 without VNNI add two
// tap groups' vpmaddubsw pair sums in int16 before widening: 2 x 2 x 127 x 63 = 32004 < 32767,
// still exact, with one vpmaddwd where two were needed. Since the 3x3 stride-1 convs there run
// as integer Winograd (conv2d_int8_winograd.h) at any weight width, this speeds up only the
// direct convs (stride 2, 1x1; docs/compression.md).
inline constexpr int32_t kPairableWeightMax = 63;

// Affine activation quantisation: q = clamp(round_half_even(x * inv_scale) + zero_point, 0, 127),
// x ~ (q - zero_point) * scale. inv_scale is stored (not recomputed) so every path multiplies by
// the same float and rounds identically.
struct ActivationQuant {
  float scale = 1.0f;
  float inv_scale = 1.0f;
  int32_t zero_point = 0;  // in [0, 127]; padding reads as this value, i.e. as x = 0

  static ActivationQuant from_range(float lo, float hi);  // covers [min(lo, 0), max(hi, 0)]
};

inline uint8_t quantize_activation(float x, const ActivationQuant& q) {
  float v = std::nearbyint(x * q.inv_scale) + static_cast<float>(q.zero_point);
  // max-then-min in this order, like the vector path: NaN fails the first test and becomes 0.
  v = v >= 0.0f ? v : 0.0f;
  v = v <= 127.0f ? v : 127.0f;
  return static_cast<uint8_t>(v);
}

// The int8 convolution's output before its residual and activation: the int32 sum (zero points
// taken out) times the channel's scale plus its bias, rounded once, as a fused multiply-add,
// which is one instruction on every vector path and std::fma in the scalar twins, so all agree
// bit for bit. Absent terms are identities: fma(d, 1, -0) == d for every float d. int8 convs
// take no Epilogue::shift (an Error).
inline float int8_scaled_sum(const Epilogue& e, int32_t sum, int64_t k) {
  return std::fma(float(sum), e.scale ? e.scale[k] : 1.0f, e.bias ? e.bias[k] : -0.0f);
}

// Weights [K, C, R, S] (int8, groups = 1) rearranged once for the kernels: taps ordered
// (r, s, c) with channels padded to a multiple of 4 (zeros), so four consecutive taps are four
// consecutive channels of one pixel of an NHWC image; output channels in blocks of 16.
struct Int8ConvWeights {
  int64_t out_channels = 0, in_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t channels4 = 0;             // in_channels rounded up to a multiple of 4
  std::vector<int8_t> packed;        // [ceil(K/16)][R*S*channels4/4][16][4]
  std::vector<int32_t> weight_sums;  // per output channel: sum of its weights (zero points)
  int32_t max_abs_weight = 0;        // the largest |weight|
  // 3x3 kernels: the Winograd F(2x2, 3x3) form (conv2d_int8_winograd.h), for AVX2 without VNNI,
  // and the F(4x4, 3x3) form with its per-position, per-output-channel steps
  // (int8_winograd4_takes).
  std::vector<int16_t> winograd;
  std::vector<int16_t> winograd4;
  std::vector<float> winograd4_scales;

  int64_t groups4() const { return kernel_h * kernel_w * channels4 / 4; }
  bool taps_pair_in_int16() const { return max_abs_weight <= kPairableWeightMax; }
};
inline constexpr int64_t kInt8BlockK = 16;

Int8ConvWeights pack_int8_conv_weights(const int8_t* w, int64_t out_channels, int64_t in_channels,
                                       int64_t kernel_h, int64_t kernel_w);

// y[N, K, P, Q] = act(int8_scaled_sum(e, sum over taps of w * (q(x) - zero_point), k)
// [+ residual]) for groups == 1; padding contributes zero. `s` must match the packed weights.
// Overwrites y.
void conv2d_int8_forward(const Conv2dShape& s, const float* x, const ActivationQuant& xq,
                         const Int8ConvWeights& w, float* y, const Epilogue& epilogue = {});

// The same on channel-blocked activations (conv2d_blocked.h): x is blocked when x_blocked (else
// NCHW); y and the epilogue's residual are blocked. The quantised bytes and the int32 sums are
// those of conv2d_int8_forward; only the float layouts differ.
void conv2d_int8_forward_blocked(const Conv2dShape& s, bool x_blocked, const float* x,
                                 const ActivationQuant& xq, const Int8ConvWeights& w, float* y,
                                 const Epilogue& epilogue = {});

// Whether this process runs 3x3 stride-1 int8 convs as the exact integer Winograd F(2x2, 3x3)
// (conv2d_int8_winograd.h): AVX2 without VNNI, Winograd not switched off (set_winograd), for
// layers whose sums fit int32. Otherwise they run the direct kernel. Either gives way to
// F(4x4, 3x3) where int8_winograd4_takes(s, w).
bool int8_winograd_enabled();

// Whether conv2d_int8_forward runs shape s as Winograd F(4x4, 3x3): AVX2 without AVX-512 VNNI
// (whose direct zmm vpdpbusd kernel was faster on a Zen 5), Winograd on, a batch with as many
// 4x4 tiles as the float convolution wants for F(4x4) on blocked activations
// (detail::winograd_tile), and int8_winograd4_applies. The products use AVX-VNNI's vpdpwssd where
// use_avx_vnni(), else vpmaddwd + vpaddd.
bool int8_winograd4_takes(const Conv2dShape& s, const Int8ConvWeights& w);

namespace detail {
// Sets the bytes of a padded NHWC image [H + 2 pad_h, W + 2 pad_w, channels4] that the
// quantisers below do not write to the zero point: the padding ring, and when c < channels4 the
// whole image (its spare channels; the interior is then overwritten). Filling only the ring keeps
// a batch-1 layer from writing its image twice.
void fill_padding(uint8_t* out, int64_t c, int64_t h, int64_t w, int64_t pad_h, int64_t pad_w,
                  int64_t channels4, int32_t zero_point);
// x [C, H, W] float -> [H + 2 pad_h, W + 2 pad_w, channels4] u8, padding and extra channels set
// to the zero point. The AVX2 twin must give identical bytes.
void quantize_to_padded_nhwc(const float* x, int64_t c, int64_t h, int64_t w, int64_t pad_h,
                             int64_t pad_w, int64_t channels4, const ActivationQuant& q,
                             uint8_t* out);
void quantize_to_padded_nhwc_avx2(const float* x, int64_t c, int64_t h, int64_t w, int64_t pad_h,
                                  int64_t pad_w, int64_t channels4, const ActivationQuant& q,
                                  uint8_t* out);
// The same from a channel-blocked image [ceil(C / 16), H, W, 16]; bytes identical on every path.
void quantize_blocked_to_padded_nhwc(const float* x, int64_t c, int64_t h, int64_t w, int64_t pad_h,
                                     int64_t pad_w, int64_t channels4, const ActivationQuant& q,
                                     uint8_t* out);
void quantize_blocked_to_padded_nhwc_avx2(const float* x, int64_t c, int64_t h, int64_t w,
                                          int64_t pad_h, int64_t pad_w, int64_t channels4,
                                          const ActivationQuant& q, uint8_t* out);
void quantize_blocked_to_padded_nhwc_avx512(const float* x, int64_t c, int64_t h, int64_t w,
                                            int64_t pad_h, int64_t pad_w, int64_t channels4,
                                            const ActivationQuant& q, uint8_t* out);
// Channels [c_begin, c) of a channel-blocked image into a padded NHWC one (scalar; the vector
// quantisers use it for a partial last block).
void quantize_blocked_channels(const float* x, int64_t c_begin, int64_t c, int64_t h, int64_t w,
                               int64_t pad_h, int64_t pad_w, int64_t channels4,
                               const ActivationQuant& q, uint8_t* out);
// The blocked store: yb[16 j + k] = the output (int8_scaled_sum, residual, activation) of the
// sum acc[16 j + k] - zero_point_sums[k] for k < kn (the epilogue's per-channel arrays at channel
// k0 + k, its residual laid out like yb), and 0 for kn <= k < 16, for pixels j < count.
void int8_store_blocked_avx2(const int32_t* acc, int64_t count, int64_t kn,
                             const int32_t* zero_point_sums, const Epilogue& e, int64_t k0,
                             const float* residual, float* yb);
void int8_store_blocked_generic(const int32_t* acc, int64_t count, int64_t kn,
                                const int32_t* zero_point_sums, const Epilogue& e, int64_t k0,
                                const float* residual, float* yb);
// The store: yb[k * ld + j] = the output of sum acc[j * 16 + k] - zero_point_sums[k] for k < kn,
// j < count. The epilogue sees element (k0 + k, p0 + j) of the image's [K, P*Q] block (its
// residual pointer already at the image, ld_residual its row length). zero_point_sums: 16 entries.
void int8_store_avx2(const int32_t* acc, int64_t count, int64_t kn, const int32_t* zero_point_sums,
                     const Epilogue& e, int64_t k0, int64_t p0, float* yb, int64_t ld);
void int8_store_generic(const int32_t* acc, int64_t count, int64_t kn,
                        const int32_t* zero_point_sums, const Epilogue& e, int64_t k0, int64_t p0,
                        float* yb, int64_t ld);
}  // namespace detail

namespace ref {
// Plain loops over the unpacked weights [K, C, R, S]: the twin the fast path is tested against.
void conv2d_int8_forward(const Conv2dShape& s, const float* x, const ActivationQuant& xq,
                         const int8_t* w, float* y, const Epilogue& epilogue = {});
}  // namespace ref

}  // namespace duet::kernels
