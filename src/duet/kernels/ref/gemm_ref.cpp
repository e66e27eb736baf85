#include "duet/kernels/gemm.h"

namespace duet::kernels::ref {

void sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const Epilogue& e) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = trans_a == Trans::no ? a[i * lda + p] : a[p * lda + i];
        const double bv = trans_b == Trans::no ? b[p * ldb + j] : b[j * ldb + p];
        sum += av * bv;
      }
      double y = double(alpha) * sum;
      if (beta != 0.0f) y += double(beta) * c[i * ldc + j];  // beta 0: C is never read
      const int64_t ch = e.axis == ChannelAxis::row ? i : j;
      if (e.scale) y *= e.scale[ch];
      if (e.shift) y += e.shift[ch];
      if (e.bias) y += e.bias[ch];
      if (e.residual) y += e.residual[i * e.ld_residual + j];
      c[i * ldc + j] = apply_activation(e.act, static_cast<float>(y));
    }
  }
}

}  // namespace duet::kernels::ref
