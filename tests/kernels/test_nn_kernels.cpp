// Known-fact and finite-difference tests for the nn kernels (activation, softmax, loss, norm,
// pool, upsample). The op harness compares fast against reference; these pin the references
// themselves to PyTorch's semantics and to calculus, on both the fast and the reference path.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "duet/kernels/activation.h"
#include "duet/kernels/loss.h"
#include "duet/kernels/norm.h"
#include "duet/kernels/pool.h"
#include "duet/kernels/softmax.h"
#include "duet/kernels/upsample.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace k = duet::kernels;

namespace {

std::vector<float> rnd(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// Checks grad against central differences of the scalar function f at x (step h).
void expect_fd(const std::function<double(const std::vector<float>&)>& f, std::vector<float> x,
               const std::vector<float>& grad, double h, double tol) {
  ASSERT_EQ(grad.size(), x.size());
  double norm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float keep = x[i];
    x[i] = keep + float(h);
    const double up = f(x);
    x[i] = keep - float(h);
    const double down = f(x);
    x[i] = keep;
    const double fd = (up - down) / (2 * h);
    EXPECT_NEAR(grad[i], fd, tol * (1 + std::fabs(fd))) << "element " << i;
    norm += std::fabs(grad[i]);
  }
  EXPECT_GT(norm, 0.0) << "gradient is all zeros";
}

double weighted_sum(const std::vector<float>& y, const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * w[i];
  return s;
}

class NnKernels : public ::testing::TestWithParam<bool> {};  // true = fast path

TEST_P(NnKernels, ActivationsMatchKnownValuesAndDerivatives) {
  const bool fast = GetParam();
  auto fwd = fast ? k::activation_forward : k::ref::activation_forward;
  auto bwd = fast ? k::activation_backward : k::ref::activation_backward;
  const std::vector<float> x = {-2.0f, -0.5f, 0.0f, 1.0f, 3.0f};
  struct Known {
    k::ActFn act;
    float at_1;  // act(1)
  };
  for (Known kn : {Known{k::ActFn::relu, 1.0f}, Known{k::ActFn::silu, 0.7310586f},
                   Known{k::ActFn::gelu, 0.8413447f}, Known{k::ActFn::sigmoid, 0.7310586f},
                   Known{k::ActFn::tanh, 0.7615942f}}) {
    std::vector<float> y(x.size());
    fwd(kn.act, int64_t(x.size()), x.data(), y.data());
    EXPECT_NEAR(y[3], kn.at_1, 1e-6);
    const auto w = rnd(x.size(), 1);
    std::vector<float> dx(x.size());
    bwd(kn.act, int64_t(x.size()), x.data(), y.data(), w.data(), dx.data());
    // relu's kink at 0 has no finite difference; probe it away from zero.
    auto xs = x;
    if (kn.act == k::ActFn::relu) xs[2] = 0.25f;
    bwd(kn.act, int64_t(xs.size()), xs.data(), nullptr, w.data(), dx.data());
    expect_fd(
        [&](const std::vector<float>& v) {
          std::vector<float> o(v.size());
          fwd(kn.act, int64_t(v.size()), v.data(), o.data());
          return weighted_sum(o, w);
        },
        xs, dx, 1e-2, 2e-3);
  }
}

TEST_P(NnKernels, SoftmaxRowsSumToOneAndAreShiftInvariant) {
  const bool fast = GetParam();
  const int64_t rows = 3, cols = 37;
  auto x = rnd(rows * cols, 2, -20.0f, 20.0f);
  for (int64_t j = 0; j < cols; ++j) x[j] += 1000.0f;  // would overflow a naive exp
  std::vector<float> y(x.size()), ly(x.size());
  (fast ? k::softmax_forward : k::ref::softmax_forward)(rows, cols, x.data(), y.data());
  (fast ? k::log_softmax_forward : k::ref::log_softmax_forward)(rows, cols, x.data(), ly.data());
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0, ls = 0;
    for (int64_t j = 0; j < cols; ++j) {
      s += y[r * cols + j];
      ls += std::exp(double(ly[r * cols + j]));
      ASSERT_TRUE(std::isfinite(y[r * cols + j]));
    }
    EXPECT_NEAR(s, 1.0, 1e-5);
    EXPECT_NEAR(ls, 1.0, 1e-5);
  }
  const std::vector<float> small = {0.0f, 1.0f, 2.0f}, big = {1000.0f, 1001.0f, 1002.0f};
  std::vector<float> a(3), b(3);
  (fast ? k::softmax_forward : k::ref::softmax_forward)(1, 3, small.data(), a.data());
  (fast ? k::softmax_forward : k::ref::softmax_forward)(1, 3, big.data(), b.data());
  EXPECT_NEAR(a[0], 0.09003057f, 1e-6);
  EXPECT_NEAR(a[2], 0.66524096f, 1e-6);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(a[j], b[j], 1e-6);
}

