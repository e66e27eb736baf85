// AVX-512 twins of the two layout moves around the channel-major convolutions (channel-major
// training, the UNet's fused sampling blocks): winograd::block_rows (channel-major rows into
// 16-channel blocks, with the prologue) and direct::store_transposed (pixel-major products back
// into channel-major outputs, with the epilogue). Same contracts as those two; the AVX2 versions
// call these when isa_at_least(avx512). Declarations only: the code lives in
// conv2d_layout_avx512.cpp, compiled for AVX-512 alone.
#pragma once

#include <cstdint>

#include "duet/kernels/conv2d_fused.h"
#include "duet/kernels/gemm.h"

namespace duet::kernels::detail {

void block_rows_avx512(const float* x, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                       float* dst, const Prologue* prologue);

void store_transposed_avx512(const float* ct, int64_t ldct, int64_t len, int64_t nk, float* y,
                             int64_t ldy, const Epilogue& e, int64_t ch0, const float* res);

}  // namespace duet::kernels::detail
