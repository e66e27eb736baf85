// AVX2 parts of the int8 Winograd convolutions, F(2x2, 3x3) and F(4x4, 3x3)
// (conv2d_int8_winograd.h): the input transform 16 (or 8, or 4) channels at a time in int16
// lanes, and per 16-channel block the products (vpmaddwd: a tile's channel pair against 8 output
// channels' pair of V, into int32) and the output transform. Same integers as the scalar twins in
// conv2d_int8_winograd.cpp (F(4x4)'s float output transform within one, see there). Called only
// when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/conv2d_int8_lanes_avx2.h"
#include "duet/kernels/conv2d_int8_winograd.h"

namespace duet::kernels::detail {
namespace {

using int8_lanes::Lanes16;
using int8_lanes::Lanes4;
using int8_lanes::Lanes8;

// B^T d of n vectors (n = 4 for F(2x2), 6 for F(4x4); conv2d_winograd_variants.h's matrices).
struct Input2 {
  static constexpr int n = 4;
  template <class L>
  static void apply(const typename L::V d[4], typename L::V t[4]) {
    t[0] = L::sub(d[0], d[2]);
    t[1] = L::add(d[1], d[2]);
    t[2] = L::sub(d[2], d[1]);
    t[3] = L::sub(d[1], d[3]);
  }
};
struct Input4 {
  static constexpr int n = 6;
  template <class L>
  static void apply(const typename L::V d[6], typename L::V t[6]) {
    using V = typename L::V;
    const V d42 = L::sub(d[4], d[2]), d31 = L::template shl<1>(L::sub(d[3], d[1]));
    t[0] = L::add(L::sub(L::template shl<2>(L::sub(d[0], d[2])), d[2]), d[4]);
    t[1] = L::sub(L::add(d[3], d[4]), L::template shl<2>(L::add(d[1], d[2])));
    t[2] = L::add(L::sub(d[4], d[3]), L::template shl<2>(L::sub(d[1], d[2])));
    t[3] = L::add(d42, d31);
    t[4] = L::sub(d42, d31);
    t[5] = L::add(L::sub(L::template shl<2>(L::sub(d[1], d[3])), d[3]), d[5]);
  }
};

// U = B^T d B of one tile's kChannels channels: pixel (i, j) of the window at
// p00 + i * row_bytes + j * pixel_bytes; position xi goes to out + xi * u_stride.
template <class In, class L>
[[gnu::always_inline]] inline void transform_channels(const uint8_t* p00, int64_t row_bytes,
                                                      int64_t pixel_bytes, int16_t* out,
                                                      int64_t u_stride) {
  using V = typename L::V;
  constexpr int n = In::n;
  V x[n][n];  // B^T d, column by column
  for (int j = 0; j < n; ++j) {
    V d[n], t[n];
    for (int i = 0; i < n; ++i) d[i] = L::load(p00 + i * row_bytes + j * pixel_bytes);
    In::template apply<L>(d, t);
    for (int i = 0; i < n; ++i) x[i][j] = t[i];
  }
  for (int i = 0; i < n; ++i) {  // (B^T d) B
    V t[n];
    In::template apply<L>(x[i], t);
    for (int j = 0; j < n; ++j) L::store(out + (i * n + j) * u_stride, t[j]);
  }
}

template <class In>
void transform_tile(const uint8_t* p00, int64_t row_bytes, int64_t C4, int16_t* out,
                    int64_t u_stride) {
  int64_t c = 0;
  for (; c + 16 <= C4; c += 16)
    transform_channels<In, Lanes16>(p00 + c, row_bytes, C4, out + c, u_stride);
  if (c + 8 <= C4) {
    transform_channels<In, Lanes8>(p00 + c, row_bytes, C4, out + c, u_stride);
    c += 8;
  }
  if (c < C4) transform_channels<In, Lanes4>(p00 + c, row_bytes, C4, out + c, u_stride);
}

template <class In>
void input_tiles(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t C4,
                 const WinogradTiles& tiles, int16_t* u) {
  constexpr int n = In::n;
  const int64_t u_stride = tiles.count * C4, row_bytes = Wp * C4, edge = tiles.edge;
  std::vector<uint8_t> window;  // a window reaching past the image, zeros outside it
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t row0 = edge * (t / tiles.tiles_w), col0 = edge * (t % tiles.tiles_w);
    const uint8_t* p00 = image + (row0 * Wp + col0) * C4;
    if (row0 + n <= Hp && col0 + n <= Wp) {
      transform_tile<In>(p00, row_bytes, C4, u + t * C4, u_stride);
      continue;
    }
    window.assign(size_t(n * n * C4), 0);
    const int64_t rows = std::min<int64_t>(n, Hp - row0), cols = std::min<int64_t>(n, Wp - col0);
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(window.data() + i * n * C4, p00 + i * row_bytes, size_t(cols * C4));
    transform_tile<In>(window.data(), n * C4, C4, u + t * C4, u_stride);
  }
}

constexpr int kTileBlock = 6;  // tiles per product pass: 12 accumulators + 2 weight vectors

// One channel pair c2 of MR tiles against 16 output channels: the products added into lo / hi,
// or (kFirst) written there, which saves the first pair's adds and the zeroing.
template <int MR, bool kFirst>
[[gnu::always_inline]] inline void pair_products(const int16_t* ut, int64_t C4, const int16_t* v,
                                                 int64_t c2, __m256i (&lo)[MR], __m256i (&hi)[MR]) {
  const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c2 * 32));
  const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c2 * 32 + 16));
  for (int i = 0; i < MR; ++i) {
    int32_t pair;
    std::memcpy(&pair, ut + i * C4 + 2 * c2, 4);
    const __m256i a = _mm256_set1_epi32(pair);
    const __m256i p0 = _mm256_madd_epi16(a, w0), p1 = _mm256_madd_epi16(a, w1);
    lo[i] = kFirst ? p0 : _mm256_add_epi32(lo[i], p0);
    hi[i] = kFirst ? p1 : _mm256_add_epi32(hi[i], p1);
  }
}

