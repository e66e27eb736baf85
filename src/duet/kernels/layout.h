// Shape bookkeeping shared by the data-movement kernels (eltwise, reduce, permute): NumPy
// broadcasting of two shapes, the strides that read an operand along a broadcast output, and
// contiguous strides. Kernels describe operands as shape + element strides so one loop nest
// covers broadcasts, transposed views and plain contiguous buffers alike.
#pragma once

#include <cstdint>

namespace duet::kernels {

// Tensors have at most six dimensions; every kernel here checks its rank against this.
inline constexpr int kMaxRank = 6;

// NumPy broadcast of two shapes (aligned at the last dim; a dim of 1 stretches). Writes the
// result to out_shape and returns its rank; throws duet::Error when the shapes are incompatible.
int broadcast_shapes(int rank_a, const int64_t* shape_a, int rank_b, const int64_t* shape_b,
                     int64_t* out_shape);

// Element strides that read a contiguous operand of `shape` along each dim of the broadcast
// output `out_shape`: the operand's own stride, or 0 where it is broadcast (missing or size 1).
// Throws duet::Error when `shape` does not broadcast to `out_shape`.
void broadcast_strides(int rank, const int64_t* shape, int out_rank, const int64_t* out_shape,
                       int64_t* strides);

// The axes (bitmask over the gradient's dims) that sum a gradient of grad_shape back to an
// operand of `shape` broadcast into it: missing leading dims and size-1 dims that were stretched.
// Throws duet::Error when shape does not broadcast to grad_shape.
uint32_t broadcast_reduce_axes(int grad_rank, const int64_t* grad_shape, int rank,
                               const int64_t* shape);

// Row-major strides of a contiguous tensor; returns the element count.
int64_t contiguous_strides(int rank, const int64_t* shape, int64_t* strides);

}  // namespace duet::kernels
