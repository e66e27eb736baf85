// attention compare cases: multi-head scaled dot-product attention forward (output and saved
// probabilities) and backward (dq, dk, dv) against the double-precision twin, with L != S,
// D in {8, 16, 32}, H in {1, 4}, lengths on SIMD tails, and one explicit scale.
#include <cstdio>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/attention.h"
#include "duet/tensor/error.h"

namespace {

using duet::kernels::AttentionShape;

void add_attention(int64_t b, int64_t h, int64_t l, int64_t s, int64_t d, float scale = 0) {
  AttentionShape sh;
  sh.batch = b;
  sh.heads = h;
  sh.q_len = l;
  sh.kv_len = s;
  sh.head_dim = d;
  sh.scale = scale;
  char buf[96];
  std::snprintf(buf, sizeof buf, "b%lldh%lld_l%llds%lld_d%lld%s", (long long)b, (long long)h,
                (long long)l, (long long)s, (long long)d, scale != 0 ? "_scaled" : "");
  const std::string tag = buf;
  const size_t nq = size_t(b * h * l * d), nk = size_t(b * h * s * d), np = size_t(b * h * l * s);
  duet::test::add_kernel_case({duet::str("attention/fwd/", tag), sh.flops(), 2e-6, 1e-4, [=] {
                                 // Inputs of a few units make the softmax peaky enough to be a real
                                 // test.
                                 auto q = duet::test::random_vector(nq, 90, -2.0f, 2.0f);
                                 auto k = duet::test::random_vector(nk, 91, -2.0f, 2.0f);
                                 auto v = duet::test::random_vector(nk, 92);
                                 return [=](bool fast, std::vector<float>& res) {
                                   std::vector<float> out(nq, -7.0f), probs(np, -7.0f);
                                   (fast ? duet::kernels::attention_forward
                                         : duet::kernels::ref::attention_forward)(
                                       sh, q.data(), k.data(), v.data(), out.data(), probs.data());
                                   res = out;
                                   res.insert(res.end(), probs.begin(), probs.end());
                                 };
                               }});
  duet::test::add_kernel_case({duet::str("attention/bwd/", tag), 2 * sh.flops(), 1e-5, 1e-4, [=] {
                                 auto q = duet::test::random_vector(nq, 93, -2.0f, 2.0f);
                                 auto k = duet::test::random_vector(nk, 94, -2.0f, 2.0f);
                                 auto v = duet::test::random_vector(nk, 95);
                                 auto dout = duet::test::random_vector(nq, 96);
                                 // Both sides start from the same saved probabilities (the
                                 // reference's).
                                 std::vector<float> out(nq), probs(np);
                                 duet::kernels::ref::attention_forward(
                                     sh, q.data(), k.data(), v.data(), out.data(), probs.data());
                                 return [=](bool fast, std::vector<float>& res) {
                                   std::vector<float> dq(nq, -7.0f), dk(nk, -7.0f), dv(nk, -7.0f);
                                   (fast ? duet::kernels::attention_backward
                                         : duet::kernels::ref::attention_backward)(
                                       sh, q.data(), k.data(), v.data(), probs.data(), dout.data(),
                                       dq.data(), dk.data(), dv.data());
                                   res = dq;
                                   res.insert(res.end(), dk.begin(), dk.end());
                                   res.insert(res.end(), dv.begin(), dv.end());
                                 };
                               }});
}

duet::test::Register reg([] {
  add_attention(1, 1, 1, 1, 8);
  add_attention(2, 4, 7, 13, 16);
  add_attention(1, 4, 13, 7, 32);
  add_attention(2, 1, 5, 128, 8);
  add_attention(1, 1, 127, 5, 32);
  add_attention(3, 4, 16, 16, 16);
  add_attention(1, 4, 24, 1, 8);
  add_attention(2, 2, 9, 11, 16, 0.3f);
  add_attention(2, 4, 128, 128, 32);
});

}  // namespace
