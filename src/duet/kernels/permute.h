// Data movement between layouts: strided_copy turns any strided view (transposed, sliced,
// broadcast, flipped) into a contiguous buffer, and permute reorders the dims of a contiguous
// tensor. Transposes (a stride-1 input dim that is not the last output dim) run as cache-blocked
// tile transposes instead of strided gathers.
#pragma once

#include <cstdint>

namespace duet::kernels {

// out[i] = x[sum_d i_d * strides[d]] for every index i of the contiguous output of shape[rank]
// (rank 0..6). Strides are in elements and may be 0 or negative. Overwrites out.
void strided_copy(int rank, const int64_t* shape, const int64_t* strides, const float* x,
                  float* out);

// x is contiguous with in_shape[rank]; out (contiguous) has shape in_shape[perm[d]] and
// out[i] = x[j] with j_{perm[d]} = i_d. Throws duet::Error when perm is not a permutation.
void permute(int rank, const int64_t* in_shape, const int64_t* perm, const float* x, float* out);

namespace ref {
void strided_copy(int rank, const int64_t* shape, const int64_t* strides, const float* x,
                  float* out);
void permute(int rank, const int64_t* in_shape, const int64_t* perm, const float* x, float* out);
}  // namespace ref

}  // namespace duet::kernels
