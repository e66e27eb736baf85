// Winograd for the int8 convolution: F(2x2, 3x3) in integers and exact, and F(4x4, 3x3) with an
// exact integer input transform and weights rounded to int16 in the transformed domain.
//
// Why: without VNNI, the direct int8 kernel needs a vpmaddubsw and (every two tap groups) a
// vpmaddwd per 32 multiply-adds; Winograd F(2x2, 3x3) needs 16 products per 2x2 outputs where
// direct needs 36, and its int16 products (vpmaddwd, 16 per instruction) then do the work of
// 36 direct multiply-adds per multiply-port instruction instead of about 21. F(4x4, 3x3) needs
// 36 per 4x4 outputs where direct needs 144: the work of 64 per instruction, which is what keeps
// int8 ahead of the float F(4x4) convolution (conv2d_winograd_variants.h) at the same lanes.
//
// Why F(2x2) is exact: with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] the transformed
// activation codes U = B^T d B (codes 0..127) lie in [-254, 508], and with
// 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2] the transformed weights V = (2G) g (2G)^T are integers with
// |V| <= 9 max|g|: 4x the usual G g G^T. So Y = A^T (sum over channels of U V) A is in integers
// 4x the true conv sum, and Y / 4 (an exact shift) equals the direct kernel's int32 sum bit for
// bit; the zero-point correction and the float epilogue are then the direct path's. int16 holds U
// and V, and int32 holds every partial sum where int8_winograd_applies (below) says so.
//
// Why F(4x4) is not, and how close it is: its G has 1/6 and 1/24, so V = G g G^T is not an
// integer multiple of anything small enough for int16. Each position's V (per output channel) is
// rounded to int16 with its own step, as fine as int32 sums over the layer's channels allow
// (kWinograd4MaxU x channels4 x max|V| < 2^31: |V| up to 15,541 steps at 16 channels, 3,885 at 64,
// where the int8 weights have 127). U stays exact (|U| <= 68 x 127 for codes
// 0..127), the sums over channels stay exact in int32, and the output transform runs in float on
// the rescaled sums; the result, rounded to int32, stands in for the direct sum and goes through
// the same zero-point correction and epilogue. Its error against the exact sum is bounded in
// tests/kernels/test_conv2d_int8.cpp (Int8Winograd4SumsAreCloseToTheDirectSums).
#pragma once

#include <cstdint>
#include <vector>

