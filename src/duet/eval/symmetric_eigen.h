// Eigen-decomposition of small dense symmetric matrices in double precision (cyclic Jacobi), and
// the square root of a positive semi-definite matrix built on it. Used by FID-ref, where the
// matrices are feature covariances (tens to a few hundred rows) and robustness beats speed.
#pragma once

#include <cstdint>
#include <vector>

namespace duet::eval {

struct SymmetricEigen {
  int64_t n = 0;
  std::vector<double> values;   // ascending
  std::vector<double> vectors;  // row-major n x n; column j is the unit eigenvector of values[j]
  int sweeps = 0;               // Jacobi sweeps until the off-diagonal part vanished
};

// Eigenvalues and orthonormal eigenvectors of the symmetric n x n matrix `a` (row-major). Only
// (a + a^T) / 2 is used, so rounding asymmetry in the input does no harm. Cyclic Jacobi
// rotations until the off-diagonal Frobenius norm is below 1e-15 of the whole matrix's (at most
// 100 sweeps; 64 x 64 covariances need about 10). Error on a non-finite entry or a size mismatch.
SymmetricEigen symmetric_eigen(const std::vector<double>& a, int64_t n);

// The symmetric square root V diag(sqrt(max(0, l))) V^T of a symmetric positive semi-definite
// matrix. Eigenvalues that come out slightly negative (rounding, or a rank-deficient covariance)
// are clamped to 0; `clamped`, when given, receives how many were, and `most_negative` the
// smallest eigenvalue (0 when none was negative).
std::vector<double> psd_sqrt(const std::vector<double>& a, int64_t n, int64_t* clamped = nullptr,
                             double* most_negative = nullptr);

}  // namespace duet::eval
