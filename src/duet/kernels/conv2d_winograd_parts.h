// The pieces of the channel-major Winograd convolution (conv2d_winograd_avx2.cpp) that the
// weight gradient (conv2d_winograd_weight_avx2.cpp) shares: the tile grid, the
// input transform of a row of tiles and the blocking of channel-major rows. Both work on
// 16-channel blocks (kDirectLanes). Call only when isa_at_least(avx2).
#pragma once

#include <cstdint>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_fused.h"

namespace duet::kernels::detail::winograd {

// The channels and the m x m output tiles of a shape: TP x TQ tiles cover the P x Q output; Cb
// 16-channel blocks hold the C input channels, `panels` 16-wide panels the K outputs (Kp lanes).
struct TileGrid {
  int64_t C, K, Cb, Kp, panels, H, W, P, Q, TP, TQ;
};
TileGrid tile_grid(const Conv2dShape& s, int64_t m);

// The transformed inputs V = B^T d B of F(m x m, 3x3) (m = 2 or 4) of the tiles of one tile
// row, all 16 lanes of one channel block (conv2d_winograd_variants.h's transform_tile_row_of, on
// zmm where the CPU has AVX-512): plane is the block's [H][W][16] image, the windows start at
// input row h0 and columns w0 + m tx, and tile tx's point xi goes to
// v[tx * ld_tile + xi * ld_xi]. Pixels outside the plane read as zero, and no address outside
// it is formed.
void transform_block_tile_row(int64_t m, const float* plane, int64_t H, int64_t W, int64_t h0,
                              int64_t w0, int64_t tiles, float* v, int64_t ld_tile, int64_t ld_xi);

// Rows [row0, row0 + rows) of channel-major image x (C planes of H x W) into channel blocks
// [ceil(C / 16)][rows][W][16], the lanes past C zero; with a prologue, channel c's values
// become act(v * scale[c] + shift[c]) on the way (the pointers already at this image).
void block_rows(const float* x, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                float* dst, const Prologue* prologue = nullptr);

}  // namespace duet::kernels::detail::winograd
