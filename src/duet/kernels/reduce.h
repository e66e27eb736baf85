// Reductions over any set of axes of a contiguous tensor (rank <= 6): sum, mean, max with
// argmax, and reduce_to_shape, which sums a broadcast gradient back to an operand's shape (the
// backward of every broadcasting op). Sums accumulate in blocks of float then double, in a fixed
// order for a given thread count, so long axes stay accurate and results are reproducible.
#pragma once

#include <cstdint>

#include "duet/kernels/layout.h"

namespace duet::kernels {

// x is contiguous with shape[rank]; bit d of `axes` selects dim d for reduction (bits at or
// above rank must be clear). out is contiguous over the kept dims in order, i.e. the keepdim
// shape with reduced dims set to 1. Reducing over an empty axis gives 0 (sum), NaN (mean) and
// throws duet::Error (max). Overwrites out.
void reduce_sum(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out);
void reduce_mean(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out);
// argmax (may be null) receives, per output, the row-major linear index of the winner within the
// reduced dims (for one axis: the index along it). Ties go to the first occurrence; a NaN beats
// every number and the first NaN wins, so NaN propagates as in PyTorch.
void reduce_max(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out,
                int64_t* argmax);

// Sums grad (shape grad_shape[grad_rank], contiguous) over the dims where `shape` (rank <= the
// grad rank, right-aligned as in broadcasting) is 1 or missing, writing a contiguous tensor of
// `shape` into out. Throws duet::Error when shape does not broadcast to grad_shape.
void reduce_to_shape(int grad_rank, const int64_t* grad_shape, const float* grad, int rank,
                     const int64_t* shape, float* out);

namespace ref {
void reduce_sum(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out);
void reduce_mean(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out);
void reduce_max(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out,
                int64_t* argmax);
void reduce_to_shape(int grad_rank, const int64_t* grad_shape, const float* grad, int rank,
                     const int64_t* shape, float* out);
}  // namespace ref

}  // namespace duet::kernels
