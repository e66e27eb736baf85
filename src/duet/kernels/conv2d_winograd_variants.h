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
// Each struct holds B^T and A^T applied to n vectors of lanes and G as numbers; the drivers
// apply the 1-D transforms along both axes. Everything here is generic over the lane type L
// (simd_lanes_avx2.h's Lanes8, simd_lanes_avx512.h's Lanes16: a vector type V and its
// arithmetic), so the AVX2 and AVX-512 files instantiate the same code with their own types and
// share no instantiation.
#pragma once

#include <cstdint>

namespace duet::kernels::detail::winograd {

struct F2x2 {
  static constexpr int64_t m = 2, n = 4, points = n * n;
  // B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
  template <class L>
  static void input(const typename L::V d[n], typename L::V t[n]) {
    t[0] = L::sub(d[0], d[2]);
    t[1] = L::add(d[1], d[2]);
    t[2] = L::sub(d[2], d[1]);
    t[3] = L::sub(d[1], d[3]);
  }
  // A^T = [1 1 1 0; 0 1 -1 -1]
  template <class L>
  static void output(const typename L::V s[n], typename L::V y[m]) {
    y[0] = L::add(L::add(s[0], s[1]), s[2]);
    y[1] = L::sub(L::sub(s[1], s[2]), s[3]);
  }
  // A (the transpose of A^T) applied to m vectors: the weight gradient's transform of the output
  // gradients (transform_gradient_tile_row_of).
  template <class L>
  static void gradient(const typename L::V g[m], typename L::V t[n]) {
    t[0] = g[0];
    t[1] = L::add(g[0], g[1]);
    t[2] = L::sub(g[0], g[1]);
    t[3] = L::sub(L::zero(), g[1]);
  }
  static constexpr double G[n][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

struct F4x4 {
  static constexpr int64_t m = 4, n = 6, points = n * n;
  // B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
  //        0 4 0 -5 0 1], rows 1-4 from shared sums.
  template <class L>
  static void input(const typename L::V d[n], typename L::V t[n]) {
    using V = typename L::V;
    const V four = L::set1(4.0f), five = L::set1(5.0f), two = L::set1(2.0f);
    const V a = L::fnmadd(four, d[2], d[4]);  // d4 - 4 d2
    const V b = L::fnmadd(four, d[1], d[3]);  // d3 - 4 d1
    const V c = L::sub(d[4], d[2]);
    const V e = L::mul(two, L::sub(d[3], d[1]));
    t[0] = L::fmadd(four, d[0], L::fnmadd(five, d[2], d[4]));
    t[1] = L::add(a, b);
    t[2] = L::sub(a, b);
    t[3] = L::add(c, e);
    t[4] = L::sub(c, e);
    t[5] = L::fmadd(four, d[1], L::fnmadd(five, d[3], d[5]));
  }
  // A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
  template <class L>
  static void output(const typename L::V s[n], typename L::V y[m]) {
    using V = typename L::V;
    const V s12 = L::add(s[1], s[2]), d12 = L::sub(s[1], s[2]);
    const V s34 = L::add(s[3], s[4]), d34 = L::sub(s[3], s[4]);
    y[0] = L::add(L::add(s[0], s12), s34);
    y[1] = L::fmadd(L::set1(2.0f), d34, d12);
    y[2] = L::fmadd(L::set1(4.0f), s34, s12);
    y[3] = L::add(L::fmadd(L::set1(8.0f), d34, d12), s[5]);
  }
  // A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1] applied to 4 vectors; the
  // multiplies by 2 and 4 are exact.
  template <class L>
  static void gradient(const typename L::V g[m], typename L::V t[n]) {
    using V = typename L::V;
    const V s02 = L::add(g[0], g[2]), s13 = L::add(g[1], g[3]);
    const V even = L::fmadd(L::set1(4.0f), g[2], g[0]);                        // g0 + 4 g2
    const V odd = L::mul(L::set1(2.0f), L::fmadd(L::set1(4.0f), g[3], g[1]));  // 2 g1 + 8 g3
    t[0] = g[0];
    t[1] = L::add(s02, s13);
    t[2] = L::sub(s02, s13);
    t[3] = L::add(even, odd);
    t[4] = L::sub(even, odd);
    t[5] = g[3];
  }
  static constexpr double G[n][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
};

// The transformed inputs V = B^T d B of the tiles of one tile row, L::width lanes of one
// channel block: plane is the block's [H][W][16] image (offset to the lanes), the windows start
// at input row h0 and columns w0 + m tx, and tile tx's point xi goes to
// v[tx * ld_tile + xi * ld_xi]. Neighbouring windows share n - m columns, so the vertical pass
// (B^T d) runs once per column and slides along; pixels outside the plane read as zero, and no
// address outside it is formed.
template <class F, class L>
void transform_tile_row_of(const float* plane, int64_t H, int64_t W, int64_t h0, int64_t w0,
                           int64_t tiles, float* v, int64_t ld_tile, int64_t ld_xi) {
  using V = typename L::V;
  constexpr int64_t n = F::n, m = F::m, kLanes = 16;
  bool row_in[n];
  for (int64_t i = 0; i < n; ++i) row_in[i] = h0 + i >= 0 && h0 + i < H;
  auto column = [&](int64_t w, V t[n]) {
    V d[n];
    for (int64_t i = 0; i < n; ++i)
      d[i] =
          row_in[i] && w >= 0 && w < W ? L::load(plane + ((h0 + i) * W + w) * kLanes) : L::zero();
    F::template input<L>(d, t);
  };
  V col[n][n];  // B^T d of the window's columns
  for (int64_t j = 0; j < n - m; ++j) column(w0 + j, col[j]);
  for (int64_t tx = 0; tx < tiles; ++tx, v += ld_tile) {
    for (int64_t j = n - m; j < n; ++j) column(w0 + m * tx + j, col[j]);
    for (int64_t i = 0; i < n; ++i) {
      V row[n], out[n];
      for (int64_t j = 0; j < n; ++j) row[j] = col[j][i];
      F::template input<L>(row, out);
      for (int64_t j = 0; j < n; ++j) L::store(v + (n * i + j) * ld_xi, out[j]);
    }
    for (int64_t j = 0; j < n - m; ++j)
      for (int64_t i = 0; i < n; ++i) col[j][i] = col[j + m][i];
  }
}

// The m x m outputs of one tile, L::width lanes: Y = A^T M A with M[i][j] = m0[(n i + j) ld_xi].
template <class F, class L>
void transform_output_of(const float* m0, int64_t ld_xi, typename L::V y[F::m][F::m]) {
  using V = typename L::V;
  constexpr int64_t n = F::n, m = F::m;
  V s[m][n];  // A^T M
  for (int64_t j = 0; j < n; ++j) {
    V c[n], o[m];
    for (int64_t i = 0; i < n; ++i) c[i] = L::load(m0 + (n * i + j) * ld_xi);
    F::template output<L>(c, o);
    for (int64_t i = 0; i < m; ++i) s[i][j] = o[i];
  }
  for (int64_t i = 0; i < m; ++i) F::template output<L>(s[i], y[i]);
}

// The weight gradient's transformed output gradients Y = A dy A^T of F (F::gradient along both
// axes) of the tiles of one tile row, L::width lanes of one channel block: plane is the block's
// [rows][Q][16] gradient (offset to the lanes), the tiles' top row is h0, and tile tx (columns
// m tx to m tx + m - 1) writes point xi = n i + j to y[tx * ld_tile + xi * ld_xi]. Gradient
// pixels past the plane (the last tiles of sizes m does not divide) read as zero.
template <class F, class L>
void transform_gradient_tile_row_of(const float* plane, int64_t rows, int64_t Q, int64_t h0,
                                    int64_t tiles, float* y, int64_t ld_tile, int64_t ld_xi) {
  using V = typename L::V;
  constexpr int64_t n = F::n, m = F::m, kLanes = 16;
  const int64_t rows_in = rows - h0 < m ? rows - h0 : m;  // (no std::min: shared inline code)
  for (int64_t tx = 0; tx < tiles; ++tx, y += ld_tile) {
    const int64_t cols_in = Q - m * tx < m ? Q - m * tx : m;
    const float* corner = plane + (h0 * Q + m * tx) * kLanes;
    V d[m][m];                           // [column][row]
    if (rows_in == m && cols_in == m) {  // the common whole tile, without a test per pixel
      for (int64_t b = 0; b < m; ++b)
        for (int64_t a = 0; a < m; ++a) d[b][a] = L::load(corner + (a * Q + b) * kLanes);
    } else {
      for (int64_t b = 0; b < m; ++b)
        for (int64_t a = 0; a < m; ++a)
          d[b][a] = a < rows_in && b < cols_in ? L::load(corner + (a * Q + b) * kLanes) : L::zero();
    }
    V col[m][n];  // A applied down each of the tile's columns
    for (int64_t b = 0; b < m; ++b) F::template gradient<L>(d[b], col[b]);
    for (int64_t i = 0; i < n; ++i) {
      V row[m], out[n];
      for (int64_t b = 0; b < m; ++b) row[b] = col[b][i];
      F::template gradient<L>(row, out);
      for (int64_t j = 0; j < n; ++j) L::store(y + (n * i + j) * ld_xi, out[j]);
    }
  }
}

// U = G g G^T of the 16 filters of one output-channel panel for one input channel, lanes side
// by side: g[t][lane] is tap t (row-major 3x3) of the panel's filter `lane`, and point xi of
// filter `lane` goes to u[xi * 16 + lane]. In double (the loops vectorise across the lanes)
// and rounded once. The one piece here not generic over L: only the AVX2 file's pack_filters
// may instantiate it, or the linker could hand AVX2 callers an AVX-512 copy.
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
