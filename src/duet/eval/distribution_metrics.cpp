#include "duet/eval/distribution_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "duet/eval/symmetric_eigen.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

namespace duet::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_pair(const FeatureRows& a, const FeatureRows& b, int64_t min_rows, const char* what) {
  DUET_CHECK(a.dim >= 1 && a.dim == b.dim, what, ": feature widths differ or are empty (", a.dim,
             " vs ", b.dim, ")");
  DUET_CHECK(a.n >= min_rows && b.n >= min_rows, what, ": needs at least ", min_rows,
             " rows per set, got ", a.n, " and ", b.n);
  DUET_CHECK(a.data && b.data, what, ": null feature data");
}

// Four partial sums in a fixed order: 4x shorter dependency chains than one running sum, and
// still the same result on every call for the same rows.
double squared_distance(const float* x, const float* y, int64_t dim) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4)
    for (int u = 0; u < 4; ++u) {
      const double d = static_cast<double>(x[j + u]) - static_cast<double>(y[j + u]);
      s[u] += d * d;
    }
  for (; j < dim; ++j) {
    const double d = static_cast<double>(x[j]) - static_cast<double>(y[j]);
    s[0] += d * d;
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

double dot(const float* x, const float* y, int64_t dim) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4)
    for (int u = 0; u < 4; ++u)
      s[u] += static_cast<double>(x[j + u]) * static_cast<double>(y[j + u]);
  for (; j < dim; ++j) s[0] += static_cast<double>(x[j]) * static_cast<double>(y[j]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// Mean vector and covariance (divided by n - 1) in double, rows accumulated in order.
void moments(const FeatureRows& x, std::vector<double>& mean, std::vector<double>& cov) {
  const int64_t d = x.dim;
  mean.assign(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += x.row(i)[j];
  for (double& m : mean) m /= static_cast<double>(x.n);
  cov.assign(static_cast<size_t>(d * d), 0.0);
  std::vector<double> c(static_cast<size_t>(d));
  for (int64_t i = 0; i < x.n; ++i) {
    for (int64_t j = 0; j < d; ++j)
      c[static_cast<size_t>(j)] = x.row(i)[j] - mean[static_cast<size_t>(j)];
    for (int64_t r = 0; r < d; ++r)
      for (int64_t s = r; s < d; ++s)
        cov[static_cast<size_t>(r * d + s)] +=
            c[static_cast<size_t>(r)] * c[static_cast<size_t>(s)];
  }
  for (int64_t r = 0; r < d; ++r)
    for (int64_t s = r; s < d; ++s) {
      const double v = cov[static_cast<size_t>(r * d + s)] / static_cast<double>(x.n - 1);
      cov[static_cast<size_t>(r * d + s)] = cov[static_cast<size_t>(s * d + r)] = v;
    }
}

// Row-major n x n product.
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      const double aik = a[static_cast<size_t>(i * n + k)];
      for (int64_t j = 0; j < n; ++j)
        out[static_cast<size_t>(i * n + j)] += aik * b[static_cast<size_t>(k * n + j)];
    }
  return out;
}

double poly_kernel(const float* x, const float* y, int64_t dim) {
  const double v = dot(x, y, dim) / static_cast<double>(dim) + 1.0;
  return v * v * v;
}

// True when row i of `rows` lies in some ball of `centres` (squared radii `r2`). Stops at the
// first ball found, so the answer (not the work) is all that matters for determinism.
bool inside_any(const float* row, const FeatureRows& centres, const std::vector<double>& r2) {
  for (int64_t j = 0; j < centres.n; ++j)
    if (squared_distance(row, centres.row(j), centres.dim) <= r2[static_cast<size_t>(j)])
      return true;
  return false;
}

double share_inside(const FeatureRows& points, const FeatureRows& centres,
                    const std::vector<double>& r2) {
  std::vector<char> in(static_cast<size_t>(points.n), 0);
  parallel_for(points.n, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      in[static_cast<size_t>(i)] = inside_any(points.row(i), centres, r2);
  });
  return static_cast<double>(std::count(in.begin(), in.end(), 1)) / static_cast<double>(points.n);
}

}  // namespace