namespace duet::kernels {

struct Conv2dShape;
struct Int8ConvWeights;

namespace detail {

inline constexpr int64_t kWinogradPositions = 16;                     // the 4x4 transformed tile
inline constexpr int64_t kWinogradMaxU = 508;                         // |B^T d B| for codes 0..127
inline constexpr int64_t kWinogradMaxTileBytes = int64_t{256} << 20;  // per image, else direct

// Whether a conv runs as int8 Winograd: 3x3, stride 1, dilation 1, groups 1, every int32
// partial sum bounded (9 output-transform terms x channels4 x |U| x |V| < 2^31), and an image's
// transformed tiles within kWinogradMaxTileBytes.
bool int8_winograd_applies(const Conv2dShape& s, const Int8ConvWeights& w);

// V = (2G) g (2G)^T of packed-order weights [K, C, 3, 3], laid out for the product kernel:
// [ceil(K/16)][16 positions][channels4 / 2 channel pairs][16 output channels][2] int16, zeros
// for padded channels.
std::vector<int16_t> winograd_int8_weights(const int8_t* w, int64_t out_channels,
                                           int64_t in_channels, int64_t channels4);

// The tiles of one image: the output [P, Q] in edge x edge tiles (2 or 4), tiles_h x tiles_w,
// row-major; each reads an (edge + 2) x (edge + 2) window of the padded image.
struct WinogradTiles {
  int64_t P, Q, tiles_h, tiles_w, count, edge;
};
WinogradTiles winograd_tiles(const Conv2dShape& s, int64_t edge = 2);

// U of every tile of one padded NHWC u8 image ([Hp][Wp][channels4], as the direct kernel reads
// it) into u: [positions][tiles.count][channels4] int16, for the tiles' edge (16 positions for
// F(2x2), 36 for F(4x4)). Windows reaching past the image's
// last row or column (odd output sizes) read zero there; they only feed outputs that are dropped.
void winograd_int8_input(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t channels4,
                         const WinogradTiles& tiles, int16_t* u);
void winograd_int8_input_avx2(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t channels4,
                              const WinogradTiles& tiles, int16_t* u);

// One 16-channel block of one image: acc[p * 16 + k] (int32, p over the P x Q output pixels
// row-major) = the direct kernel's sum, from u (winograd_int8_input) and the block's V
// (vblock = winograd weights + kb * 16 * channels4 * 16).
void winograd_int8_block(const int16_t* u, const int16_t* vblock, int64_t channels4,
                         const WinogradTiles& tiles, int32_t* acc);
void winograd_int8_block_avx2(const int16_t* u, const int16_t* vblock, int64_t channels4,
                              const WinogradTiles& tiles, int32_t* acc);

// F(4x4, 3x3): 36 positions; |B^T d B| <= 68 x 127 for codes 0..127 (the largest sum of the
// positive, or of the negative, coefficients of one position's outer product of B^T rows).
inline constexpr int64_t kWinograd4Positions = 36;
inline constexpr int64_t kWinograd4MaxU = 68 * 127;
// A bound on |V| under this (more than about 970 input channels: twice as coarse as the int8
// weights or worse) and the layer runs F(2x2) or direct instead.
inline constexpr int64_t kWinograd4MinLevels = 255;

// The bound on |V| in steps for layers of channels4 channels: the largest that keeps every sum
// over channels of U V within int32.
int64_t winograd4_levels(int64_t channels4);

// Whether a conv can run as int8 F(4x4): the shape rule of int8_winograd_applies, weights with a
// Winograd F(4x4) form, a bound of at least kWinograd4MinLevels, and an image's transformed tiles
// within kWinogradMaxTileBytes.
bool int8_winograd4_applies(const Conv2dShape& s, const Int8ConvWeights& w);

// V = G g G^T of packed-order weights [K, C, 3, 3] (in double), each position and output channel
// rounded to int16 in steps of its largest |V| over the input channels /
// winograd4_levels(channels4): v [ceil(K/16)][36 positions][channels4 / 2 channel pairs][16 output
// channels][2], and the step of each level in scales [ceil(K/16)][36][16] (0 where a position's V
// is all zero or k >= K).
void winograd4_int8_weights(const int8_t* w, int64_t out_channels, int64_t in_channels,
                            int64_t channels4, std::vector<int16_t>& v, std::vector<float>& scales);

// One 16-channel block of one image in F(4x4): acc[p * 16 + k] = the direct sum, approximately
// (above), from u (winograd_int8_input with 4x4 tiles) and the block's V and scales
// (v + kb * 36 * channels4 * 16, scales + kb * 36 * 16). The AVX2 twin may differ by one where
// the float rounding of the output transform does.
void winograd4_int8_block(const int16_t* u, const int16_t* vblock, const float* sblock,
                          int64_t channels4, const WinogradTiles& tiles, int32_t* acc);
void winograd4_int8_block_avx2(const int16_t* u, const int16_t* vblock, const float* sblock,
                               int64_t channels4, const WinogradTiles& tiles, int32_t* acc);
// The same sums with AVX-VNNI's vpdpwssd (conv2d_int8_winograd_vnni.cpp).
void winograd4_int8_block_vnni(const int16_t* u, const int16_t* vblock, const float* sblock,
                               int64_t channels4, const WinogradTiles& tiles, int32_t* acc);

}  // namespace detail
}  // namespace duet::kernels
