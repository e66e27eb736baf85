// Reference twins of eltwise.h: one multi-index loop, no fast paths.
#include "duet/kernels/eltwise.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {

void binary(BinaryOp op, int rank, const int64_t* out_shape, const float* a,
            const int64_t* a_strides, const float* b, const int64_t* b_strides, float* out) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "binary: rank ", rank, " not in [0, 6]");
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= out_shape[d];
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, oa = 0, ob = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t k = rest % out_shape[d];
      rest /= out_shape[d];
      oa += k * a_strides[d];
      ob += k * b_strides[d];
    }
    const float x = a[oa], y = b[ob];
    switch (op) {
      case BinaryOp::add:
        out[i] = x + y;
        break;
      case BinaryOp::sub:
        out[i] = x - y;
        break;
      case BinaryOp::mul:
        out[i] = x * y;
        break;
      case BinaryOp::div:
        out[i] = x / y;
        break;
    }
  }
}

void axpby(int64_t n, float alpha, const float* x, float beta, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + (beta == 0.0f ? 0.0f : beta * y[i]);
}

void fill(int64_t n, float value, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

}  // namespace duet::kernels::ref
