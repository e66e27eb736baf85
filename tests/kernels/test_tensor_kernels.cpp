// Known-fact tests for the tensor-shaped kernels (eltwise, reduce, concat, permute, embedding,
// attention): identities and hand-computable answers that hold on both the AVX2 and the generic
// path, plus the error contract (bad input throws duet::Error and writes nothing).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "duet/kernels/attention.h"
#include "duet/kernels/concat.h"
#include "duet/kernels/eltwise.h"
#include "duet/kernels/embedding.h"
#include "duet/kernels/isa.h"
#include "duet/kernels/permute.h"
#include "duet/kernels/reduce.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace k = duet::kernels;

namespace {

std::vector<float> iota_vec(size_t n, float start = 0.0f) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

// Runs fn once per ISA this CPU has, restoring the starting ISA afterwards.
template <class Fn>
void for_each_isa(Fn&& fn) {
  const k::Isa saved = k::active_isa();
  for (k::Isa isa : {k::Isa::generic, k::Isa::avx2, k::Isa::avx512}) {
    if (!k::cpu_has(isa)) continue;
    k::set_isa(isa);
    SCOPED_TRACE(std::string(k::isa_name(isa)));
    fn();
  }
  k::set_isa(saved);
}

}  // namespace

TEST(Permute, TwiceByTheInverseIsIdentity) {
  for_each_isa([] {
    const int64_t shape[6] = {2, 3, 5, 4, 7, 6};
    const int64_t perm[6] = {4, 0, 5, 2, 1, 3};
    int64_t inv[6], permuted[6];
    for (int d = 0; d < 6; ++d) {
      inv[perm[d]] = d;
      permuted[d] = shape[perm[d]];
    }
    const auto x = iota_vec(2 * 3 * 5 * 4 * 7 * 6);
    std::vector<float> y(x.size()), z(x.size());
    k::permute(6, shape, perm, x.data(), y.data());
    EXPECT_NE(x, y);
    k::permute(6, permuted, inv, y.data(), z.data());
    EXPECT_EQ(x, z);
  });
}

TEST(Permute, TransposeMovesEachElement) {
  for_each_isa([] {
    const int64_t shape[2] = {67, 129}, perm[2] = {1, 0};
    const auto x = iota_vec(67 * 129);
    std::vector<float> y(x.size());
    k::permute(2, shape, perm, x.data(), y.data());
    for (int64_t i = 0; i < 67; ++i)
      for (int64_t j = 0; j < 129; ++j) ASSERT_EQ(y[size_t(j * 67 + i)], x[size_t(i * 129 + j)]);
  });
}

TEST(Permute, RejectsANonPermutation) {
  const int64_t shape[3] = {2, 3, 4}, perm[3] = {0, 0, 2};
  std::vector<float> x(24), y(24);
  EXPECT_THROW(k::permute(3, shape, perm, x.data(), y.data()), duet::Error);
}

TEST(Reduce, ToShapeOfBroadcastOnesCountsTheFactor) {
  for_each_isa([] {
    const int64_t grad[4] = {2, 3, 4, 5}, shape[3] = {3, 1, 1};
    const std::vector<float> ones(120, 1.0f);
    std::vector<float> out(3, -1.0f);
    k::reduce_to_shape(4, grad, ones.data(), 3, shape, out.data());
    for (float v : out) EXPECT_EQ(v, 40.0f);  // 2 * 4 * 5 broadcast copies per element
    const int64_t scalar_shape[1] = {1};
    float s = 0;
    k::reduce_to_shape(4, grad, ones.data(), 1, scalar_shape, &s);
    EXPECT_EQ(s, 120.0f);
  });
}

TEST(Reduce, ToShapeRejectsAShapeThatDoesNotBroadcast) {
  const int64_t grad[2] = {4, 5}, shape[2] = {4, 3};
  std::vector<float> g(20), out(12);
  EXPECT_THROW(k::reduce_to_shape(2, grad, g.data(), 2, shape, out.data()), duet::Error);
}

TEST(Reduce, LongSumIsExactOnIntegersAndThreadCountStable) {
  for_each_isa([] {
    // 0 + 1 + ... + (n-1) with every partial sum exactly representable in double.
    const int64_t n = 3000001;
    const auto x = iota_vec(size_t(n));
    float s1 = 0, s2 = 0;
    const int saved = duet::num_threads();
    duet::set_num_threads(1);
    k::reduce_sum(1, &n, 1u, x.data(), &s1);
    duet::set_num_threads(2);
    k::reduce_sum(1, &n, 1u, x.data(), &s2);
    duet::set_num_threads(saved);
    EXPECT_EQ(double(s1), double(float(double(n) * double(n - 1) / 2)));
    EXPECT_EQ(s1, s2);
  });
}

