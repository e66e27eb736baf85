// Elementwise kernels: broadcasting binary add/sub/mul/div over up to six dims, and the unary
// helpers autograd and optimisers lean on (axpby, fill). Operands are described by the output
// shape plus per-operand element strides (0 on broadcast dims), so one kernel covers same-shape,
// scalar, row, channel and two-sided broadcasts as well as transposed or sliced views.
#pragma once

#include <cstdint>

#include "duet/kernels/layout.h"

namespace duet::kernels {

enum class BinaryOp : uint8_t { add, sub, mul, div };

// out[i] = a[i] op b[i] for every index i of the contiguous output of shape out_shape[rank]
// (rank 0..6); a and b are read at sum(i_d * stride_d) with their own strides (any values,
// 0 where broadcast; see broadcast_strides in layout.h). out may alias an operand only when that
// operand is contiguous with the output's own layout. Overwrites out.
void binary(BinaryOp op, int rank, const int64_t* out_shape, const float* a,
            const int64_t* a_strides, const float* b, const int64_t* b_strides, float* out);

// y = alpha * x + beta * y over n contiguous elements; when beta == 0, y is only written (so it
// may hold garbage or NaN), which makes axpby(n, a, x, 0, y) a scaled copy.
void axpby(int64_t n, float alpha, const float* x, float beta, float* y);

// y[0..n) = value.
void fill(int64_t n, float value, float* y);

// "add", "sub", "mul", "div" (op names in errors and test labels).
const char* binary_op_name(BinaryOp op);

namespace ref {
void binary(BinaryOp op, int rank, const int64_t* out_shape, const float* a,
            const int64_t* a_strides, const float* b, const int64_t* b_strides, float* out);
void axpby(int64_t n, float alpha, const float* x, float beta, float* y);
void fill(int64_t n, float value, float* y);
}  // namespace ref

}  // namespace duet::kernels
