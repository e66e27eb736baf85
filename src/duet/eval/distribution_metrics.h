// Distances between two sets of feature vectors (rows of [n, F], e.g. a reference network's
// penultimate features of real and generated images): FID-ref, KID-ref, k-NN precision / recall
// and diversity. "-ref" because the features come from our reference network, not Inception, so
// the numbers are comparable with each other but not with published FID / KID values.
// Every result is a function of the inputs and the seed alone, whatever the thread count.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace duet::eval {

// A read-only view of n rows of `dim` floats, row-major (as Judgement::features holds them).
struct FeatureRows {
  const float* data = nullptr;
  int64_t n = 0, dim = 0;
  const float* row(int64_t i) const { return data + i * dim; }
};

// Fréchet distance between Gaussians fitted to the two sets (means, covariances with n - 1):
// |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}), all in double. The trace of the matrix
// square root is taken as sum_i sqrt(lambda_i) over the eigenvalues of the symmetric PSD matrix
// S1^{1/2} S2 S1^{1/2} (same spectrum as S1 S2, but symmetric, so a symmetric eigen-solver
// applies and no complex parts appear). Eigenvalues of S1 and of that product which rounding (or
// fewer rows than dimensions) makes slightly negative are clamped to 0 and counted.
struct FidResult {
  double fid = 0.0;
  double mean_term = 0.0;   // |mu1 - mu2|^2
  double trace_term = 0.0;  // tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})
  int64_t clamped = 0;      // negative eigenvalues clamped to 0
  double most_negative = 0.0;
  nlohmann::json to_json() const;  // {"fid", "mean_term", "trace_term", "clamped"}
};
// Error unless both sets have >= 2 rows and the same width.
FidResult fid_ref(const FeatureRows& a, const FeatureRows& b);

// KID: the unbiased estimate of MMD^2 with the polynomial kernel k(x, y) = (x.y / F + 1)^3,
// averaged over `subsets` random subsets of m rows of each set (drawn without replacement).
// m = subset_size, capped at the smaller set; 0 picks min(1000, n / 2) with n the smaller set,
// so that subsets differ (at m = n every subset is the whole set and the spread is zero).
struct KidOptions {
  int64_t subsets = 100;
  int64_t subset_size = 0;
  uint64_t seed = 0;
};
struct KidResult {
  double kid = 0.0;        // mean over subsets
  double std = 0.0;        // standard deviation over subsets (n - 1); 0 for one subset
  double std_error = 0.0;  // std / sqrt(subsets): the Monte-Carlo error of the mean
  int64_t subsets = 0, subset_size = 0;
  nlohmann::json to_json() const;  // {"kid", "std", "std_error", "subsets", "subset_size"}
};
// Error unless both sets have >= 2 rows, the same width, and options are sensible.
KidResult kid_ref(const FeatureRows& a, const FeatureRows& b, const KidOptions& options = {});
// The row indices of subset `subset` of one side (0: a, 1: b) that kid_ref uses: m distinct
// indices of [0, n), from a Philox stream keyed by (seed, subset, side). Exposed for tests.
std::vector<int64_t> kid_subset(int64_t n, int64_t m, uint64_t seed, int64_t subset, int side);
// Unbiased MMD^2 between the rows `ia` of a and `ib` of b (each >= 2 distinct rows).
double mmd2_unbiased(const FeatureRows& a, const std::vector<int64_t>& ia, const FeatureRows& b,
                     const std::vector<int64_t>& ib);

// Improved precision and recall (Kynkäänniemi et al. 2019). Each point's radius is the distance
// to its k-th nearest neighbour within its own set (itself excluded); a set's manifold is the
// union of its points' balls (boundary included). With `reference` the real set:
// precision = share of `candidate` rows inside the reference manifold (fidelity),
// recall = share of `reference` rows inside the candidate manifold (coverage).
// Brute force O(n^2 F) in double, rows split over threads.
struct PrecisionRecall {
  double precision = 0.0, recall = 0.0;
  int64_t k = 3;
  nlohmann::json to_json() const;  // {"precision", "recall", "k"}
};
// Error unless both sets have more than k rows and the same width.
PrecisionRecall precision_recall(const FeatureRows& reference, const FeatureRows& candidate,
                                 int64_t k = 3);
// Squared distance from each row to its k-th nearest other row of the same set (k < n).
std::vector<double> knn_radii_sq(const FeatureRows& x, int64_t k);

// Diversity of a set: the mean Euclidean distance over all pairs of distinct rows (i < j), in
// double; NaN when n < 2. Compared between generated and real images of one class, a value far
// below the real one flags a collapsed class.
double mean_pairwise_distance(const FeatureRows& x);

// All of the above for one pair of sets; metrics that need more rows than a set has are NaN.
struct DistributionOptions {
  KidOptions kid;
  int64_t k = 3;  // precision / recall neighbourhood
};
struct DistributionMetrics {
  int64_t n_reference = 0, n_candidate = 0;
  FidResult fid;
  KidResult kid;
  PrecisionRecall pr;
  double diversity_reference = 0.0, diversity_candidate = 0.0;
  nlohmann::json to_json() const;
};
DistributionMetrics distribution_metrics(const FeatureRows& reference, const FeatureRows& candidate,
                                         const DistributionOptions& options = {});

}  // namespace duet::eval
