// The portable parts of the int8 Winograd convolutions (conv2d_int8_winograd.h): when they apply,
// the weight transforms, and the plain twins of the AVX2 input transforms and blocks (same
// integers, scalar loops). The driver is conv2d_int8.cpp's.
#include "duet/kernels/conv2d_int8_winograd.h"

#include <algorithm>
#include <cmath>

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

WinogradTiles winograd_tiles(const Conv2dShape& s, int64_t edge) {
  WinogradTiles t;
  t.P = s.out_h(), t.Q = s.out_w(), t.edge = edge;
  t.tiles_h = (t.P + edge - 1) / edge, t.tiles_w = (t.Q + edge - 1) / edge;
  t.count = t.tiles_h * t.tiles_w;
  return t;
}

namespace {

// B^T d of a 4-long column for F(2x2), a 6-long one for F(4x4) (conv2d_winograd_variants.h's
// matrices, in integers).
void input2(const int32_t d[4], int32_t t[4]) {
  t[0] = d[0] - d[2];
  t[1] = d[1] + d[2];
  t[2] = d[2] - d[1];
  t[3] = d[1] - d[3];
}
void input4(const int32_t d[6], int32_t t[6]) {
  t[0] = 4 * d[0] - 5 * d[2] + d[4];
  t[1] = d[3] + d[4] - 4 * (d[1] + d[2]);
  t[2] = d[4] - d[3] + 4 * (d[1] - d[2]);
  t[3] = d[4] - d[2] + 2 * (d[3] - d[1]);
  t[4] = d[4] - d[2] - 2 * (d[3] - d[1]);
  t[5] = 4 * d[1] - 5 * d[3] + d[5];
}

}  // namespace

void winograd_int8_input(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t C4,
                         const WinogradTiles& tiles, int16_t* u) {
  const int64_t u_stride = tiles.count * C4;  // between positions
  const int n = int(tiles.edge) + 2;
  auto transform = tiles.edge == 4 ? input4 : input2;
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t row0 = tiles.edge * (t / tiles.tiles_w), col0 = tiles.edge * (t % tiles.tiles_w);
    for (int64_t c = 0; c < C4; ++c) {
      int32_t d[6][6], x[6][6], col[6], out[6];
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          const int64_t r = row0 + i, q = col0 + j;
          d[i][j] = r < Hp && q < Wp ? image[(r * Wp + q) * C4 + c] : 0;
        }
      for (int j = 0; j < n; ++j) {  // x = B^T d, column by column
        for (int i = 0; i < n; ++i) col[i] = d[i][j];
        transform(col, out);
        for (int i = 0; i < n; ++i) x[i][j] = out[i];
      }
      for (int i = 0; i < n; ++i) {  // (B^T d) B, row by row
        transform(x[i], out);
        for (int j = 0; j < n; ++j) u[(i * n + j) * u_stride + t * C4 + c] = int16_t(out[j]);
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

int64_t winograd4_levels(int64_t C4) {
  return std::min<int64_t>(32767,
                           ((int64_t{1} << 31) - 1) / (std::max<int64_t>(C4, 1) * kWinograd4MaxU));
}

bool int8_winograd4_applies(const Conv2dShape& s, const Int8ConvWeights& w) {
  const bool shape = s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 && s.stride_w == 1 &&
                     s.dilation_h == 1 && s.dilation_w == 1 && s.groups == 1;
  if (!shape || w.winograd4.empty() || winograd4_levels(w.channels4) < kWinograd4MinLevels)
    return false;
  const double tile_bytes = double(kWinograd4Positions) * double((s.out_h() + 3) / 4) *
                            double((s.out_w() + 3) / 4) * double(w.channels4) * sizeof(int16_t);
  return tile_bytes <= double(kWinogradMaxTileBytes);
}

void winograd4_int8_weights(const int8_t* w, int64_t K, int64_t C, int64_t C4,
                            std::vector<int16_t>& v, std::vector<float>& scales) {
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  constexpr int64_t P = kWinograd4Positions;
  const int64_t pairs = C4 / 2, blocks = (K + kInt8BlockK - 1) / kInt8BlockK;
  const double levels = double(winograd4_levels(C4));
  v.assign(size_t(blocks * P * pairs * kInt8BlockK * 2), 0);
  scales.assign(size_t(blocks * P * kInt8BlockK), 0.0f);
  std::vector<double> vk(size_t(P * C));  // one output channel's V, [position][channel]
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t c = 0; c < C; ++c) {
      const int8_t* g = w + (k * C + c) * 9;
      double gt[6][3] = {};  // G g
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 3; ++j)
          for (int t = 0; t < 3; ++t) gt[i][j] += G[i][t] * g[t * 3 + j];
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          double sum = 0;
          for (int t = 0; t < 3; ++t) sum += gt[i][t] * G[j][t];
          vk[size_t((i * 6 + j) * C + c)] = sum;
        }
    }
    const int64_t kb = k / kInt8BlockK, kk = k % kInt8BlockK;
    for (int64_t xi = 0; xi < P; ++xi) {
      double peak = 0;
      for (int64_t c = 0; c < C; ++c) peak = std::max(peak, std::fabs(vk[size_t(xi * C + c)]));
      if (peak == 0) continue;  // V and its scale stay 0
      const float step = float(peak / levels);
      scales[size_t((kb * P + xi) * kInt8BlockK + kk)] = step;
      for (int64_t c = 0; c < C; ++c) {
        // Rounded against the float step the output transform multiplies by, clamped so that a
        // rounding of the step itself cannot push a level past the bound.
        const double q = std::nearbyint(vk[size_t(xi * C + c)] / double(step));
        v[size_t((((kb * P + xi) * pairs + c / 2) * kInt8BlockK + kk) * 2 + c % 2)] =
            int16_t(std::clamp(q, -levels, levels));
      }
    }
  }
}

