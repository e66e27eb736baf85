// AVX-512 products of Winograd layers with one 16-channel block in and out (ResNet-20's first
// stage: 16 -> 16 at 28 x 28), where the direct convolution's micro-tile (conv2d_direct_tile.h)
// has one weight panel, so each broadcast input feeds a single FMA and its eight accumulators
// leave the FMA pipes waiting on latency: 46 % of the FMA peak in the ResNet-20 training profile.
// - Forward and input gradient: the 16 transformed weight vectors of a point stay in registers
//   and 14 tiles are accumulated at once, each FMA taking its input straight from memory as an
//   embedded broadcast at a constant offset from one pointer.
// - Weight gradient: the 16 input channels of a tile sit at consecutive floats, so all 16 rows
//   of the sums are accumulated together from one pointer, one output-gradient vector a tile.
// The generic micro-tile path (run_tiles) stays the twin; the tests run both through the
// blocked convolution cases. Called only when isa_at_least(avx512).
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

}  // namespace

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