TEST_P(NnKernels, SoftmaxBackwardMatchesFiniteDifferences) {
  const bool fast = GetParam();
  const int64_t rows = 2, cols = 5;
  const auto x = rnd(rows * cols, 3, -2.0f, 2.0f), w = rnd(rows * cols, 4);
  for (bool log : {false, true}) {
    auto fwd = log ? k::ref::log_softmax_forward : k::ref::softmax_forward;
    auto bwd = log ? (fast ? k::log_softmax_backward : k::ref::log_softmax_backward)
                   : (fast ? k::softmax_backward : k::ref::softmax_backward);
    std::vector<float> y(x.size()), dx(x.size());
    fwd(rows, cols, x.data(), y.data());
    bwd(rows, cols, y.data(), w.data(), dx.data());
    expect_fd(
        [&](const std::vector<float>& v) {
          std::vector<float> o(v.size());
          fwd(rows, cols, v.data(), o.data());
          return weighted_sum(o, w);
        },
        x, dx, 1e-2, 2e-3);
  }
}

TEST_P(NnKernels, CrossEntropyOfUniformLogitsIsLogC) {
  const bool fast = GetParam();
  auto ce = fast ? k::cross_entropy : k::ref::cross_entropy;
  const int64_t n = 4, c = 10;
  const std::vector<float> logits(n * c, 0.3f);
  const std::vector<int32_t> t = {0, 3, 9, 3};
  for (float eps : {0.0f, 0.1f}) {
    std::vector<float> d(n * c);
    EXPECT_NEAR(ce(n, c, logits.data(), t.data(), eps, 2.0f, d.data()), std::log(10.0), 1e-6);
    // d = g/n * (1/c - (1-eps) onehot - eps/c)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < c; ++j) {
        const double want = 2.0 / n * (0.1 - (j == t[i] ? 1.0 - eps : 0.0) - eps / c);
        EXPECT_NEAR(d[i * c + j], want, 1e-6);
      }
  }
}

TEST_P(NnKernels, CrossEntropyGradientMatchesFiniteDifferences) {
  const bool fast = GetParam();
  auto ce = fast ? k::cross_entropy : k::ref::cross_entropy;
  const int64_t n = 3, c = 4;
  const auto x = rnd(n * c, 5, -2.0f, 2.0f);
  const std::vector<int32_t> t = {1, 0, 3};
  std::vector<float> d(n * c);
  ce(n, c, x.data(), t.data(), 0.1f, 1.5f, d.data());
  expect_fd(
      [&](const std::vector<float>& v) {
        return 1.5 * ce(n, c, v.data(), t.data(), 0.1f, 1.0f, nullptr);
      },
      x, d, 1e-2, 2e-3);
}

