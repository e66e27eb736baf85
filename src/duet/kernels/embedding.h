// Embedding lookup: gather rows of a [vocab, dim] table by int32 indices, and the backward
// scatter-add into the table's gradient. Indices are validated before anything is written, so a
// bad index throws duet::Error and leaves the outputs untouched.
#pragma once

#include <cstdint>

namespace duet::kernels {

// out[i, :] = weight[indices[i], :] for i < count. Throws duet::Error when an index is outside
// [0, vocab). Overwrites out.
void embedding_forward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                       const float* weight, float* out);
// grad_weight[v, :] = sum of grad_out[i, :] over i with indices[i] == v (rows never indexed are
// zero). Each row is summed in index order whatever the thread count. Overwrites grad_weight.
void embedding_backward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                        const float* grad_out, float* grad_weight);

namespace ref {
void embedding_forward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                       const float* weight, float* out);
void embedding_backward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                        const float* grad_out, float* grad_weight);
}  // namespace ref

}  // namespace duet::kernels
