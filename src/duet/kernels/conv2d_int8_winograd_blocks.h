// The int8 Winograd blocks (conv2d_int8_winograd.h), F(2x2) and F(4x4), shared by the AVX2 and
// AVX-VNNI translation units, which differ only in `Dot::accumulate(acc, a, w)`: 8 int32 lanes
// each gaining the sum of two int16 x int16 products (vpmaddwd + vpaddd, or one vpdpwssd). Per
// position, a tile's channel pair (one 32-bit broadcast) against two vectors of 8 output
// channels' pair of V. Include only from *_avx2.cpp and *_vnni.cpp files. Every function here is
// a template on Dot, whose types live in each file's anonymous namespace, so no instantiation is
// shared between files compiled with different instruction sets (output4 takes Dot for that alone).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/conv2d_int8_winograd.h"

namespace duet::kernels::detail::int8_winograd {

// Tiles per product pass: 12 accumulators and 2 weight vectors.
inline constexpr int kInt8WinogradTileBlock = 6;

// One channel pair c2 of MR tiles against 16 output channels: the products added into lo / hi,
// or (kFirst) written there, which saves the first pair's adds and the zeroing.
template <class Dot, int MR, bool kFirst>
[[gnu::always_inline]] inline void pair_products(const int16_t* ut, int64_t C4, const int16_t* v,
                                                 int64_t c2, __m256i (&lo)[MR], __m256i (&hi)[MR]) {
  const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c2 * 32));
  const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c2 * 32 + 16));
  for (int i = 0; i < MR; ++i) {
    int32_t pair;
    std::memcpy(&pair, ut + i * C4 + 2 * c2, 4);
    const __m256i a = _mm256_set1_epi32(pair);
    if constexpr (kFirst) {
      lo[i] = _mm256_madd_epi16(a, w0);
      hi[i] = _mm256_madd_epi16(a, w1);
    } else {
      lo[i] = Dot::accumulate(lo[i], a, w0);
      hi[i] = Dot::accumulate(hi[i], a, w1);
    }
  }
}

// m[xi][i][16] = sum over channel pairs of U(tile t0 + i, xi) V(xi), for MR tiles and the form's
// P positions.
template <class Dot, int MR, int64_t P>
[[gnu::always_inline]] inline void products(const int16_t* u, const int16_t* vblock, int64_t C4,
                                            const WinogradTiles& tiles, int64_t t0,
                                            int32_t (&m)[P][MR][kInt8BlockK]) {
  const int64_t u_stride = tiles.count * C4, pairs = C4 / 2;  // C4 >= 4: at least two pairs
  for (int64_t xi = 0; xi < P; ++xi) {
    const int16_t* ut = u + xi * u_stride + t0 * C4;
    const int16_t* v = vblock + xi * pairs * kInt8BlockK * 2;
    __m256i lo[MR], hi[MR];
    pair_products<Dot, MR, true>(ut, C4, v, 0, lo, hi);
    for (int64_t c2 = 1; c2 < pairs; ++c2) pair_products<Dot, MR, false>(ut, C4, v, c2, lo, hi);
    for (int i = 0; i < MR; ++i) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][i]), lo[i]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][i] + 8), hi[i]);
    }
  }
}

// F(2x2): the products of MR tiles, then each tile's exact integer output transform into acc.
template <class Dot, int MR>
void tile_block2(const int16_t* u, const int16_t* vblock, const float*, int64_t C4,
                 const WinogradTiles& tiles, int64_t t0, int32_t* acc) {
  alignas(32) int32_t m[kWinogradPositions][MR][kInt8BlockK];
  products<Dot, MR, kWinogradPositions>(u, vblock, C4, tiles, t0, m);
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
template <class Dot>
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
template <class Dot, int MR>
void tile_block4(const int16_t* u, const int16_t* vblock, const float* sblock, int64_t C4,
                 const WinogradTiles& tiles, int64_t t0, int32_t* acc) {
  alignas(32) int32_t m[kWinograd4Positions][MR][kInt8BlockK];
  products<Dot, MR, kWinograd4Positions>(u, vblock, C4, tiles, t0, m);
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
        output4<Dot>(col, out);
        for (int a = 0; a < 4; ++a) r[a][j] = out[a];
      }
      for (int a = 0; a < rows; ++a) {
        __m256 y[4];
        output4<Dot>(r[a], y);
        int32_t* row = acc + ((row0 + a) * tiles.Q + col0) * kInt8BlockK + 8 * h;
        for (int b = 0; b < cols; ++b)  // rounded to nearest (the default MXCSR mode)
          _mm256_store_si256(reinterpret_cast<__m256i*>(row + b * kInt8BlockK),
                             _mm256_cvtps_epi32(y[b]));
      }
    }
  }
}

// The tiles of a block in passes of kInt8WinogradTileBlock, the last pass with what is left:
// Block = tile_block2<Dot, MR> or tile_block4<Dot, MR> through Form.
template <class Form>
void run_block(const int16_t* u, const int16_t* vblock, const float* sblock, int64_t C4,
               const WinogradTiles& tiles, int32_t* acc) {
  constexpr int kB = kInt8WinogradTileBlock;
  int64_t t = 0;
  for (; t + kB <= tiles.count; t += kB)
    Form::template run<kB>(u, vblock, sblock, C4, tiles, t, acc);
  switch (tiles.count - t) {
    case 5:
      return Form::template run<5>(u, vblock, sblock, C4, tiles, t, acc);
    case 4:
      return Form::template run<4>(u, vblock, sblock, C4, tiles, t, acc);
    case 3:
      return Form::template run<3>(u, vblock, sblock, C4, tiles, t, acc);
    case 2:
      return Form::template run<2>(u, vblock, sblock, C4, tiles, t, acc);
    case 1:
      return Form::template run<1>(u, vblock, sblock, C4, tiles, t, acc);
    default:
      return;
  }
}
template <class Dot>
struct Form2 {
  template <int MR>
  static void run(const int16_t* u, const int16_t* vblock, const float* sblock, int64_t C4,
                  const WinogradTiles& tiles, int64_t t0, int32_t* acc) {
    tile_block2<Dot, MR>(u, vblock, sblock, C4, tiles, t0, acc);
  }
};
template <class Dot>
struct Form4 {
  template <int MR>
  static void run(const int16_t* u, const int16_t* vblock, const float* sblock, int64_t C4,
                  const WinogradTiles& tiles, int64_t t0, int32_t* acc) {
    tile_block4<Dot, MR>(u, vblock, sblock, C4, tiles, t0, acc);
  }
};

}  // namespace duet::kernels::detail::int8_winograd
