// The AdamW element update's coefficients, shared by the portable loop (adamw.cpp) and the AVX2
// one (adamw_avx2.cpp). The AVX2 path fuses three multiply-adds, so the two differ in the last
// bit; each is deterministic and independent of the thread split.
#pragma once

#include <cstdint>

namespace duet::train::detail {

struct AdamWCoefs {
  float decay;       // 1 - lr * weight_decay
  float neg_step;    // -lr / (1 - beta1^t)
  float bias2_sqrt;  // sqrt(1 - beta2^t)
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
};

// Updates p, m, v over [0, n). Call only when kernels::isa_at_least(Isa::avx2).
void adamw_update_avx2(float* p, const float* g, float* m, float* v, int64_t n,
                       const AdamWCoefs& c);

}  // namespace duet::train::detail