nlohmann::json FidResult::to_json() const {
  return {{"fid", fid}, {"mean_term", mean_term}, {"trace_term", trace_term}, {"clamped", clamped}};
}

FidResult fid_ref(const FeatureRows& a, const FeatureRows& b) {
  check_pair(a, b, 2, "FID-ref");
  const int64_t d = a.dim;
  std::vector<double> mu1, s1, mu2, s2;
  moments(a, mu1, s1);
  moments(b, mu2, s2);
  FidResult r;
  for (int64_t j = 0; j < d; ++j) {
    const double e = mu1[static_cast<size_t>(j)] - mu2[static_cast<size_t>(j)];
    r.mean_term += e * e;
  }
  // tr((S1 S2)^{1/2}) through the symmetric S1^{1/2} S2 S1^{1/2}: both have the eigenvalues of
  // S1 S2, and the symmetric form keeps them real and lets rounding errors show up as tiny
  // negative values, which are clamped rather than producing NaN from sqrt.
  int64_t clamped = 0;
  double lowest = 0.0;
  const std::vector<double> root1 = psd_sqrt(s1, d, &clamped, &lowest);
  const SymmetricEigen e = symmetric_eigen(matmul(matmul(root1, s2, d), root1, d), d);
  double tr_root = 0.0, tr1 = 0.0, tr2 = 0.0;
  for (double l : e.values) {
    if (l < 0.0) ++clamped, lowest = std::min(lowest, l);
    tr_root += std::sqrt(std::max(0.0, l));
  }
  for (int64_t j = 0; j < d; ++j)
    tr1 += s1[static_cast<size_t>(j * d + j)], tr2 += s2[static_cast<size_t>(j * d + j)];
  r.trace_term = tr1 + tr2 - 2.0 * tr_root;
  r.fid = r.mean_term + r.trace_term;
  r.clamped = clamped;
  r.most_negative = lowest;
  return r;
}

nlohmann::json KidResult::to_json() const {
  return {{"kid", kid},
          {"std", std},
          {"std_error", std_error},
          {"subsets", subsets},
          {"subset_size", subset_size}};
}

std::vector<int64_t> kid_subset(int64_t n, int64_t m, uint64_t seed, int64_t subset, int side) {
  DUET_CHECK(m >= 1 && m <= n, "kid_subset: subset of ", m, " rows from ", n);
  constexpr uint64_t kKidStream = 0x6b696400;  // "kid\0" + side: apart from other Philox uses
  const auto w =
      philox4x32(static_cast<uint64_t>(subset), kKidStream + static_cast<uint64_t>(side), seed);
  Generator g((static_cast<uint64_t>(w[0]) << 32) | w[1]);
  // Partial Fisher-Yates: the first m entries of a uniformly random permutation.
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  for (int64_t i = 0; i < m; ++i) {
    const auto j = i + static_cast<int64_t>(g.next_below(static_cast<uint64_t>(n - i)));
    std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(j)]);
  }
  idx.resize(static_cast<size_t>(m));
  return idx;
}

namespace {

// Unbiased MMD^2 from a kernel accessor k(side_x, i, side_y, j) over the index lists.
template <class Kernel>
double mmd2_from(const std::vector<int64_t>& ia, const std::vector<int64_t>& ib, Kernel&& k) {
  const auto m = static_cast<double>(ia.size()), n = static_cast<double>(ib.size());
  double saa = 0.0, sbb = 0.0, sab = 0.0;
  for (size_t i = 0; i < ia.size(); ++i)
    for (size_t j = i + 1; j < ia.size(); ++j) saa += k(0, ia[i], 0, ia[j]);
  for (size_t i = 0; i < ib.size(); ++i)
    for (size_t j = i + 1; j < ib.size(); ++j) sbb += k(1, ib[i], 1, ib[j]);
  for (int64_t i : ia)
    for (int64_t j : ib) sab += k(0, i, 1, j);
  // Off-diagonal pairs counted once above, hence 2 / (m (m - 1)).
  return 2.0 * saa / (m * (m - 1.0)) + 2.0 * sbb / (n * (n - 1.0)) - 2.0 * sab / (m * n);
}

// Kernel values of all pairs, computed once when they fit in kKernelCacheEntries doubles (32 MB:
// two sets of 1000 rows take 3M); each entry is the same poly_kernel call as without the cache.
constexpr int64_t kKernelCacheEntries = int64_t{1} << 22;

struct KernelCache {
  int64_t na = 0, nb = 0;
  std::vector<double> aa, bb, ab;  // na x na, nb x nb, na x nb