// m[xi][i][16] = sum over channel pairs of U(tile t0 + i, xi) V(xi), for MR tiles and the form's
// P positions.
template <int MR, int64_t P>
[[gnu::always_inline]] inline void products(const int16_t* u, const int16_t* vblock, int64_t C4,
                                            const WinogradTiles& tiles, int64_t t0,
                                            int32_t (&m)[P][MR][kInt8BlockK]) {
  const int64_t u_stride = tiles.count * C4, pairs = C4 / 2;  // C4 >= 4: at least two pairs
  for (int64_t xi = 0; xi < P; ++xi) {
    const int16_t* ut = u + xi * u_stride + t0 * C4;
    const int16_t* v = vblock + xi * pairs * kInt8BlockK * 2;
    __m256i lo[MR], hi[MR];
    pair_products<MR, true>(ut, C4, v, 0, lo, hi);
    for (int64_t c2 = 1; c2 < pairs; ++c2) pair_products<MR, false>(ut, C4, v, c2, lo, hi);
    for (int i = 0; i < MR; ++i) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][i]), lo[i]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][i] + 8), hi[i]);
    }
  }
}

// F(2x2): the products of MR tiles, then each tile's exact integer output transform into acc.
template <int MR>
void tile_block2(const int16_t* u, const int16_t* vblock, const float*, int64_t C4,
                 const WinogradTiles& tiles, int64_t t0, int32_t* acc) {
  alignas(32) int32_t m[kWinogradPositions][MR][kInt8BlockK];
  products<MR, kWinogradPositions>(u, vblock, C4, tiles, t0, m);
  for (int i = 0; i < MR; ++i) {
    const int64_t t = t0 + i;
    const int64_t row0 = 2 * (t / tiles.tiles_w), col0 = 2 * (t % tiles.tiles_w);
    for (int h = 0; h < 2; ++h) {  // 8 output channels at a time
      __m256i r[2][4];             // A^T m
      for (int j = 0; j < 4; ++j) {
        auto at = [&](int row) {
          return _mm256_load_si256(reinterpret_cast<const __m256i*>(m[row * 4 + j][i] + 8 * h));
        };
        const __m256i m0 = at(0), m1 = at(1), m2 = at(2), m3 = at(3);
        r[0][j] = _mm256_add_epi32(_mm256_add_epi32(m0, m1), m2);
        r[1][j] = _mm256_sub_epi32(_mm256_sub_epi32(m1, m2), m3);
      }
      for (int a = 0; a < 2 && row0 + a < tiles.P; ++a) {
        int32_t* row = acc + ((row0 + a) * tiles.Q + col0) * kInt8BlockK + 8 * h;
        // (A^T m A) / 4: a multiple of 4, so the arithmetic shift is the exact division.
        const __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(r[a][0], r[a][1]), r[a][2]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(row), _mm256_srai_epi32(y0, 2));
        if (col0 + 1 < tiles.Q) {
          const __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(r[a][1], r[a][2]), r[a][3]);
          _mm256_store_si256(reinterpret_cast<__m256i*>(row + kInt8BlockK),
                             _mm256_srai_epi32(y1, 2));
        }
      }
    }
  }
}

