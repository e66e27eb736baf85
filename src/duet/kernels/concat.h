// Concatenation along one axis of N contiguous inputs, and its backward (splitting the output
// gradient back into per-input slices). Every tensor is viewed as [outer, axis, inner]: outer is
// the product of the dims before the axis, inner the product of the dims after it.
#pragma once

#include <cstdint>

namespace duet::kernels {

// out[o, off_i + a, j] = inputs[i][o, a, j] with off_i = sum of axis_sizes before i; out has
// axis length sum(axis_sizes). Overwrites out.
void concat(int64_t num_inputs, const float* const* inputs, const int64_t* axis_sizes,
            int64_t outer, int64_t inner, float* out);
// The reverse copy: grads[i][o, a, j] = grad_out[o, off_i + a, j]. A null grads[i] is skipped
// (that input needs no gradient). Overwrites every non-null grads[i].
void concat_backward(int64_t num_inputs, const float* grad_out, const int64_t* axis_sizes,
                     int64_t outer, int64_t inner, float* const* grads);

namespace ref {
void concat(int64_t num_inputs, const float* const* inputs, const int64_t* axis_sizes,
            int64_t outer, int64_t inner, float* out);
void concat_backward(int64_t num_inputs, const float* grad_out, const int64_t* axis_sizes,
                     int64_t outer, int64_t inner, float* const* grads);
}  // namespace ref

}  // namespace duet::kernels
