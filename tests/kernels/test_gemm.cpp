// SGEMM facts the compare table cannot express: activation values, the vector epilogue's
// accuracy against the scalar definitions, bit-exact determinism, argument errors, and the FMA
// peak probe.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "duet/kernels/fma_peak.h"
#include "duet/kernels/gemm.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

std::vector<float> ramp(size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * float(i) / float(n - 1);
  return v;
}

TEST(GemmActivation, KnownValues) {
  EXPECT_EQ(apply_activation(Activation::none, -2.5f), -2.5f);
  EXPECT_EQ(apply_activation(Activation::relu, -1.0f), 0.0f);
  EXPECT_EQ(apply_activation(Activation::relu, 2.0f), 2.0f);
  EXPECT_NEAR(apply_activation(Activation::silu, 1.0f), 0.7310585786f, 1e-7);
  EXPECT_NEAR(apply_activation(Activation::silu, -2.0f), -0.2384058440f, 1e-7);
  // GELU exact form: x * Phi(x).
  EXPECT_NEAR(apply_activation(Activation::gelu, 1.0f), 0.8413447461f, 1e-7);
  EXPECT_NEAR(apply_activation(Activation::gelu, -3.0f), -0.00404969409f, 5e-9);
  EXPECT_EQ(apply_activation(Activation::gelu, 0.0f), 0.0f);
}

// C = 1 x n copy of x through the epilogue (A = [1], B = x): every element goes through the
// (vector, on AVX2) activation, tail lanes included.
void check_epilogue_activation(Isa isa, Activation act) {
  const Isa saved = active_isa();
  set_isa(isa);
  const auto x = ramp(2003, -14.0f, 14.0f);
  const int64_t n = int64_t(x.size());
  std::vector<float> c(x.size(), std::numeric_limits<float>::quiet_NaN());
  const float one = 1.0f;
  Epilogue e;
  e.act = act;
  sgemm(Trans::no, Trans::no, 1, n, 1, 1.0f, &one, 1, x.data(), n, 0.0f, c.data(), n, e);
  set_isa(saved);
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = apply_activation(act, x[i]);
    // Relative 2e-6, except values below 1e-12 (the far GELU tail) need only be tiny.
    EXPECT_NEAR(c[i], want, 2e-6 * std::fabs(want) + 1e-12) << "x=" << x[i];
  }
}

TEST(GemmActivation, EpilogueMatchesScalarAvx2) {
  if (!cpu_has_avx2_fma()) GTEST_SKIP() << "no AVX2";
  for (Activation a : {Activation::relu, Activation::silu, Activation::gelu})
    check_epilogue_activation(Isa::avx2, a);
}

TEST(GemmActivation, EpilogueMatchesScalarGeneric) {
  for (Activation a : {Activation::relu, Activation::silu, Activation::gelu})
    check_epilogue_activation(Isa::generic, a);
}

// Each C element is summed in the same k order whichever thread owns it, so the result is
// bit-identical run to run and across thread counts.
TEST(Gemm, DeterministicAcrossRunsAndThreads) {
  const int64_t m = 301, n = 203, k = 517;
  const auto a = ramp(size_t(m * k), -1.0f, 1.0f);
  auto b = ramp(size_t(k * n), -0.7f, 1.3f);
  for (size_t i = 0; i < b.size(); i += 7) b[i] *= -1.5f;
  const int saved = num_threads();
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> c(size_t(m * n));
    sgemm(Trans::no, Trans::yes, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
    return c;
  };
  const auto c2 = run(2), c2b = run(2), c1 = run(1);
  set_num_threads(saved);
  EXPECT_EQ(c2, c2b);
  EXPECT_EQ(c2, c1);
}

TEST(Gemm, RejectsBadArguments) {
  std::vector<float> buf(64, 0.0f);
  float* p = buf.data();
  EXPECT_THROW(sgemm(Trans::no, Trans::no, -1, 2, 2, 1, p, 2, p, 2, 0, p, 2), Error);
  EXPECT_THROW(sgemm(Trans::no, Trans::no, 2, 2, 3, 1, p, 2, p, 2, 0, p, 2), Error);   // lda < k
  EXPECT_THROW(sgemm(Trans::yes, Trans::no, 3, 2, 2, 1, p, 2, p, 2, 0, p, 2), Error);  // lda < m
  EXPECT_THROW(sgemm(Trans::no, Trans::yes, 2, 2, 3, 1, p, 3, p, 2, 0, p, 2), Error);  // ldb < k
  EXPECT_THROW(sgemm(Trans::no, Trans::no, 2, 3, 2, 1, p, 2, p, 3, 0, p, 2), Error);   // ldc < n
  EXPECT_THROW(sgemm(Trans::no, Trans::no, 2, 2, 2, 1, nullptr, 2, p, 2, 0, p, 2), Error);
  Epilogue e;
  e.residual = p;  // aliases C
  e.ld_residual = 2;
  EXPECT_THROW(sgemm(Trans::no, Trans::no, 2, 2, 2, 1, p, 2, p, 2, 0, p, 2, e), Error);
  // Empty products are fine and touch nothing.
  EXPECT_NO_THROW(sgemm(Trans::no, Trans::no, 0, 5, 3, 1, nullptr, 3, nullptr, 5, 0, nullptr, 5));
}

TEST(FmaPeak, ReturnsAPositiveRate) {
  const double gflops = measure_fma_peak_gflops(1);
  EXPECT_TRUE(std::isfinite(gflops));
  EXPECT_GT(gflops, 0.0);
  EXPECT_THROW(measure_fma_peak_gflops(0), Error);
}

}  // namespace
}  // namespace duet::kernels
