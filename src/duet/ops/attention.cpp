#include "duet/ops/attention.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/attention.h"
#include "duet/ops/op_util.h"

namespace duet::ops {

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    float scale) {
  for (const Tensor* t : {&q_in, &k_in, &v_in}) detail::check_f32(*t, "attention", "q/k/v");
  detail::check_shapes(q_in.rank() == 4 && k_in.rank() == 4 && k_in.shape() == v_in.shape(),
                       "attention", "expected q [B, H, L, D] and k, v [B, H, S, D]", k_in, v_in);
  detail::check_shapes(
      q_in.dim(0) == k_in.dim(0) && q_in.dim(1) == k_in.dim(1) && q_in.dim(3) == k_in.dim(3),
      "attention", "q and k must agree on batch, heads and head_dim", q_in, k_in);
  kernels::AttentionShape s;
  s.batch = q_in.dim(0);
  s.heads = q_in.dim(1);
  s.q_len = q_in.dim(2);
  s.kv_len = k_in.dim(2);
  s.head_dim = q_in.dim(3);
  s.scale = scale > 0 ? scale : 0.0f;
  const Tensor q = contiguous(q_in), k = contiguous(k_in), v = contiguous(v_in);
  Tensor out = Tensor::empty(q.shape());
  Tensor probs = Tensor::empty({s.batch, s.heads, s.q_len, s.kv_len});
  kernels::attention_forward(s, q.data<float>(), k.data<float>(), v.data<float>(),
                             out.data<float>(), probs.data<float>());
  autograd::record(out, "attention", {q_in, k_in, v_in},
                   [s, q = autograd::detached(q), k = autograd::detached(k),
                    v = autograd::detached(v), probs](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()),
                            dv = Tensor::empty(v.shape());
                     kernels::attention_backward(
                         s, q.data<float>(), k.data<float>(), v.data<float>(), probs.data<float>(),
                         g.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>());
                     return std::vector<Tensor>{dq, dk, dv};
                   });
  return out;
}

}  // namespace duet::ops
