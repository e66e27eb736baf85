// The portable parts of the int8 Winograd F(2x2, 3x3) convolution (conv2d_int8_winograd.h): when
// it applies, the weight transform, and the plain twins of the AVX2 input transform and block
// (same integers, scalar loops). The driver is conv2d_int8.cpp's.
#include "duet/kernels/conv2d_int8_winograd.h"

#include <algorithm>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_int8.h"

namespace duet::kernels::detail {

bool int8_winograd_applies(const Conv2dShape& s, const Int8ConvWeights& w) {
  const bool shape = s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 && s.stride_w == 1 &&
                     s.dilation_h == 1 && s.dilation_w == 1 && s.groups == 1;
  if (!shape || w.winograd.empty()) return false;
  // The largest partial sum: an output-transform term adds 9 products-over-channels of
  // |U| <= 508 and |V| <= 9 max|w|.
  const int64_t bound = 9 * w.channels4 * kWinogradMaxU * 9 * int64_t{w.max_abs_weight};
  // An image's transformed tiles take 8x the bytes of its u8 copy; past this, direct is leaner.
  const double tile_bytes = double(kWinogradPositions) * double((s.out_h() + 1) / 2) *
                            double((s.out_w() + 1) / 2) * double(w.channels4) * sizeof(int16_t);
  return bound < (int64_t{1} << 31) && tile_bytes <= double(kWinogradMaxTileBytes);
}

std::vector<int16_t> winograd_int8_weights(const int8_t* w, int64_t K, int64_t C, int64_t C4) {
  const int64_t pairs = C4 / 2, blocks = (K + kInt8BlockK - 1) / kInt8BlockK;
  std::vector<int16_t> v(size_t(blocks * kWinogradPositions * pairs * kInt8BlockK * 2), 0);
  static constexpr int32_t G2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};  // 2G
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      const int8_t* g = w + (k * C + c) * 9;
      int32_t gt[4][3] = {};  // (2G) g
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 3; ++j)
          for (int t = 0; t < 3; ++t) gt[i][j] += G2[i][t] * g[t * 3 + j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          int32_t sum = 0;  // ((2G) g (2G)^T)[i][j], |sum| <= 9 x 127
          for (int t = 0; t < 3; ++t) sum += gt[i][t] * G2[j][t];
          const int64_t xi = i * 4 + j, kb = k / kInt8BlockK;
          v[size_t(
              (((kb * kWinogradPositions + xi) * pairs + c / 2) * kInt8BlockK + k % kInt8BlockK) *
                  2 +
              c % 2)] = int16_t(sum);
        }
    }
  return v;
}

WinogradTiles winograd_tiles(const Conv2dShape& s) {
  WinogradTiles t;
  t.P = s.out_h(), t.Q = s.out_w();
  t.tiles_h = (t.P + 1) / 2, t.tiles_w = (t.Q + 1) / 2;
  t.count = t.tiles_h * t.tiles_w;
  return t;
}

void winograd_int8_input(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t C4,
                         const WinogradTiles& tiles, int16_t* u) {
  const int64_t u_stride = tiles.count * C4;  // between positions
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t row0 = 2 * (t / tiles.tiles_w), col0 = 2 * (t % tiles.tiles_w);
    for (int64_t c = 0; c < C4; ++c) {
      int32_t d[4][4];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          const int64_t r = row0 + i, q = col0 + j;
          d[i][j] = r < Hp && q < Wp ? image[(r * Wp + q) * C4 + c] : 0;
        }
      int32_t x[4][4];  // B^T d
      for (int j = 0; j < 4; ++j) {
        x[0][j] = d[0][j] - d[2][j];
        x[1][j] = d[1][j] + d[2][j];
        x[2][j] = d[2][j] - d[1][j];
        x[3][j] = d[1][j] - d[3][j];
      }
      for (int i = 0; i < 4; ++i) {  // (B^T d) B
        int16_t* out = u + (i * 4) * u_stride + t * C4 + c;
        out[0] = int16_t(x[i][0] - x[i][2]);
        out[u_stride] = int16_t(x[i][1] + x[i][2]);
        out[2 * u_stride] = int16_t(x[i][2] - x[i][1]);
        out[3 * u_stride] = int16_t(x[i][1] - x[i][3]);
      }
    }
  }
}

void winograd_int8_block(const int16_t* u, const int16_t* vblock, int64_t C4,
                         const WinogradTiles& tiles, int32_t* acc) {
  const int64_t u_stride = tiles.count * C4, pairs = C4 / 2;
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t row0 = 2 * (t / tiles.tiles_w), col0 = 2 * (t % tiles.tiles_w);
    for (int64_t k = 0; k < kInt8BlockK; ++k) {
      int32_t m[4][4];  // sum over channels of U V at each position
      for (int64_t xi = 0; xi < kWinogradPositions; ++xi) {
        const int16_t* ut = u + xi * u_stride + t * C4;
        const int16_t* v = vblock + xi * pairs * kInt8BlockK * 2 + k * 2;
        int32_t sum = 0;
        for (int64_t c = 0; c < C4; ++c)
          sum += int32_t(ut[c]) * int32_t(v[(c / 2) * kInt8BlockK * 2 + c % 2]);
        m[xi / 4][xi % 4] = sum;
      }
      int32_t r[2][4];  // A^T m
      for (int j = 0; j < 4; ++j) {
        r[0][j] = m[0][j] + m[1][j] + m[2][j];
        r[1][j] = m[1][j] - m[2][j] - m[3][j];
      }
      for (int i = 0; i < 2; ++i) {
        const int32_t y[2] = {r[i][0] + r[i][1] + r[i][2], r[i][1] - r[i][2] - r[i][3]};
        for (int j = 0; j < 2; ++j)  // (A^T m A) / 4: the direct sum, exactly
          if (row0 + i < tiles.P && col0 + j < tiles.Q)
            acc[((row0 + i) * tiles.Q + col0 + j) * kInt8BlockK + k] = y[j] / 4;
      }
    }
  }
}

}  // namespace duet::kernels::detail