TEST(Reduce, MaxTiesPickTheFirstAndNaNPropagates) {
  for_each_isa([] {
    std::vector<float> x(37, 1.0f);
    x[5] = x[20] = x[36] = 3.0f;
    float m;
    int64_t at;
    const int64_t n = 37;
    k::reduce_max(1, &n, 1u, x.data(), &m, &at);
    EXPECT_EQ(m, 3.0f);
    EXPECT_EQ(at, 5);
    x[30] = std::numeric_limits<float>::quiet_NaN();
    x[33] = std::numeric_limits<float>::quiet_NaN();
    k::reduce_max(1, &n, 1u, x.data(), &m, &at);
    EXPECT_TRUE(std::isnan(m));
    EXPECT_EQ(at, 30);
  });
}

TEST(Reduce, EmptyAxes) {
  const int64_t shape[2] = {3, 0};
  float out[3] = {-1, -1, -1};
  k::reduce_sum(2, shape, 2u, nullptr, out);
  EXPECT_EQ(out[0], 0.0f);
  k::reduce_mean(2, shape, 2u, nullptr, out);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_THROW(k::reduce_max(2, shape, 2u, nullptr, out, nullptr), duet::Error);
}

TEST(Eltwise, InPlaceMatchesOutOfPlace) {
  for_each_isa([] {
    const int64_t shape[2] = {9, 37}, sa[2] = {37, 1}, sb[2] = {0, 1};
    auto a = iota_vec(9 * 37, -100.0f);
    const auto b = iota_vec(37, 0.5f);
    std::vector<float> out(a.size());
    k::binary(k::BinaryOp::div, 2, shape, a.data(), sa, b.data(), sb, out.data());
    k::binary(k::BinaryOp::div, 2, shape, a.data(), sa, b.data(), sb, a.data());
    EXPECT_EQ(a, out);
    EXPECT_EQ(out[37 + 2], (37.0f + 2.0f - 100.0f) / 2.5f);
  });
}

TEST(Eltwise, BroadcastShapesFollowNumPy) {
  const int64_t a[3] = {3, 1, 5}, b[2] = {4, 1}, bad[1] = {4};
  int64_t out[6];
  ASSERT_EQ(k::broadcast_shapes(3, a, 2, b, out), 3);
  EXPECT_EQ(out[0], 3);
  EXPECT_EQ(out[1], 4);
  EXPECT_EQ(out[2], 5);
  EXPECT_THROW(k::broadcast_shapes(3, a, 1, bad, out), duet::Error);
}

TEST(Eltwise, AxpbyWithZeroBetaIgnoresGarbage) {
  for_each_isa([] {
    const auto x = iota_vec(21);
    std::vector<float> y(21, std::numeric_limits<float>::quiet_NaN());
    k::axpby(21, 2.0f, x.data(), 0.0f, y.data());
    for (size_t i = 0; i < 21; ++i) EXPECT_EQ(y[i], 2.0f * float(i));
  });
}

TEST(Concat, BackwardUndoesForward) {
  const int64_t sizes[3] = {2, 1, 3};
  const auto a = iota_vec(4 * 2 * 5), b = iota_vec(4 * 1 * 5, 100), c = iota_vec(4 * 3 * 5, 200);
  const float* in[3] = {a.data(), b.data(), c.data()};
  std::vector<float> out(4 * 6 * 5), ga(a.size()), gb(b.size()), gc(c.size());
  k::concat(3, in, sizes, 4, 5, out.data());
  EXPECT_EQ(out[5 * 2], 100.0f);  // row 0: two slices of a, then b starts
  float* g[3] = {ga.data(), gb.data(), gc.data()};
  k::concat_backward(3, out.data(), sizes, 4, 5, g);
  EXPECT_EQ(ga, a);
  EXPECT_EQ(gb, b);
  EXPECT_EQ(gc, c);
}