TEST_P(NnKernels, CrossEntropyRejectsBadTargets) {
  const bool fast = GetParam();
  auto ce = fast ? k::cross_entropy : k::ref::cross_entropy;
  const std::vector<float> logits(6, 0.0f);
  for (int32_t bad : {3, -1}) {
    const std::vector<int32_t> t = {0, bad};
    try {
      ce(2, 3, logits.data(), t.data(), 0.0f, 1.0f, nullptr);
      FAIL() << "no error for target " << bad;
    } catch (const duet::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("target[1]"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
    }
  }
}

TEST_P(NnKernels, MseForwardAndBackward) {
  const bool fast = GetParam();
  const std::vector<float> a = {1, 2, 3, 4}, b = {0, 2, 5, 4};
  EXPECT_FLOAT_EQ((fast ? k::mse_forward : k::ref::mse_forward)(4, a.data(), b.data()), 1.25f);
  std::vector<float> da(4), db(4);
  (fast ? k::mse_backward : k::ref::mse_backward)(4, a.data(), b.data(), 2.0f, da.data(),
                                                  db.data());
  const std::vector<float> want = {1.0f, 0.0f, -2.0f, 0.0f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(da[i], want[i]);
    EXPECT_FLOAT_EQ(db[i], -want[i]);
  }
}

TEST_P(NnKernels, BatchNormTrainNormalisesAndUpdatesRunningStats) {
  const bool fast = GetParam();
  auto fwd = fast ? k::batch_norm2d_forward_train : k::ref::batch_norm2d_forward_train;
  // Channel 0 holds {1, 2, 3, 4}: mean 2.5, biased var 1.25, unbiased var 5/3.
  const int64_t n = 2, c = 2, hw = 2;
  const std::vector<float> x = {1, 2, 10, 10, 3, 4, 10, 14};
  std::vector<float> y(8), sm(2), si(2), rm = {0.0f, 1.0f}, rv = {1.0f, 1.0f};
  fwd(n, c, hw, x.data(), nullptr, nullptr, 1e-5f, 0.1f, rm.data(), rv.data(), y.data(), sm.data(),
      si.data(), {});
  EXPECT_NEAR(sm[0], 2.5f, 1e-6);
  EXPECT_NEAR(si[0], 1.0 / std::sqrt(1.25 + 1e-5), 1e-6);
  EXPECT_NEAR(rm[0], 0.25f, 1e-6);
  EXPECT_NEAR(rv[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
  EXPECT_NEAR(rm[1], 0.9 + 0.1 * 11.0, 1e-5);        // mean of {10, 10, 10, 14} = 11
  EXPECT_NEAR(rv[1], 0.9 + 0.1 * 12.0 / 3.0, 1e-5);  // squared deviations sum to 12

  // On random data every channel comes out with zero mean and unit (biased) variance.
  const int64_t n2 = 4, c2 = 3, hw2 = 50;
  const auto x2 = rnd(n2 * c2 * hw2, 6, 2.0f, 5.0f);
  std::vector<float> y2(x2.size()), m2(c2), s2(c2);
  fwd(n2, c2, hw2, x2.data(), nullptr, nullptr, 0.0f, 0.1f, nullptr, nullptr, y2.data(), m2.data(),
      s2.data(), {});
  for (int64_t ch = 0; ch < c2; ++ch) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < n2; ++i)
      for (int64_t j = 0; j < hw2; ++j) {
        const double v = y2[(i * c2 + ch) * hw2 + j];
        s += v;
        q += v * v;
      }
    EXPECT_NEAR(s / (n2 * hw2), 0.0, 1e-5);
    EXPECT_NEAR(q / (n2 * hw2), 1.0, 1e-4);
  }
}

TEST_P(NnKernels, BatchNormRejectsSingleValuePerChannel) {
  const bool fast = GetParam();
  const std::vector<float> x = {1.0f, 2.0f};
  std::vector<float> y(2), sm(2), si(2);
  EXPECT_THROW((fast ? k::batch_norm2d_forward_train : k::ref::batch_norm2d_forward_train)(
                   1, 2, 1, x.data(), nullptr, nullptr, 1e-5f, 0.1f, nullptr, nullptr, y.data(),
                   sm.data(), si.data(), {}),
               duet::Error);
}

// The three normalisations' backward passes against central differences of sum(w * y).
TEST_P(NnKernels, NormBackwardsMatchFiniteDifferences) {
  const bool fast = GetParam();
  const int64_t n = 2, c = 4, hw = 3, groups = 2;
  const size_t sz = size_t(n * c * hw);
  const auto x = rnd(sz, 7, -1.0f, 2.0f), w = rnd(sz, 8), gamma = rnd(c, 9, 0.5f, 1.5f),
             beta = rnd(c, 10);
  const double h = 1e-2, tol = 3e-3;
  {  // batch norm
    auto f = [&](const std::vector<float>& v, std::vector<float>* m, std::vector<float>* s) {
      std::vector<float> y(sz), mm(c), ss(c);
      k::ref::batch_norm2d_forward_train(n, c, hw, v.data(), gamma.data(), beta.data(), 1e-5f, 0.1f,
                                         nullptr, nullptr, y.data(), mm.data(), ss.data());
      if (m) *m = mm, *s = ss;
      return weighted_sum(y, w);
    };
    std::vector<float> m, s, dx(sz), dg(c), db(c);
    f(x, &m, &s);
    (fast ? k::batch_norm2d_backward : k::ref::batch_norm2d_backward)(
        n, c, hw, x.data(), w.data(), gamma.data(), m.data(), s.data(), dx.data(), dg.data(),
        db.data(), k::ReluGradMask{});
    expect_fd([&](const std::vector<float>& v) { return f(v, nullptr, nullptr); }, x, dx, h, tol);
    // dgamma/dbeta: dL/dgamma_c = sum(w * xhat) over the channel, dbeta_c = sum(w).
    for (int64_t ch = 0; ch < c; ++ch) {
      double sg = 0, sb = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) {
          const size_t o = size_t((i * c + ch) * hw + j);
          sg += w[o] * (x[o] - m[ch]) * s[ch];
          sb += w[o];
        }
      EXPECT_NEAR(dg[ch], sg, 1e-5);
      EXPECT_NEAR(db[ch], sb, 1e-5);
    }
  }
  {  // group norm
    auto f = [&](const std::vector<float>& v, std::vector<float>* m, std::vector<float>* s) {
      std::vector<float> y(sz), mm(n * groups), ss(n * groups);
      k::ref::group_norm_forward(n, c, hw, groups, v.data(), gamma.data(), beta.data(), 1e-5f,
                                 y.data(), mm.data(), ss.data());
      if (m) *m = mm, *s = ss;
      return weighted_sum(y, w);
    };
    std::vector<float> m, s, dx(sz), dg(c), db(c);
    f(x, &m, &s);
    (fast ? k::group_norm_backward : k::ref::group_norm_backward)(
        n, c, hw, groups, x.data(), w.data(), gamma.data(), m.data(), s.data(), dx.data(),
        dg.data(), db.data(), {}, nullptr);
    expect_fd([&](const std::vector<float>& v) { return f(v, nullptr, nullptr); }, x, dx, h, tol);
  }
  {  // layer norm over the last dim (rows = n * c, d = hw)
    const int64_t rows = n * c, d = hw;
    const auto g = rnd(d, 11, 0.5f, 1.5f), b = rnd(d, 12);
    auto f = [&](const std::vector<float>& v, std::vector<float>* m, std::vector<float>* s) {
      std::vector<float> y(sz), mm(rows), ss(rows);
      k::ref::layer_norm_forward(rows, d, v.data(), g.data(), b.data(), 1e-5f, y.data(), mm.data(),
                                 ss.data());
      if (m) *m = mm, *s = ss;
      return weighted_sum(y, w);
    };
    std::vector<float> m, s, dx(sz), dg(d), db(d);
    f(x, &m, &s);
    (fast ? k::layer_norm_backward : k::ref::layer_norm_backward)(
        rows, d, x.data(), w.data(), g.data(), m.data(), s.data(), dx.data(), dg.data(), db.data());
    expect_fd([&](const std::vector<float>& v) { return f(v, nullptr, nullptr); }, x, dx, h, tol);
    expect_fd(
        [&](const std::vector<float>& gv) {
          std::vector<float> y(sz);
          k::ref::layer_norm_forward(rows, d, x.data(), gv.data(), b.data(), 1e-5f, y.data(),
                                     nullptr, nullptr);
          return weighted_sum(y, w);
        },
        g, dg, h, tol);
  }
}