// A^T s of 6 vectors for F(4x4): adds and exact multiplies by 2, 4 and 8 (as the scalar twin).
[[gnu::always_inline]] inline void output4(const __m256 s[6], __m256 y[4]) {
  const __m256 s12 = _mm256_add_ps(s[1], s[2]), d12 = _mm256_sub_ps(s[1], s[2]);
  const __m256 s34 = _mm256_add_ps(s[3], s[4]), d34 = _mm256_sub_ps(s[3], s[4]);
  y[0] = _mm256_add_ps(_mm256_add_ps(s[0], s12), s34);
  y[1] = _mm256_add_ps(d12, _mm256_mul_ps(_mm256_set1_ps(2.0f), d34));
  y[2] = _mm256_add_ps(s12, _mm256_mul_ps(_mm256_set1_ps(4.0f), s34));
  y[3] = _mm256_add_ps(_mm256_add_ps(d12, _mm256_mul_ps(_mm256_set1_ps(8.0f), d34)), s[5]);
}

// F(4x4): the products of MR tiles, then per tile the sums times their steps (sblock), the float
// output transform, and the rounded results into acc.
template <int MR>
void tile_block4(const int16_t* u, const int16_t* vblock, const float* sblock, int64_t C4,
                 const WinogradTiles& tiles, int64_t t0, int32_t* acc) {
  alignas(32) int32_t m[kWinograd4Positions][MR][kInt8BlockK];
  products<MR, kWinograd4Positions>(u, vblock, C4, tiles, t0, m);
  for (int i = 0; i < MR; ++i) {
    const int64_t t = t0 + i;
    const int64_t row0 = 4 * (t / tiles.tiles_w), col0 = 4 * (t % tiles.tiles_w);
    const int64_t rows = std::min<int64_t>(4, tiles.P - row0);
    const int64_t cols = std::min<int64_t>(4, tiles.Q - col0);
    for (int h = 0; h < 2; ++h) {  // 8 output channels at a time
      __m256 r[4][6];              // A^T m
      for (int j = 0; j < 6; ++j) {
        __m256 col[6], out[4];
        for (int row = 0; row < 6; ++row) {
          const int64_t xi = row * 6 + j;
          const __m256i sum = _mm256_load_si256(reinterpret_cast<const __m256i*>(m[xi][i] + 8 * h));
          col[row] = _mm256_mul_ps(_mm256_cvtepi32_ps(sum),
                                   _mm256_loadu_ps(sblock + xi * kInt8BlockK + 8 * h));
        }
        output4(col, out);
        for (int a = 0; a < 4; ++a) r[a][j] = out[a];
      }
      for (int a = 0; a < rows; ++a) {
        __m256 y[4];
        output4(r[a], y);
        int32_t* row = acc + ((row0 + a) * tiles.Q + col0) * kInt8BlockK + 8 * h;
        for (int b = 0; b < cols; ++b)  // rounded to nearest (the default MXCSR mode)
          _mm256_store_si256(reinterpret_cast<__m256i*>(row + b * kInt8BlockK),
                             _mm256_cvtps_epi32(y[b]));
      }
    }
  }
}

// The tiles of a block in passes of kTileBlock, the last pass with what is left.
template <template <int> class Block>
void run_block(const int16_t* u, const int16_t* vblock, const float* sblock, int64_t C4,
               const WinogradTiles& tiles, int32_t* acc) {
  int64_t t = 0;
  for (; t + kTileBlock <= tiles.count; t += kTileBlock)
    Block<kTileBlock>::run(u, vblock, sblock, C4, tiles, t, acc);
  switch (tiles.count - t) {
    case 5:
      return Block<5>::run(u, vblock, sblock, C4, tiles, t, acc);
    case 4:
      return Block<4>::run(u, vblock, sblock, C4, tiles, t, acc);
    case 3:
      return Block<3>::run(u, vblock, sblock, C4, tiles, t, acc);
    case 2:
      return Block<2>::run(u, vblock, sblock, C4, tiles, t, acc);
    case 1:
      return Block<1>::run(u, vblock, sblock, C4, tiles, t, acc);
    default:
      return;
  }
}
template <int MR>
struct Block2 {
  static constexpr auto run = tile_block2<MR>;
};
template <int MR>
struct Block4 {
  static constexpr auto run = tile_block4<MR>;
};

}  // namespace

void winograd_int8_input_avx2(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t C4,
                              const WinogradTiles& tiles, int16_t* u) {
  if (tiles.edge == 4)
    input_tiles<Input4>(image, Hp, Wp, C4, tiles, u);
  else
    input_tiles<Input2>(image, Hp, Wp, C4, tiles, u);
}

void winograd_int8_block_avx2(const int16_t* u, const int16_t* vblock, int64_t C4,
                              const WinogradTiles& tiles, int32_t* acc) {
  run_block<Block2>(u, vblock, nullptr, C4, tiles, acc);
}

void winograd4_int8_block_avx2(const int16_t* u, const int16_t* vblock, const float* sblock,
                               int64_t C4, const WinogradTiles& tiles, int32_t* acc) {
  run_block<Block4>(u, vblock, sblock, C4, tiles, acc);
}

}  // namespace duet::kernels::detail
