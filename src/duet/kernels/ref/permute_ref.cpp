// Reference twins of permute.h: decode each output index and read the matching input element.
#include "duet/kernels/layout.h"
#include "duet/kernels/permute.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {

void strided_copy(int rank, const int64_t* shape, const int64_t* strides, const float* x,
                  float* out) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "strided_copy: rank ", rank, " not in [0, 6]");
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= shape[d];
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      off += rest % shape[d] * strides[d];
      rest /= shape[d];
    }
    out[i] = x[off];
  }
}

void permute(int rank, const int64_t* in_shape, const int64_t* perm, const float* x, float* out) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "permute: rank ", rank, " not in [0, 6]");
  int64_t in_stride[kMaxRank], out_shape[kMaxRank];
  contiguous_strides(rank, in_shape, in_stride);
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) {
    DUET_CHECK(perm[d] >= 0 && perm[d] < rank, "permute: perm[", d, "] = ", perm[d],
               " out of range");
    out_shape[d] = in_shape[perm[d]];
    n *= out_shape[d];
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      off += rest % out_shape[d] * in_stride[perm[d]];
      rest /= out_shape[d];
    }
    out[i] = x[off];
  }
}

}  // namespace duet::kernels::ref