TEST(Embedding, BadIndexThrowsAndWritesNothing) {
  const std::vector<float> w = iota_vec(4 * 3);
  for (int32_t bad : {-1, 4}) {
    const int32_t idx[3] = {0, bad, 2};
    std::vector<float> out(9, -5.0f), dw(12, -5.0f);
    EXPECT_THROW(k::embedding_forward(3, idx, 4, 3, w.data(), out.data()), duet::Error);
    EXPECT_THROW(k::embedding_backward(3, idx, 4, 3, out.data(), dw.data()), duet::Error);
    for (float v : out) EXPECT_EQ(v, -5.0f);
    for (float v : dw) EXPECT_EQ(v, -5.0f);
  }
}

TEST(Embedding, BackwardCountsRepeatedIndices) {
  const int32_t idx[5] = {2, 0, 2, 2, 3};
  const std::vector<float> g(5 * 2, 1.0f);
  std::vector<float> dw(5 * 2, -1.0f);
  k::embedding_backward(5, idx, 5, 2, g.data(), dw.data());
  const std::vector<float> expect = {1, 1, 0, 0, 3, 3, 1, 1, 0, 0};
  EXPECT_EQ(dw, expect);
}

TEST(Attention, IdenticalKeysAverageTheValues) {
  k::AttentionShape s;
  s.batch = 2;
  s.heads = 3;
  s.q_len = 5;
  s.kv_len = 7;
  s.head_dim = 8;
  const size_t nq = 2 * 3 * 5 * 8, nk = 2 * 3 * 7 * 8;
  std::vector<float> q(nq), kk(nk), v(nk), out(nq), probs(2 * 3 * 5 * 7);
  for (size_t i = 0; i < nq; ++i) q[i] = std::sin(float(i));
  for (size_t i = 0; i < nk; ++i) {
    kk[i] = std::cos(float(i % 8));  // every key of every head is the same vector
    v[i] = float(i % 23) - 11.0f;
  }
  k::attention_forward(s, q.data(), kk.data(), v.data(), out.data(), probs.data());
  for (float p : probs) EXPECT_NEAR(p, 1.0f / 7.0f, 1e-6);
  for (int64_t h = 0; h < 6; ++h)
    for (int64_t d = 0; d < 8; ++d) {
      double mean = 0;
      for (int64_t j = 0; j < 7; ++j) mean += v[size_t((h * 7 + j) * 8 + d)] / 7.0;
      for (int64_t i = 0; i < 5; ++i) EXPECT_NEAR(out[size_t((h * 5 + i) * 8 + d)], mean, 1e-5);
    }
}

TEST(Attention, BackwardMatchesFiniteDifferences) {
  // loss = sum(out * w); compare dq, dk, dv with central differences of the reference forward.
  k::AttentionShape s;
  s.batch = 1;
  s.heads = 2;
  s.q_len = 3;
  s.kv_len = 4;
  s.head_dim = 8;
  const size_t nq = 2 * 3 * 8, nk = 2 * 4 * 8, np = 2 * 3 * 4;
  std::vector<float> q(nq), kk(nk), v(nk), w(nq);
  for (size_t i = 0; i < nq; ++i) q[i] = std::sin(0.7f * float(i));
  for (size_t i = 0; i < nk; ++i)
    kk[i] = std::cos(0.3f * float(i)), v[i] = std::sin(1.3f * float(i));
  for (size_t i = 0; i < nq; ++i) w[i] = std::cos(0.9f * float(i));
  auto loss = [&] {
    std::vector<float> out(nq), probs(np);
    k::ref::attention_forward(s, q.data(), kk.data(), v.data(), out.data(), probs.data());
    double l = 0;
    for (size_t i = 0; i < nq; ++i) l += double(out[i]) * w[i];
    return l;
  };
  std::vector<float> out(nq), probs(np), dq(nq), dk(nk), dv(nk);
  k::attention_forward(s, q.data(), kk.data(), v.data(), out.data(), probs.data());
  k::attention_backward(s, q.data(), kk.data(), v.data(), probs.data(), w.data(), dq.data(),
                        dk.data(), dv.data());
  double norm = 0;
  for (auto [x, g] : {std::pair{&q, &dq}, std::pair{&kk, &dk}, std::pair{&v, &dv}})
    for (size_t i = 0; i < x->size(); ++i) {
      const float keep = (*x)[i], h = 1e-2f;
      (*x)[i] = keep + h;
      const double up = loss();
      (*x)[i] = keep - h;
      const double down = loss();
      (*x)[i] = keep;
      EXPECT_NEAR((*g)[i], (up - down) / (2.0 * h), 2e-3);
      norm += std::fabs((*g)[i]);
    }
  EXPECT_GT(norm, 0.1);  // the gradient is not all zeros
}
