// The symmetric eigen-solver behind FID-ref (eval/symmetric_eigen.h) on known matrices: diagonal
// and 2 x 2 cases with eigenvalues known by hand, a random 8 x 8 matrix against NumPy's eigh
// (tests/golden/make_distribution_golden.py), reconstruction V diag(l) V^T = A and V^T V = I on a
// 64 x 64 covariance, and the PSD square root with clamping on a rank-deficient matrix.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "duet/eval/symmetric_eigen.h"
#include "duet/io/safetensors.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

using namespace duet;
using namespace duet::eval;

namespace {

const std::string kGolden =
    std::string(DUET_SOURCE_DIR) + "/tests/golden/distribution_golden.safetensors";

std::vector<double> f64_entry(const io::SafetensorsFile& file, const std::string& name) {
  const auto& e = file.at(name);
  EXPECT_EQ(e.dtype, DType::f64);
  std::vector<double> out(static_cast<size_t>(e.numel()));
  std::memcpy(out.data(), file.bytes(e).data(), e.nbytes);
  return out;
}

// max |V diag(l) V^T - A| and max |V^T V - I|.
std::pair<double, double> residuals(const SymmetricEigen& e, const std::vector<double>& a) {
  const int64_t n = e.n;
  double rec = 0.0, orth = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double r = 0.0, o = 0.0;
      for (int64_t k = 0; k < n; ++k) {
        r += e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k];
        o += e.vectors[k * n + i] * e.vectors[k * n + j];
      }
      rec = std::max(rec, std::abs(r - a[i * n + j]));
      orth = std::max(orth, std::abs(o - (i == j ? 1.0 : 0.0)));
    }
  return {rec, orth};
}

// A random covariance (n - 1 divisor) of `rows` Gaussian rows of width `dim`.
std::vector<double> random_covariance(int64_t rows, int64_t dim, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(rows * dim));
  Generator(seed).normal(x.data(), std::ssize(x));
  std::vector<double> mean(dim, 0.0), cov(dim * dim, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < dim; ++j) mean[j] += x[r * dim + j] / double(rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i)
      for (int64_t j = 0; j < dim; ++j)
        cov[i * dim + j] +=
            (x[r * dim + i] - mean[i]) * (x[r * dim + j] - mean[j]) / double(rows - 1);
  return cov;
}

}  // namespace

TEST(SymmetricEigen, DiagonalMatrixGivesItsEntriesSorted) {
  const std::vector<double> a = {3, 0, 0, 0, -1, 0, 0, 0, 2};
  const auto e = symmetric_eigen(a, 3);
  EXPECT_EQ(e.values, (std::vector<double>{-1, 2, 3}));
  EXPECT_EQ(e.sweeps, 0);
  // Column 0 belongs to -1: the second unit vector.
  EXPECT_EQ(e.vectors[0 * 3 + 0], 0.0);
  EXPECT_EQ(e.vectors[1 * 3 + 0], 1.0);
}

TEST(SymmetricEigen, TwoByTwoKnownEigenpairs) {
  const auto e = symmetric_eigen({2, 1, 1, 2}, 2);
  EXPECT_NEAR(e.values[0], 1.0, 1e-15);
  EXPECT_NEAR(e.values[1], 3.0, 1e-15);
  // (1, -1) / sqrt 2 for 1 and (1, 1) / sqrt 2 for 3, up to sign.
  EXPECT_NEAR(std::abs(e.vectors[0]), std::sqrt(0.5), 1e-15);
  EXPECT_NEAR(e.vectors[0] + e.vectors[2], 0.0, 1e-15);
  EXPECT_NEAR(e.vectors[1] - e.vectors[3], 0.0, 1e-15);
}

TEST(SymmetricEigen, MatchesNumpyEighOnRandomSymmetric) {
  const auto file = io::SafetensorsFile::load(kGolden);
  const auto a = f64_entry(file, "sym"), want = f64_entry(file, "eig_values");
  const auto e = symmetric_eigen(a, 8);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(e.values[i], want[i], 1e-12) << i;
  const auto [rec, orth] = residuals(e, a);
  EXPECT_LT(rec, 1e-13);
  EXPECT_LT(orth, 1e-14);
}

TEST(SymmetricEigen, ReconstructsA64x64Covariance) {
  const auto a = random_covariance(200, 64, 7);
  const auto e = symmetric_eigen(a, 64);
  const auto [rec, orth] = residuals(e, a);
  EXPECT_LT(rec, 1e-13);
  EXPECT_LT(orth, 1e-13);
  EXPECT_GT(e.values.front(), 0.0);  // 200 rows in 64 dimensions: full rank
  EXPECT_LT(e.sweeps, 20);
  double trace = 0.0, sum = 0.0;
  for (int64_t i = 0; i < 64; ++i) trace += a[i * 64 + i], sum += e.values[i];
  EXPECT_NEAR(sum, trace, 1e-12 * trace);
}

TEST(SymmetricEigen, PsdSqrtOfRankDeficientMatrixClampsAndSquaresBack) {
  // 10 rows in 16 dimensions: rank <= 9, so at least 7 eigenvalues are 0 up to rounding.
  const auto a = random_covariance(10, 16, 3);
  int64_t clamped = -1;
  double lowest = 1.0;
  const auto r = psd_sqrt(a, 16, &clamped, &lowest);
  EXPECT_GE(clamped, 0);
  EXPECT_LE(clamped, 7);
  EXPECT_LE(lowest, 0.0);
  EXPECT_GT(lowest, -1e-12);
  double err = 0.0;
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 16; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < 16; ++k) s += r[i * 16 + k] * r[k * 16 + j];
      err = std::max(err, std::abs(s - a[i * 16 + j]));
      EXPECT_EQ(r[i * 16 + j], r[j * 16 + i]);
    }
  EXPECT_LT(err, 1e-12);
}

TEST(SymmetricEigen, RejectsBadInput) {
  EXPECT_THROW(symmetric_eigen({1, 2, 3}, 2), Error);
  EXPECT_THROW(symmetric_eigen({1, NAN, NAN, 1}, 2), Error);
}