  KernelCache(const FeatureRows& a, const FeatureRows& b) : na(a.n), nb(b.n) {
    aa.resize(static_cast<size_t>(na * na));
    bb.resize(static_cast<size_t>(nb * nb));
    ab.resize(static_cast<size_t>(na * nb));
    fill(a, a, aa);
    fill(b, b, bb);
    fill(a, b, ab);
  }
  static void fill(const FeatureRows& x, const FeatureRows& y, std::vector<double>& out) {
    parallel_for(x.n, 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        for (int64_t j = 0; j < y.n; ++j)
          out[static_cast<size_t>(i * y.n + j)] = poly_kernel(x.row(i), y.row(j), x.dim);
    });
  }
  double operator()(int sx, int64_t i, int sy, int64_t j) const {
    if (sx == 0 && sy == 0) return aa[static_cast<size_t>(i * na + j)];
    if (sx == 1 && sy == 1) return bb[static_cast<size_t>(i * nb + j)];
    return ab[static_cast<size_t>(i * nb + j)];  // only (a, b) pairs are asked for
  }
};

}  // namespace

double mmd2_unbiased(const FeatureRows& a, const std::vector<int64_t>& ia, const FeatureRows& b,
                     const std::vector<int64_t>& ib) {
  DUET_CHECK(ia.size() >= 2 && ib.size() >= 2 && a.dim == b.dim,
             "mmd2_unbiased: needs >= 2 rows per side of one width");
  const FeatureRows* sets[2] = {&a, &b};
  return mmd2_from(ia, ib, [&](int sx, int64_t i, int sy, int64_t j) {
    return poly_kernel(sets[sx]->row(i), sets[sy]->row(j), a.dim);
  });
}

KidResult kid_ref(const FeatureRows& a, const FeatureRows& b, const KidOptions& o) {
  check_pair(a, b, 2, "KID-ref");
  DUET_CHECK(o.subsets >= 1 && o.subsets <= 100000, "KID-ref: subsets must be in [1, 100000], got ",
             o.subsets);
  DUET_CHECK(o.subset_size >= 0, "KID-ref: subset size must be >= 0, got ", o.subset_size);
  const int64_t n = std::min(a.n, b.n);
  const int64_t m = o.subset_size > 0 ? std::max<int64_t>(2, std::min(o.subset_size, n))
                                      : std::max<int64_t>(2, std::min<int64_t>(1000, n / 2));
  std::vector<double> per(static_cast<size_t>(o.subsets));
  // One subset per task; each is computed by one thread in a fixed order, so the values do not
  // depend on the thread count. The subset indices depend only on (seed, subset, side).
  const bool cached = a.n * a.n + b.n * b.n + a.n * b.n <= kKernelCacheEntries;
  std::optional<KernelCache> cache;
  if (cached) cache.emplace(a, b);
  parallel_for(o.subsets, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const auto ia = kid_subset(a.n, m, o.seed, s, 0), ib = kid_subset(b.n, m, o.seed, s, 1);
      per[static_cast<size_t>(s)] =
          cached ? mmd2_from(ia, ib, *cache) : mmd2_unbiased(a, ia, b, ib);
    }
  });
  KidResult r;
  r.subsets = o.subsets, r.subset_size = m;
  for (double v : per) r.kid += v;
  r.kid /= static_cast<double>(o.subsets);
  if (o.subsets > 1) {
    double ss = 0.0;
    for (double v : per) ss += (v - r.kid) * (v - r.kid);
    r.std = std::sqrt(ss / static_cast<double>(o.subsets - 1));
    r.std_error = r.std / std::sqrt(static_cast<double>(o.subsets));
  }
  return r;
}

