// Winograd F(2x2, 3x3) for the int8 convolution, in integers and exact.
//
// Why: without VNNI, the direct int8 kernel needs a vpmaddubsw and (every two tap groups) a
// vpmaddwd per 32 multiply-adds; Winograd F(2x2, 3x3) needs 16 products per 2x2 outputs where
// direct needs 36, and its int16 products (vpmaddwd, 16 per instruction) then do the work of
// 36 direct multiply-adds per multiply-port instruction instead of about 21.
//
// Why it is exact: with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] the transformed activation
// codes U = B^T d B (codes 0..127) lie in [-254, 508], and with 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2]
// the transformed weights V = (2G) g (2G)^T are integers with |V| <= 9 max|g|: 4x the usual
// G g G^T. So Y = A^T (sum over channels of U V) A is in integers 4x the true conv sum, and
// Y / 4 (an exact shift) equals the direct kernel's int32 sum bit for bit; the zero-point
// correction and the float epilogue are then the direct path's. int16 holds U and V, and int32
// holds every partial sum while kInt8WinogradBound (below) holds.
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

// The tiles of one image: the output [P, Q] in 2x2 tiles, tiles_h x tiles_w, row-major.
struct WinogradTiles {
  int64_t P, Q, tiles_h, tiles_w, count;
};
WinogradTiles winograd_tiles(const Conv2dShape& s);

// U of every tile of one padded NHWC u8 image ([Hp][Wp][channels4], as the direct kernel reads
// it) into u: [16 positions][tiles.count][channels4] int16. Windows reaching past the image's
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

}  // namespace detail
}  // namespace duet::kernels
