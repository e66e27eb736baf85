#include "duet/kernels/embedding.h"

#include <algorithm>
#include <cstring>

#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

void check(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim, const char* what) {
  DUET_CHECK(count >= 0 && vocab >= 0 && dim >= 0, what, ": negative size (count ", count,
             ", vocab ", vocab, ", dim ", dim, ")");
  for (int64_t i = 0; i < count; ++i)
    DUET_CHECK(indices[i] >= 0 && indices[i] < vocab, what, ": index ", indices[i], " at position ",
               i, " is outside [0, ", vocab, ")");
}

}  // namespace

void embedding_forward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                       const float* weight, float* out) {
  check(count, indices, vocab, dim, "embedding_forward");
  if (dim == 0) return;
  parallel_for(count, std::max<int64_t>(1, 32768 / dim), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(out + i * dim, weight + int64_t{indices[i]} * dim,
                  static_cast<size_t>(dim) * sizeof(float));
  });
}

void embedding_backward(int64_t count, const int32_t* indices, int64_t vocab, int64_t dim,
                        const float* grad_out, float* grad_weight) {
  check(count, indices, vocab, dim, "embedding_backward");
  if (dim == 0 || vocab == 0) return;
  // Each thread owns a contiguous range of vocabulary rows and scans every index in order, so
  // a row's sum never depends on how many threads there are and no two threads write one row.
  const int64_t work = std::max<int64_t>(1, (count * dim) / std::max<int64_t>(1, vocab));
  parallel_for(vocab, std::max<int64_t>(1, 32768 / (dim + work)), [&](int64_t v0, int64_t v1) {
    std::fill(grad_weight + v0 * dim, grad_weight + v1 * dim, 0.0f);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t v = indices[i];
      if (v < v0 || v >= v1) continue;
      float* dst = grad_weight + v * dim;
      const float* src = grad_out + i * dim;
      for (int64_t d = 0; d < dim; ++d) dst[d] += src[d];
    }
  });
}

}  // namespace duet::kernels
