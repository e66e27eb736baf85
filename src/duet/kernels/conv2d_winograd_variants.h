// The two Winograd variants of the 3x3 convolution (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016) as small structs the drivers are templated on: an m x m
// tile of output pixels comes from an n x n input window (n = m + 2) through
// y = A^T [(G g G^T) . (B^T d B)] A, so per tile and channel pair the 9 m^2 multiply-adds of the
// direct convolution become n^2 products.
// - F2x2: F(2x2, 3x3), 16 products for 36 multiply-adds (2.25x fewer); its transforms only add,
//   subtract and halve, so it differs from the direct convolution by rounding alone.
// - F4x4: F(4x4, 3x3), 36 products for 144 (4x fewer), with transforms whose coefficients reach
//   5 (B), 1/24 (G) and 8 (A): the rounding error grows by about an order of magnitude, which
//   inference can afford and the op harness bounds (cases_conv2d.cpp).
// Each struct holds B^T and A^T applied to n values (8 lanes each) and G as numbers; the drivers
// apply the 1-D transforms along both axes.
// Include only from *_avx2.cpp files: the inline code here is compiled for AVX2 + FMA.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace duet::kernels::detail::winograd {

struct F2x2 {
  static constexpr int64_t m = 2, n = 4, points = n * n;
  // B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
  static void input(const __m256 d[n], __m256 t[n]) {
    t[0] = _mm256_sub_ps(d[0], d[2]);
    t[1] = _mm256_add_ps(d[1], d[2]);
    t[2] = _mm256_sub_ps(d[2], d[1]);
    t[3] = _mm256_sub_ps(d[1], d[3]);
  }
  // A^T = [1 1 1 0; 0 1 -1 -1]
  static void output(const __m256 s[n], __m256 y[m]) {
    y[0] = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), s[2]);
    y[1] = _mm256_sub_ps(_mm256_sub_ps(s[1], s[2]), s[3]);
  }
  static constexpr double G[n][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

struct F4x4 {
  static constexpr int64_t m = 4, n = 6, points = n * n;
  // B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
  //        0 4 0 -5 0 1], rows 1-4 from shared sums.
  static void input(const __m256 d[n], __m256 t[n]) {
    const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f),
                 two = _mm256_set1_ps(2.0f);
    const __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
    const __m256 b = _mm256_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
    const __m256 c = _mm256_sub_ps(d[4], d[2]);
    const __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    t[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
    t[1] = _mm256_add_ps(a, b);
    t[2] = _mm256_sub_ps(a, b);
    t[3] = _mm256_add_ps(c, e);
    t[4] = _mm256_sub_ps(c, e);
    t[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
  }
  // A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
  static void output(const __m256 s[n], __m256 y[m]) {
    const __m256 s12 = _mm256_add_ps(s[1], s[2]), d12 = _mm256_sub_ps(s[1], s[2]);
    const __m256 s34 = _mm256_add_ps(s[3], s[4]), d34 = _mm256_sub_ps(s[3], s[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(s[0], s12), s34);
    y[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d34, d12);
    y[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s34, s12);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d34, d12), s[5]);
  }
  static constexpr double G[n][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
};

// The transformed inputs V = B^T d B of the tiles of one tile row, 8 lanes of one channel block:
// plane is the block's [H][W][16] image (offset to the lanes), the windows start at input row
// h0 and columns w0 + m tx, and tile tx's point xi goes to v[tx * ld_tile + xi * ld_xi].
// Neighbouring windows share n - m columns, so the vertical pass (B^T d) runs once per column
// and slides along; pixels outside the plane read as zero, and no address outside it is formed.
template <class F>
void transform_tile_row_of(const float* plane, int64_t H, int64_t W, int64_t h0, int64_t w0,
                           int64_t tiles, float* v, int64_t ld_tile, int64_t ld_xi) {
  constexpr int64_t n = F::n, m = F::m, kLanes = 16;
  bool row_in[n];
  for (int64_t i = 0; i < n; ++i) row_in[i] = h0 + i >= 0 && h0 + i < H;
  auto column = [&](int64_t w, __m256 t[n]) {
    __m256 d[n];
    for (int64_t i = 0; i < n; ++i)
      d[i] = row_in[i] && w >= 0 && w < W ? _mm256_loadu_ps(plane + ((h0 + i) * W + w) * kLanes)
                                          : _mm256_setzero_ps();
    F::input(d, t);
  };
  __m256 col[n][n];  // B^T d of the window's columns
  for (int64_t j = 0; j < n - m; ++j) column(w0 + j, col[j]);
  for (int64_t tx = 0; tx < tiles; ++tx, v += ld_tile) {
    for (int64_t j = n - m; j < n; ++j) column(w0 + m * tx + j, col[j]);
    for (int64_t i = 0; i < n; ++i) {
      __m256 row[n], out[n];
      for (int64_t j = 0; j < n; ++j) row[j] = col[j][i];
      F::input(row, out);
      for (int64_t j = 0; j < n; ++j) _mm256_storeu_ps(v + (n * i + j) * ld_xi, out[j]);
    }
    for (int64_t j = 0; j < n - m; ++j)
      for (int64_t i = 0; i < n; ++i) col[j][i] = col[j + m][i];
  }
}

// The m x m outputs of one tile, 8 lanes: Y = A^T M A with M[i][j] = m0[(n i + j) * ld_xi].
template <class F>
void transform_output_of(const float* m0, int64_t ld_xi, __m256 y[F::m][F::m]) {
  constexpr int64_t n = F::n, m = F::m;
  __m256 s[m][n];  // A^T M
  for (int64_t j = 0; j < n; ++j) {
    __m256 c[n], o[m];
    for (int64_t i = 0; i < n; ++i) c[i] = _mm256_loadu_ps(m0 + (n * i + j) * ld_xi);
    F::output(c, o);
    for (int64_t i = 0; i < m; ++i) s[i][j] = o[i];
  }
  for (int64_t i = 0; i < m; ++i) F::output(s[i], y[i]);
}

// U = G g G^T of the 16 filters of one output-channel panel for one input channel, lanes side
// by side: g[t][lane] is tap t (row-major 3x3) of the panel's filter `lane`, and point xi of
// filter `lane` goes to u[xi * 16 + lane]. In double (the loops vectorise across the lanes)
// and rounded once.
template <class F>
void transform_filters_of(const float g[9][16], float* u) {
  constexpr int64_t n = F::n, kLanes = 16;
  double gg[n][3][kLanes];  // G g
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t l = 0; l < kLanes; ++l)
        gg[i][j][l] = F::G[i][0] * g[j][l] + F::G[i][1] * g[3 + j][l] + F::G[i][2] * g[6 + j][l];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t l = 0; l < kLanes; ++l)
        u[(n * i + j) * kLanes + l] =
            float(gg[i][0][l] * F::G[j][0] + gg[i][1][l] * F::G[j][1] + gg[i][2][l] * F::G[j][2]);
}

}  // namespace duet::kernels::detail::winograd
