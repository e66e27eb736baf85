// Multi-head scaled dot-product attention over [batch, heads, len, head_dim] buffers:
// out = softmax(scale * q k^T) v per (batch, head). The forward keeps the softmax probabilities
// for the backward. Heads run in parallel; inside a head the products go through sgemm (which
// runs serially there) and the row softmax kernels.
#pragma once

#include <cstdint>

namespace duet::kernels {

struct AttentionShape {
  int64_t batch = 1, heads = 1;
  int64_t q_len = 1;   // L: queries per head
  int64_t kv_len = 1;  // S: keys (and values) per head; may differ from L
  int64_t head_dim = 1;
  float scale = 0;  // 0 means 1 / sqrt(head_dim)

  float effective_scale() const;
  // Multiply-adds x 2 of the forward (the backward costs about twice as much).
  double flops() const { return 4.0 * batch * heads * q_len * kv_len * head_dim; }
};

// q [B,H,L,D], k and v [B,H,S,D] -> out [B,H,L,D] and probs [B,H,L,S] (softmax of the scaled
// scores, kept for the backward). Overwrites out and probs.
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* out, float* probs);
// From the forward's probs and the output gradient dout [B,H,L,D]: dq [B,H,L,D], dk and dv
// [B,H,S,D]. Overwrites dq, dk and dv.
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv);

namespace ref {
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* out, float* probs);
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv);
}  // namespace ref

}  // namespace duet::kernels
