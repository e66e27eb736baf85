// AVX-512 products of Winograd layers of the common shapes, where the direct convolution's
// micro-tile (conv2d_direct_tile.h, 8 rows of tiles reached through a pointer array and an
// offset per channel) leaves the FMA pipes waiting.
// - 16 channels in, one 16-wide output panel (ResNet-20's first stage, 16 -> 16 at 28 x 28): the
//   micro-tile feeds each broadcast input to a single FMA, and its eight accumulators ran at
//   about 46 % of the FMA peak in the training profile. Forward and input gradient keep the 16
//   transformed weight vectors of a point in registers and accumulate 14 tiles at once, each
//   FMA taking its input straight from memory as an embedded broadcast at a constant offset.
//   The weight gradient accumulates all 16 channel rows of its sums together, the 16 input
//   channels of a tile sitting at consecutive floats.
// - 17 to 64, 81 to 96 or 113 to 128 channels in (the ResNets' and UNets' widths, the UNets'
//   concatenations), an even number of output panels and at least 12 tiles (forward and input
//   gradient): 12 tiles x two panels, 24 accumulators, the inputs at compile-time strides.
//   bench_conv_passes --pass fwd, one thread, batch 64, best of 6 alternating runs against the
//   micro-tiles: 32 -> 32 at 14 x 14 0.81 against 0.89 ms, 96 -> 32 at 28 x 28 8.9 against 9.3;
//   64 -> 32 at 28 x 28 and 128 -> 128 at 7 x 7 equal. 192 input channels measured no better
//   and stay with the micro-tiles.
// The micro-tile path (run_tiles) stays the twin and takes every other shape; the op harness
// compares both with the reference through the convolution cases.
// Called only when isa_at_least(avx512).
#include <immintrin.h>

#include <algorithm>

#include "duet/kernels/conv2d_winograd_avx512.h"

namespace duet::kernels::detail {
namespace {

constexpr int kLanes = 16;
constexpr int kRows = 14;  // tiles a call: 14 accumulators + 16 weight vectors of 32 registers

// m[i][0..16) = sum_c v[i][c] u[c] for R tiles, tile i at v + i * Ld, its products at m + i * Ld
// (V and M have the same tile stride with one block each).
template <int Ld, int R>
void tiles_c16(const float* v, const __m512 (&u)[kLanes], float* m) {
  __m512 acc[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int c = 0; c < kLanes; ++c)
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(v[i * Ld + c]), u[c], acc[i]);
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) _mm512_storeu_ps(m + i * Ld, acc[i]);
}

template <int Ld, int R = kRows>
void tail_c16(int64_t left, const float* v, const __m512 (&u)[kLanes], float* m) {
  if constexpr (R > 0) {
    if (left == R) return tiles_c16<Ld, R>(v, u, m);
    tail_c16<Ld, R - 1>(left, v, u, m);
  }
}

template <int Points>
void products_c16(int64_t tiles, const float* v, const float* u, float* m) {
  constexpr int Ld = Points * kLanes + kLanes;  // Geometry's v_tile() and m_tile() at one block
  for (int64_t xi = 0; xi < Points; ++xi) {
    __m512 w[kLanes];
    for (int c = 0; c < kLanes; ++c) w[c] = _mm512_loadu_ps(u + (xi * kLanes + c) * kLanes);
    const float* vx = v + xi * kLanes;
    float* mx = m + xi * kLanes;
    int64_t t = 0;
    for (; t + kRows <= tiles; t += kRows) tiles_c16<Ld, kRows>(vx + t * Ld, w, mx + t * Ld);
    tail_c16<Ld>(tiles - t, vx + t * Ld, w, mx + t * Ld);
  }
}

// Two weight panels (32 outputs) of kWideRows tiles over C input channels: 24 accumulators, one
// broadcast for two FMAs, the inputs at constant offsets (the V tile stride Ld is a compile-time
// constant) from one pointer, where the micro-tile of run_tiles has 8 rows, 16 accumulators, and
// loads a row pointer array and an offset per channel. M's tile stride ldm only matters to the
// stores.
constexpr int kWideRows = 12;

