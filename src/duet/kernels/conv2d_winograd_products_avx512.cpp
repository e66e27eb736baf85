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
// - 32, 64 or 128 channels in and out (forward and input gradient): 12 tiles x two panels, 24
//   accumulators, at compile-time strides (8-12 % faster at 32 channels, equal at 64 and 128).
// The micro-tile path (run_tiles) stays the twin and takes every other shape and the rows left
// over; the op harness compares both with the reference through the convolution cases.
// Called only when isa_at_least(avx512).
#include <immintrin.h>

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

// Two weight panels (32 outputs) of kWideRows tiles at compile-time stride Ld (V and M alike)
// over C input channels: 24 accumulators, one broadcast for two FMAs, the inputs at constant
// offsets from one pointer (the micro-tile of run_tiles has 8 rows, 16 accumulators, and loads a
// row pointer array and an offset per channel).
constexpr int kWideRows = 12;

template <int Ld>
void tiles_wide(int64_t C, const float* v, const float* u, float* m) {
  __m512 acc[kWideRows][2];
#pragma GCC unroll 16
  for (int i = 0; i < kWideRows; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const float* u1 = u + C * kLanes;
  for (int64_t c = 0; c < C; ++c) {
    const __m512 w0 = _mm512_loadu_ps(u + c * kLanes), w1 = _mm512_loadu_ps(u1 + c * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < kWideRows; ++i) {
      const __m512 a = _mm512_set1_ps(v[i * Ld + c]);
      acc[i][0] = _mm512_fmadd_ps(a, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, w1, acc[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kWideRows; ++i) {
    _mm512_storeu_ps(m + i * Ld, acc[i][0]);
    _mm512_storeu_ps(m + i * Ld + kLanes, acc[i][1]);
  }
}

template <int Points, int Cb>
int64_t products_wide(int64_t tiles, int64_t panels, const float* v, const float* u, float* m) {
  constexpr int Ld = Points * Cb * kLanes + kLanes;
  constexpr int64_t C = Cb * kLanes;
  const int64_t whole = tiles / kWideRows * kWideRows;
  for (int64_t xi = 0; xi < Points; ++xi)
    for (int64_t p = 0; p < panels; p += 2)
      for (int64_t t = 0; t < whole; t += kWideRows)
        tiles_wide<Ld>(C, v + t * Ld + xi * C, u + (xi * panels + p) * C * kLanes,
                       m + t * Ld + xi * panels * kLanes + p * kLanes);
  return whole;
}

}  // namespace

int64_t winograd_products_wide_avx512(int64_t points, int64_t C, int64_t tiles, int64_t panels,
                                      const float* v, const float* u, float* m) {
  if (panels % 2 != 0 || C != panels * kLanes) return 0;
  const bool f4 = points == 36;
  switch (C / kLanes) {
    case 2:
      return f4 ? products_wide<36, 2>(tiles, panels, v, u, m)
                : products_wide<16, 2>(tiles, panels, v, u, m);
    case 4:
      return f4 ? products_wide<36, 4>(tiles, panels, v, u, m)
                : products_wide<16, 4>(tiles, panels, v, u, m);
    case 8:
      return f4 ? products_wide<36, 8>(tiles, panels, v, u, m)
                : products_wide<16, 8>(tiles, panels, v, u, m);
    default:
      return 0;
  }
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