nlohmann::json PrecisionRecall::to_json() const {
  return {{"precision", precision}, {"recall", recall}, {"k", k}};
}

std::vector<double> knn_radii_sq(const FeatureRows& x, int64_t k) {
  DUET_CHECK(k >= 1 && k < x.n, "k-NN radii: k must be in [1, ", x.n - 1, "] for ", x.n,
             " rows, got ", k);
  std::vector<double> r2(static_cast<size_t>(x.n));
  parallel_for(x.n, 16, [&](int64_t b, int64_t e) {
    std::vector<double> d(static_cast<size_t>(x.n - 1));
    for (int64_t i = b; i < e; ++i) {
      size_t t = 0;
      for (int64_t j = 0; j < x.n; ++j)
        if (j != i) d[t++] = squared_distance(x.row(i), x.row(j), x.dim);
      std::nth_element(d.begin(), d.begin() + (k - 1), d.end());
      r2[static_cast<size_t>(i)] = d[static_cast<size_t>(k - 1)];
    }
  });
  return r2;
}

PrecisionRecall precision_recall(const FeatureRows& reference, const FeatureRows& candidate,
                                 int64_t k) {
  DUET_CHECK(k >= 1, "precision/recall: k must be >= 1, got ", k);
  check_pair(reference, candidate, k + 1, "precision/recall");
  PrecisionRecall r;
  r.k = k;
  r.precision = share_inside(candidate, reference, knn_radii_sq(reference, k));
  r.recall = share_inside(reference, candidate, knn_radii_sq(candidate, k));
  return r;
}

double mean_pairwise_distance(const FeatureRows& x) {
  if (x.n < 2) return kNaN;
  // Per-row partial sums, then a serial sum in row order: the same total for any thread count.
  std::vector<double> rows(static_cast<size_t>(x.n), 0.0);
  parallel_for(x.n, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double s = 0.0;
      for (int64_t j = i + 1; j < x.n; ++j)
        s += std::sqrt(squared_distance(x.row(i), x.row(j), x.dim));
      rows[static_cast<size_t>(i)] = s;
    }
  });
  const double pairs = 0.5 * static_cast<double>(x.n) * static_cast<double>(x.n - 1);
  return std::accumulate(rows.begin(), rows.end(), 0.0) / pairs;
}

nlohmann::json DistributionMetrics::to_json() const {
  const auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"n_reference", n_reference},
          {"n_candidate", n_candidate},
          {"fid_ref", num(fid.fid)},
          {"fid_detail", fid.to_json()},
          {"kid_ref", num(kid.kid)},
          {"kid_detail", kid.to_json()},
          {"precision", num(pr.precision)},
          {"recall", num(pr.recall)},
          {"k", pr.k},
          {"diversity_reference", num(diversity_reference)},
          {"diversity_candidate", num(diversity_candidate)}};
}

DistributionMetrics distribution_metrics(const FeatureRows& reference, const FeatureRows& candidate,
                                         const DistributionOptions& o) {
  DUET_CHECK(reference.dim == candidate.dim, "distribution metrics: feature widths differ (",
             reference.dim, " vs ", candidate.dim, ")");
  DistributionMetrics m;
  m.n_reference = reference.n, m.n_candidate = candidate.n;
  const int64_t n = std::min(reference.n, candidate.n);
  if (n >= 2) {
    m.fid = fid_ref(reference, candidate);
    m.kid = kid_ref(reference, candidate, o.kid);
  } else {
    m.fid.fid = m.fid.mean_term = m.fid.trace_term = kNaN;
    m.kid.kid = m.kid.std = m.kid.std_error = kNaN;
  }
  m.pr.k = o.k;
  if (n > o.k) {
    m.pr = precision_recall(reference, candidate, o.k);
  } else {
    m.pr.precision = m.pr.recall = kNaN;
  }
  m.diversity_reference = mean_pairwise_distance(reference);
  m.diversity_candidate = mean_pairwise_distance(candidate);
  return m;
}

}  // namespace duet::eval
