#include "duet/kernels/attention.h"

#include <cmath>

#include "duet/kernels/gemm.h"
#include "duet/kernels/softmax.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {

float AttentionShape::effective_scale() const {
  return scale != 0 ? scale : 1.0f / std::sqrt(static_cast<float>(head_dim));
}

namespace {

void check(const AttentionShape& s, const char* what) {
  DUET_CHECK(s.batch >= 0 && s.heads >= 0 && s.q_len >= 0 && s.kv_len >= 0 && s.head_dim > 0, what,
             ": bad shape (batch ", s.batch, ", heads ", s.heads, ", q_len ", s.q_len, ", kv_len ",
             s.kv_len, ", head_dim ", s.head_dim, "); sizes must be >= 0, head_dim > 0");
  DUET_CHECK(s.kv_len > 0 || s.q_len == 0, what, ": kv_len is 0, so softmax has no keys");
}

using Scratch = memory::FloatScratch;

}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* out, float* probs) {
  check(s, "attention_forward");
  const int64_t L = s.q_len, S = s.kv_len, D = s.head_dim;
  if (L == 0) return;
  const float scale = s.effective_scale();
  parallel_for(s.batch * s.heads, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      const float* qh = q + h * L * D;
      const float* kh = k + h * S * D;
      const float* vh = v + h * S * D;
      float* ph = probs + h * L * S;
      sgemm(Trans::no, Trans::yes, L, S, D, scale, qh, D, kh, D, 0.0f, ph, S);
      softmax_forward(L, S, ph, ph);
      sgemm(Trans::no, Trans::no, L, D, S, 1.0f, ph, S, vh, D, 0.0f, out + h * L * D, D);
    }
  });
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv) {
  check(s, "attention_backward");
  const int64_t L = s.q_len, S = s.kv_len, D = s.head_dim;
  const int64_t heads = s.batch * s.heads;
  if (L == 0) {  // no queries: nothing flows to keys or values
    for (int64_t i = 0; i < heads * S * D; ++i) dk[i] = dv[i] = 0.0f;
    return;
  }
  const float scale = s.effective_scale();
  parallel_for(heads, 1, [&](int64_t h0, int64_t h1) {
    Scratch ds(L * S);  // one head's score gradient: a tile, not the whole batch
    for (int64_t h = h0; h < h1; ++h) {
      const float* qh = q + h * L * D;
      const float* kh = k + h * S * D;
      const float* vh = v + h * S * D;
      const float* ph = probs + h * L * S;
      const float* doh = dout + h * L * D;
      // dv = P^T dout;  dP = dout v^T;  dS = softmax'(dP);  dq = scale dS k;  dk = scale dS^T q
      sgemm(Trans::yes, Trans::no, S, D, L, 1.0f, ph, S, doh, D, 0.0f, dv + h * S * D, D);
      sgemm(Trans::no, Trans::yes, L, S, D, 1.0f, doh, D, vh, D, 0.0f, ds.get(), S);
      softmax_backward(L, S, ph, ds.get(), ds.get());
      sgemm(Trans::no, Trans::no, L, D, S, scale, ds.get(), S, kh, D, 0.0f, dq + h * L * D, D);
      sgemm(Trans::yes, Trans::no, S, D, L, scale, ds.get(), S, qh, D, 0.0f, dk + h * S * D, D);
    }
  });
}

}  // namespace duet::kernels
