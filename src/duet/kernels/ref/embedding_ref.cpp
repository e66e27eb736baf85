// Reference twins of embedding.h: a plain gather and a plain scatter-add in double.
#include <vector>

#include "duet/kernels/embedding.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {
namespace {
void check(int64_t count, const int32_t* indices, int64_t vocab) {
  for (int64_t i = 0; i < count; ++i)
    DUET_CHECK(indices[i] >= 0 && indices[i] < vocab, "embedding: index ", indices[i],
               " at position ", i, " is outside [0, ", vocab, ")");
}
}  // namespace

void embedding_forward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                       const float* weight, float* out) {
  check(count, indices, vocab);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] = weight[indices[i] * dim + d];
}

void embedding_backward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                        const float* grad_out, float* grad_weight) {
  check(count, indices, vocab);
  std::vector<double> acc(static_cast<size_t>(vocab * dim), 0.0);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t d = 0; d < dim; ++d)
      acc[static_cast<size_t>(indices[i] * dim + d)] += grad_out[i * dim + d];
  for (int64_t k = 0; k < vocab * dim; ++k)
    grad_weight[k] = static_cast<float>(acc[static_cast<size_t>(k)]);
}

}  // namespace duet::kernels::ref