template <int Ld, int R>
void tiles_wide(int64_t C, const float* v, const float* u, const float* u1, float* m, int64_t ldm) {
  __m512 acc[R][2];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    const __m512 w0 = _mm512_loadu_ps(u + c * kLanes), w1 = _mm512_loadu_ps(u1 + c * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(v[i * Ld + c]);
      acc[i][0] = _mm512_fmadd_ps(a, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, w1, acc[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    _mm512_storeu_ps(m + i * ldm, acc[i][0]);
    _mm512_storeu_ps(m + i * ldm + kLanes, acc[i][1]);
  }
}

// All the tiles, 12 at a time, the rest in one run of 4, 8 or 12 that ends at the last tile and
// may repeat up to 3 tiles of the run before it (the same sums again, so the same bits).
template <int Points, int Cb>
void products_wide(const WinogradProducts& w) {
  constexpr int Ld = Points * Cb * kLanes + kLanes;  // Geometry's v_tile()
  const int64_t C = w.C, panels = w.panels;
  const int64_t ldm = Points * panels * kLanes + kLanes;  // Geometry's m_tile()
  for (int64_t xi = 0; xi < Points; ++xi)
    for (int64_t p = 0; p < panels; p += 2) {
      const float* u = w.u + (xi * panels + p) * C * kLanes;
      auto run = [&]<int R>(int64_t t) {
        tiles_wide<Ld, R>(C, w.v + t * Ld + xi * Cb * kLanes, u, u + C * kLanes,
                          w.m + t * ldm + (xi * panels + p) * kLanes, ldm);
      };
      int64_t t = 0;
      for (; t + kWideRows <= w.tiles; t += kWideRows) run.template operator()<kWideRows>(t);
      const int64_t rest = w.tiles - t;
      if (rest > 8)
        run.template operator()<12>(w.tiles - 12);
      else if (rest > 4)
        run.template operator()<8>(w.tiles - 8);
      else if (rest > 0)
        run.template operator()<4>(w.tiles - 4);
    }
}

template <int Points>
bool products_wide_of(const WinogradProducts& w) {
  switch ((w.C + kLanes - 1) / kLanes) {
    case 2:
      return products_wide<Points, 2>(w), true;
    case 3:
      return products_wide<Points, 3>(w), true;
    case 4:
      return products_wide<Points, 4>(w), true;
    case 6:
      return products_wide<Points, 6>(w), true;
    case 8:
      return products_wide<Points, 8>(w), true;
    default:
      return false;
  }
}

}  // namespace

bool winograd_products_wide_avx512(const WinogradProducts& w) {
  if (w.panels % 2 != 0 || w.tiles < kWideRows || (w.points != 16 && w.points != 36)) return false;
  return w.points == 36 ? products_wide_of<36>(w) : products_wide_of<16>(w);
}

void winograd_products_c16_avx512(int64_t points, int64_t tiles, const float* v, const float* u,
                                  float* m) {
  if (points == 36)
    products_c16<36>(tiles, v, u, m);
  else
    products_c16<16>(tiles, v, u, m);
}

void winograd_weight_products_c16_avx512(int64_t tiles, const float* v, const int32_t* off,
                                         const float* y, float* sums) {
  __m512 acc[kLanes];
#pragma GCC unroll 16
  for (int c = 0; c < kLanes; ++c) acc[c] = _mm512_loadu_ps(sums + c * kLanes);
  for (int64_t t = 0; t < tiles; ++t) {
    const float* a = v + off[t];
    const __m512 g = _mm512_loadu_ps(y + t * kLanes);
#pragma GCC unroll 16
    for (int c = 0; c < kLanes; ++c) acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(a[c]), g, acc[c]);
  }
#pragma GCC unroll 16
  for (int c = 0; c < kLanes; ++c) _mm512_storeu_ps(sums + c * kLanes, acc[c]);
}

}  // namespace duet::kernels::detail
