// The micro-tile of the direct (implicit-GEMM) convolution in conv2d_direct_avx2.cpp, one per
// instruction set: rows x 16 outputs per weight panel (one or two panels a call), where row i
// of the A operand is read straight from a zero-padded image as base[i][off[k]] and B is a
// 16-wide packed weight panel. The driver
// (padding, packing, threading, the transposing store) is shared; only this loop differs.
// Kept free of other headers so that the AVX-512 file compiles nothing but its own code.
#pragma once

#include <cstdint>

namespace duet::kernels::detail {

// For each of n panels q (n fixed per function): c[rows x 16] at c + 16 q (row stride ldc) =
// (accumulate ? c : 0) + sum_k base[i][off[k]] * pb[q * panel_stride + 16 k + j]. pb is
// 64-byte aligned; every base[i] for i < rows must be valid (the driver repeats the last row
// for a short tile).
using DirectTileFn = void (*)(int64_t kc, const float* const* base, const int32_t* off,
                              const float* pb, int64_t panel_stride, float* c, int64_t ldc,
                              bool accumulate);

struct DirectTile {
  int64_t rows;
  int64_t panels;     // panels `wide` computes at once
  DirectTileFn wide;  // rows x (16 * panels)
  DirectTileFn one;   // rows x 16, for the panels left over
};

inline constexpr int64_t kDirectLanes = 16;  // outputs per packed weight panel

DirectTile direct_tile_avx2();    // 6 x 16: twelve ymm accumulators
DirectTile direct_tile_avx512();  // zmm accumulators, AVX-512 CPUs only

}  // namespace duet::kernels::detail
