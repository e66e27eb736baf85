#include "duet/eval/symmetric_eigen.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "duet/tensor/error.h"

namespace duet::eval {
namespace {

// Sum of squares of the entries above the diagonal (the matrix is kept symmetric).
double off_diagonal_sq(const std::vector<double>& a, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      s += a[static_cast<size_t>(i * n + j)] * a[static_cast<size_t>(i * n + j)];
  return s;
}

}  // namespace

SymmetricEigen symmetric_eigen(const std::vector<double>& input, int64_t n) {
  DUET_CHECK(n >= 1 && std::ssize(input) == n * n, "symmetric_eigen: expected ", n, " x ", n, " = ",
             n * n, " entries, got ", input.size());
  const auto at = [n](int64_t i, int64_t j) { return static_cast<size_t>(i * n + j); };
  std::vector<double> a(input.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      DUET_CHECK(std::isfinite(input[at(i, j)]), "symmetric_eigen: entry (", i, ", ", j,
                 ") is not finite");
      a[at(i, j)] = 0.5 * (input[at(i, j)] + input[at(j, i)]);
    }
  SymmetricEigen e;
  e.n = n;
  e.vectors.assign(a.size(), 0.0);
  for (int64_t i = 0; i < n; ++i) e.vectors[at(i, i)] = 1.0;

  double total = 0.0;
  for (double v : a) total += v * v;
  const double tol = 1e-30 * total;  // (1e-15 relative)^2, compared with squared norms
  constexpr int kMaxSweeps = 100;
  while (off_diagonal_sq(a, n) > tol) {
    DUET_CHECK(e.sweeps < kMaxSweeps, "symmetric_eigen: no convergence after ", kMaxSweeps,
               " Jacobi sweeps (", n, " x ", n, ")");
    ++e.sweeps;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[at(p, q)];
        if (apq == 0.0) continue;
        // The rotation J (c on the diagonal, s at (p, q), -s at (q, p)) that zeroes a_pq in
        // J^T A J; t = tan(angle) is the smaller root of t^2 + 2 theta t - 1 = 0, which keeps
        // the rotation under 45 degrees and the update stable.
        const double theta = (a[at(q, q)] - a[at(p, p)]) / (2.0 * apq);
        const double t = (theta >= 0.0 ? 1.0 : -1.0) / (std::abs(theta) + std::hypot(theta, 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // A <- A J (columns p, q)
          const double akp = a[at(k, p)], akq = a[at(k, q)];
          a[at(k, p)] = c * akp - s * akq;
          a[at(k, q)] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[at(p, k)], aqk = a[at(q, k)];
          a[at(p, k)] = c * apk - s * aqk;
          a[at(q, k)] = s * apk + c * aqk;
        }
        a[at(p, q)] = a[at(q, p)] = 0.0;   // exactly zero in exact arithmetic
        for (int64_t k = 0; k < n; ++k) {  // V <- V J
          const double vkp = e.vectors[at(k, p)], vkq = e.vectors[at(k, q)];
          e.vectors[at(k, p)] = c * vkp - s * vkq;
          e.vectors[at(k, q)] = s * vkp + c * vkq;
        }
      }
  }

  // Ascending eigenvalues, eigenvector columns in the same order.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return a[at(x, x)] < a[at(y, y)]; });
  e.values.resize(static_cast<size_t>(n));
  std::vector<double> v(e.vectors.size());
  for (int64_t j = 0; j < n; ++j) {
    const int64_t from = order[static_cast<size_t>(j)];
    e.values[static_cast<size_t>(j)] = a[at(from, from)];
    for (int64_t i = 0; i < n; ++i) v[at(i, j)] = e.vectors[at(i, from)];
  }
  e.vectors = std::move(v);
  return e;
}

std::vector<double> psd_sqrt(const std::vector<double>& a, int64_t n, int64_t* clamped,
                             double* most_negative) {
  const SymmetricEigen e = symmetric_eigen(a, n);
  const auto at = [n](int64_t i, int64_t j) { return static_cast<size_t>(i * n + j); };
  std::vector<double> root(static_cast<size_t>(n));
  int64_t negative = 0;
  double lowest = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const double l = e.values[static_cast<size_t>(j)];
    if (l < 0.0) ++negative, lowest = std::min(lowest, l);
    root[static_cast<size_t>(j)] = std::sqrt(std::max(0.0, l));
  }
  if (clamped) *clamped = negative;
  if (most_negative) *most_negative = lowest;
  std::vector<double> out(a.size(), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < n; ++k)
        s += e.vectors[at(i, k)] * root[static_cast<size_t>(k)] * e.vectors[at(j, k)];
      out[at(i, j)] = out[at(j, i)] = s;
    }
  return out;
}

}  // namespace duet::eval
