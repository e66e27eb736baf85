// AVX-512 twins of the Winograd convolution's transforms (conv2d_winograd_avx2.cpp and
// conv2d_winograd_weight_avx2.cpp), one zmm per 16-channel block where the AVX2 code takes two
// 8-lane halves: the input transform of a tile row, the weight gradient's transform of a row of
// output-gradient tiles, and the output transform with its epilogue. The drivers stay shared and
// call these when isa_at_least(avx512). Declarations only: the code lives in
// conv2d_winograd_avx512.cpp, compiled for AVX-512 alone.
#pragma once

#include <cstdint>

#include "duet/kernels/gemm.h"

namespace duet::kernels::detail {

// transform_tile_row_of<F(m x m, 3x3)> (conv2d_winograd_variants.h) on all 16 lanes of one
// channel block; m is 2 or 4.
void winograd_input_row_avx512(int64_t m, const float* plane, int64_t H, int64_t W, int64_t h0,
                               int64_t w0, int64_t tiles, float* v, int64_t ld_tile, int64_t ld_xi);

// transform_gradient_tile_row_of<F(m x m, 3x3)> on all 16 lanes of one channel block; m is 2
// or 4.
void winograd_gradient_row_avx512(int64_t m, const float* plane, int64_t rows, int64_t Q,
                                  int64_t h0, int64_t tiles, float* y, int64_t ld_tile,
                                  int64_t ld_xi);

// The output transform and epilogue of one image's run of tile rows [r0, r1): tile t of the run
// (row-major, TQ a row) has its product for point xi, channel k at
// products[t * ld_tile + xi * Kp + k]; output pixel p (from p0 on), channel k goes to
// y[k / 16 * ld_block + (p - p0) * ld_pixel + k % 16], the residual (if any) laid out alike.
// Lanes at or past K are stored as zero.
struct WinogradTileStore {
  int64_t m;  // tile edge, 2 or 4
  const float* products;
  int64_t ld_tile, Kp, K;
  int64_t TQ, P, Q, r0, r1;
  float* y;
  const float* residual;
  int64_t ld_block, ld_pixel, p0;
  const Epilogue* epilogue;  // scale, shift, bias and activation (its residual is unused)
};
void winograd_store_tiles_avx512(const WinogradTileStore& store);

// The products of a layer with 16 input channels and one 16-wide output panel
// (conv2d_winograd_products_avx512.cpp), for every point xi < points (16 or 36) of `tiles`
// tiles: M[t][xi][k] = sum_c V[t][xi][c] U[xi][c][k], V and M tile-major with the Geometry's
// one-block tile stride (points * 16 + 16 floats), U packed as [xi][c][k].
void winograd_products_c16_avx512(int64_t points, int64_t tiles, const float* v, const float* u,
                                  float* m);
// The same products for an even number of output panels, 17-64, 81-96 or 113-128 input
// channels (2, 3, 4, 6 or 8 blocks of 16) and at least 12 tiles: false (nothing done) for other
// shapes. V and M have the Geometry's tile strides (points * blocks * 16 + 16 and
// points * panels * 16 + 16 floats).
struct WinogradProducts {
  int64_t points, C, panels, tiles;
  const float* v;  // [tile][xi][blocks * 16]
  const float* u;  // [xi][panel][c][16]
  float* m;        // [tile][xi][panels * 16]
};
bool winograd_products_wide_avx512(const WinogradProducts& w);
// The weight gradient's sums of one point with 16 input channels and one 16-wide output panel:
// sums[c][k] += sum over tiles t of v[off[t] + c] y[t][k].
void winograd_weight_products_c16_avx512(int64_t tiles, const float* v, const int32_t* off,
                                         const float* y, float* sums);

}  // namespace duet::kernels::detail