namespace {

// A^T s of a 6-long column for F(4x4): only adds and multiplies by 2, 4 and 8, which are exact,
// so an FMA contraction of the vector twin cannot round differently here.
void output4(const float s[6], float y[4]) {
  const float s12 = s[1] + s[2], d12 = s[1] - s[2], s34 = s[3] + s[4], d34 = s[3] - s[4];
  y[0] = s[0] + s12 + s34;
  y[1] = d12 + 2.0f * d34;
  y[2] = s12 + 4.0f * s34;
  y[3] = d12 + 8.0f * d34 + s[5];
}

}  // namespace

void winograd4_int8_block(const int16_t* u, const int16_t* vblock, const float* sblock, int64_t C4,
                          const WinogradTiles& tiles, int32_t* acc) {
  constexpr int64_t P = kWinograd4Positions;
  const int64_t u_stride = tiles.count * C4, pairs = C4 / 2;
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t row0 = 4 * (t / tiles.tiles_w), col0 = 4 * (t % tiles.tiles_w);
    for (int64_t k = 0; k < kInt8BlockK; ++k) {
      float m[6][6];  // sum over channels of U V at each position, in units of V's step
      for (int64_t xi = 0; xi < P; ++xi) {
        const int16_t* ut = u + xi * u_stride + t * C4;
        const int16_t* v = vblock + xi * pairs * kInt8BlockK * 2 + k * 2;
        int32_t sum = 0;
        for (int64_t c = 0; c < C4; ++c)
          sum += int32_t(ut[c]) * int32_t(v[(c / 2) * kInt8BlockK * 2 + c % 2]);
        m[xi / 6][xi % 6] = float(sum) * sblock[xi * kInt8BlockK + k];
      }
      float r[4][6], col[6], out[4];  // A^T m
      for (int j = 0; j < 6; ++j) {
        for (int i = 0; i < 6; ++i) col[i] = m[i][j];
        output4(col, out);
        for (int a = 0; a < 4; ++a) r[a][j] = out[a];
      }
      for (int a = 0; a < 4; ++a) {
        output4(r[a], out);  // (A^T m) A
        for (int b = 0; b < 4; ++b)
          if (row0 + a < tiles.P && col0 + b < tiles.Q)
            acc[((row0 + a) * tiles.Q + col0 + b) * kInt8BlockK + k] =
                int32_t(std::nearbyint(out[b]));
      }
    }
  }
}

}  // namespace duet::kernels::detail