TEST_P(NnKernels, PoolingKnownValues) {
  const bool fast = GetParam();
  k::Pool2dShape s;
  s.in_h = s.in_w = 4;
  s.kernel_h = s.kernel_w = s.stride_h = s.stride_w = 2;
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = float(i);
  std::vector<float> y(4), a(4);
  std::vector<int32_t> idx(4);
  (fast ? k::max_pool2d_forward : k::ref::max_pool2d_forward)(s, x.data(), y.data(), idx.data());
  (fast ? k::avg_pool2d_forward : k::ref::avg_pool2d_forward)(s, x.data(), a.data());
  const std::vector<float> want_max = {5, 7, 13, 15}, want_avg = {2.5f, 4.5f, 10.5f, 12.5f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(y[i], want_max[i]);
    EXPECT_EQ(idx[i], int32_t(want_max[i]));
    EXPECT_FLOAT_EQ(a[i], want_avg[i]);
  }
  // Padding is -inf for max (all-negative input stays negative) and counts as zeros for avg.
  k::Pool2dShape p;
  p.in_h = p.in_w = 2;
  p.kernel_h = p.kernel_w = 3;
  p.pad_h = p.pad_w = 1;
  const std::vector<float> neg = {-4, -3, -2, -1};
  std::vector<float> py(4), pa(4);
  std::vector<int32_t> pi(4);
  (fast ? k::max_pool2d_forward : k::ref::max_pool2d_forward)(p, neg.data(), py.data(), pi.data());
  (fast ? k::avg_pool2d_forward : k::ref::avg_pool2d_forward)(p, neg.data(), pa.data());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(py[i], -1.0f);
    EXPECT_EQ(pi[i], 3);
    EXPECT_FLOAT_EQ(pa[i], -10.0f / 9.0f);
  }
  std::vector<float> dx(4);
  const std::vector<float> dy = {1, 2, 3, 4};
  (fast ? k::max_pool2d_backward : k::ref::max_pool2d_backward)(p, dy.data(), pi.data(), dx.data());
  EXPECT_EQ(dx[3], 10.0f);
  EXPECT_EQ(dx[0], 0.0f);
  p.pad_h = 2;  // more than kernel / 2
  EXPECT_THROW((fast ? k::max_pool2d_forward : k::ref::max_pool2d_forward)(p, neg.data(), py.data(),
                                                                           pi.data()),
               duet::Error);
}

