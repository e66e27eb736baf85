// Reference twins of attention.h: per head, plain loops in double straight from the formulas.
#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/kernels/attention.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* out, float* probs) {
  DUET_CHECK(s.head_dim > 0 && (s.kv_len > 0 || s.q_len == 0), "attention_forward: bad shape");
  const int64_t L = s.q_len, S = s.kv_len, D = s.head_dim;
  const double scale = s.effective_scale();
  std::vector<double> p(static_cast<size_t>(S));
  for (int64_t h = 0; h < s.batch * s.heads; ++h)
    for (int64_t i = 0; i < L; ++i) {
      const float* qi = q + (h * L + i) * D;
      double m = -INFINITY, z = 0;
      for (int64_t j = 0; j < S; ++j) {
        const float* kj = k + (h * S + j) * D;
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += double(qi[d]) * kj[d];
        p[size_t(j)] = scale * dot;
        m = std::max(m, p[size_t(j)]);
      }
      for (int64_t j = 0; j < S; ++j) z += (p[size_t(j)] = std::exp(p[size_t(j)] - m));
      for (int64_t j = 0; j < S; ++j) {
        p[size_t(j)] /= z;
        probs[(h * L + i) * S + j] = static_cast<float>(p[size_t(j)]);
      }
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < S; ++j) acc += p[size_t(j)] * v[(h * S + j) * D + d];
        out[(h * L + i) * D + d] = static_cast<float>(acc);
      }
    }
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv) {
  DUET_CHECK(s.head_dim > 0 && (s.kv_len > 0 || s.q_len == 0), "attention_backward: bad shape");
  const int64_t L = s.q_len, S = s.kv_len, D = s.head_dim;
  const double scale = s.effective_scale();
  std::vector<double> ds(static_cast<size_t>(L * S)), gq(size_t(L * D)), gk(size_t(S * D)),
      gv(size_t(S * D));
  for (int64_t h = 0; h < s.batch * s.heads; ++h) {
    const float* P = probs + h * L * S;
    const float* dO = dout + h * L * D;
    std::fill(gq.begin(), gq.end(), 0.0);
    std::fill(gk.begin(), gk.end(), 0.0);
    std::fill(gv.begin(), gv.end(), 0.0);
    for (int64_t i = 0; i < L; ++i) {
      // dP_ij = dO_i . v_j; dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij')
      double row = 0;
      for (int64_t j = 0; j < S; ++j) {
        double dp = 0;
        for (int64_t d = 0; d < D; ++d) dp += double(dO[i * D + d]) * v[(h * S + j) * D + d];
        ds[size_t(i * S + j)] = dp;
        row += P[i * S + j] * dp;
      }
      for (int64_t j = 0; j < S; ++j)
        ds[size_t(i * S + j)] = P[i * S + j] * (ds[size_t(i * S + j)] - row) * scale;
    }
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < S; ++j)
        for (int64_t d = 0; d < D; ++d) {
          const double g = ds[size_t(i * S + j)];
          gq[size_t(i * D + d)] += g * k[(h * S + j) * D + d];
          gk[size_t(j * D + d)] += g * q[(h * L + i) * D + d];
          gv[size_t(j * D + d)] += double(P[i * S + j]) * dO[i * D + d];
        }
    for (int64_t e = 0; e < L * D; ++e) dq[h * L * D + e] = static_cast<float>(gq[size_t(e)]);
    for (int64_t e = 0; e < S * D; ++e) {
      dk[h * S * D + e] = static_cast<float>(gk[size_t(e)]);
      dv[h * S * D + e] = static_cast<float>(gv[size_t(e)]);
    }
  }
}

}  // namespace duet::kernels::ref
