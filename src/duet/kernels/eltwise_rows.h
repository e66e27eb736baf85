// Internal: the contiguous row loops behind eltwise.h, one portable set (eltwise.cpp) and one
// AVX2 set (eltwise_avx2.cpp). A row reads each operand with stride 0 (broadcast scalar), 1
// (contiguous) or anything else (gathered), and writes n contiguous outputs.
#pragma once

#include <cstdint>

#include "duet/kernels/eltwise.h"

namespace duet::kernels::detail {

void binary_row_generic(BinaryOp op, int64_t n, const float* a, int64_t sa, const float* b,
                        int64_t sb, float* out);
void binary_row_avx2(BinaryOp op, int64_t n, const float* a, int64_t sa, const float* b, int64_t sb,
                     float* out);
void axpby_avx2(int64_t n, float alpha, const float* x, float beta, float* y);

}  // namespace duet::kernels::detail