TEST_P(NnKernels, GlobalPoolAndUpsampleKnownValues) {
  const bool fast = GetParam();
  const std::vector<float> x = {1, 2, 3, 4, 10, 20, 30, 40};
  std::vector<float> g(2);
  (fast ? k::global_avg_pool_forward : k::ref::global_avg_pool_forward)(1, 2, 4, x.data(),
                                                                        g.data());
  EXPECT_FLOAT_EQ(g[0], 2.5f);
  EXPECT_FLOAT_EQ(g[1], 25.0f);
  // [1, 1, 2, 2] x2 -> 4x4 blocks; backward of all-ones sums each block to 4.
  std::vector<float> up(16), back(4);
  (fast ? k::upsample_nearest2d_forward : k::ref::upsample_nearest2d_forward)(1, 1, 2, 2, 2, 2,
                                                                              x.data(), up.data());
  const std::vector<float> want = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
  EXPECT_EQ(up, want);
  (fast ? k::upsample_nearest2d_backward : k::ref::upsample_nearest2d_backward)(
      1, 1, 2, 2, 2, 2, want.data(), back.data());
  EXPECT_EQ(back, (std::vector<float>{4, 8, 12, 16}));
}

INSTANTIATE_TEST_SUITE_P(Paths, NnKernels, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "fast" : "ref"; });

// Reductions use a fixed order, so the answer must not change with the thread count.
TEST(NnKernelsDeterminism, SameResultOnOneAndTwoThreads) {
  const int64_t n = 8, c = 6, hw = 300, rows = 700, d = 96;
  const auto x = rnd(n * c * hw, 13), dy = rnd(n * c * hw, 14);
  const auto lx = rnd(rows * d, 15), ldy = rnd(rows * d, 16);
  const std::vector<int32_t> t(rows, 5);
  auto run = [&] {
    std::vector<float> out(n * c * hw), m(c), s(c), dx(n * c * hw), dg(d), db(d);
    k::batch_norm2d_forward_train(n, c, hw, x.data(), nullptr, nullptr, 1e-5f, 0.1f, nullptr,
                                  nullptr, out.data(), m.data(), s.data());
    k::batch_norm2d_backward(n, c, hw, x.data(), dy.data(), nullptr, m.data(), s.data(), dx.data(),
                             nullptr, nullptr);
    std::vector<float> lm(rows), ls(rows), ly(rows * d), ldx(rows * d);
    k::layer_norm_forward(rows, d, lx.data(), nullptr, nullptr, 1e-5f, ly.data(), lm.data(),
                          ls.data());
    k::layer_norm_backward(rows, d, lx.data(), ldy.data(), nullptr, lm.data(), ls.data(),
                           ldx.data(), dg.data(), db.data());
    const float loss = k::cross_entropy(rows, d, lx.data(), t.data(), 0.1f, 1.0f, nullptr);
    dx.insert(dx.end(), ldx.begin(), ldx.end());
    dx.insert(dx.end(), dg.begin(), dg.end());
    dx.push_back(loss);
    return dx;
  };
  const int before = duet::num_threads();
  duet::set_num_threads(1);
  const auto one = run();
  duet::set_num_threads(2);
  const auto two = run();
  duet::set_num_threads(before);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(one[i], two[i]) << "element " << i;
}

}  // namespace
