// Distribution metrics (eval/distribution_metrics.h): FID-ref, KID-ref, precision / recall and
// diversity against NumPy values on fixed features (tests/golden/make_distribution_golden.py),
// closed forms (FID of a set with itself; FID between sets with exactly diagonal covariances),
// a brute-force KID twin, KID's unbiasedness on discrete distributions whose MMD^2 is known
// exactly, precision / recall on hand-built point sets, and identical results for 1, 2 and 3
// threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "duet/eval/distribution_metrics.h"
#include "duet/io/safetensors.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

using namespace duet;
using namespace duet::eval;

namespace {

const std::string kGolden =
    std::string(DUET_SOURCE_DIR) + "/tests/golden/distribution_golden.safetensors";

struct Golden {
  std::vector<float> a, b;
  int64_t na = 0, nb = 0, dim = 0;
  io::SafetensorsFile file;

  Golden() : file(io::SafetensorsFile::load(kGolden)) { a = floats("a", na), b = floats("b", nb); }
  std::vector<float> floats(const std::string& name, int64_t& rows) {
    const auto& e = file.at(name);
    EXPECT_EQ(e.dtype, DType::f32);
    rows = e.shape[0], dim = e.shape[1];
    std::vector<float> v(static_cast<size_t>(e.numel()));
    std::memcpy(v.data(), file.bytes(e).data(), e.nbytes);
    return v;
  }
  double scalar(const std::string& name) const {
    const auto& e = file.at(name);
    EXPECT_EQ(e.dtype, DType::f64);
    double v = 0.0;
    std::memcpy(&v, file.bytes(e).data(), sizeof v);
    return v;
  }
  FeatureRows rows_a() const { return {a.data(), na, dim}; }
  FeatureRows rows_b() const { return {b.data(), nb, dim}; }
};

std::vector<float> gaussian_rows(int64_t n, int64_t dim, uint64_t seed, float mean, float std) {
  std::vector<float> v(static_cast<size_t>(n * dim));
  Generator(seed).normal(v.data(), std::ssize(v), mean, std);
  return v;
}

// The plain formula, written independently of the library: unbiased MMD^2 with (x.y/F + 1)^3.
double twin_mmd2(const std::vector<std::vector<double>>& x,
                 const std::vector<std::vector<double>>& y) {
  const auto k = [](const std::vector<double>& p, const std::vector<double>& q) {
    double d = 0.0;
    for (size_t i = 0; i < p.size(); ++i) d += p[i] * q[i];
    return std::pow(d / static_cast<double>(p.size()) + 1.0, 3);
  };
  const double m = static_cast<double>(x.size()), n = static_cast<double>(y.size());
  double xx = 0, yy = 0, xy = 0;
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < x.size(); ++j)
      if (i != j) xx += k(x[i], x[j]);
  for (size_t i = 0; i < y.size(); ++i)
    for (size_t j = 0; j < y.size(); ++j)
      if (i != j) yy += k(y[i], y[j]);
  for (const auto& p : x)
    for (const auto& q : y) xy += k(p, q);
  return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n);
}

std::vector<std::vector<double>> pick(const FeatureRows& r, const std::vector<int64_t>& idx) {
  std::vector<std::vector<double>> out;
  for (int64_t i : idx) out.emplace_back(r.row(i), r.row(i) + r.dim);
  return out;
}

}  // namespace

TEST(FidRef, MatchesNumpyOnFixedFeatures) {
  const Golden g;
  const FidResult r = fid_ref(g.rows_a(), g.rows_b());
  EXPECT_NEAR(r.fid, g.scalar("fid"), 1e-9 * g.scalar("fid"));
  EXPECT_NEAR(r.fid, r.mean_term + r.trace_term, 1e-12 * r.fid);
  EXPECT_EQ(r.clamped, 0);  // full-rank covariances
}

TEST(FidRef, SetWithItselfIsZero) {
  const Golden g;
  const FidResult r = fid_ref(g.rows_a(), g.rows_a());
  // Relative to the scale of the trace term, tr(S) + tr(S).
  const FidResult scale = fid_ref(g.rows_a(), FeatureRows{g.b.data(), g.nb, g.dim});
  EXPECT_EQ(r.mean_term, 0.0);
  EXPECT_LT(std::abs(r.fid), 1e-9 * (scale.trace_term + 1.0));
  EXPECT_LT(std::abs(g.scalar("fid_self")), 1e-9);  // NumPy agrees that it is 0

  // 64-dim features, full rank (200 rows): 0 within 1e-9 of tr(S) + tr(S) = 128.
  const auto x = gaussian_rows(200, 64, 5, 0.3f, 1.0f);
  EXPECT_LT(std::abs(fid_ref({x.data(), 200, 64}, {x.data(), 200, 64}).fid), 1e-9 * 128.0);
  // More dimensions than rows (rank 39 of 64): the 25 zero eigenvalues come out as rounding noise
  // of about 1e-16 x the largest, whose square roots (about 1e-8 each) are what is left; the
  // clamp keeps them from turning into NaN.
  const FidResult d = fid_ref({x.data(), 40, 64}, {x.data(), 40, 64});
  EXPECT_LT(std::abs(d.fid), 1e-6 * 128.0);
}

TEST(FidRef, DiagonalCovarianceClosedForm) {
  // Rows mu +- c_i e_i (i = 0..F-1): the sample mean is mu and the sample covariance is exactly
  // diag(2 c_i^2 / (2F - 1)), so FID = |mu1 - mu2|^2 + sum_i (sigma1_i - sigma2_i)^2.
  constexpr int64_t F = 6, n = 2 * F;
  const auto make = [&](const std::vector<float>& mu, const std::vector<float>& c) {
    std::vector<float> rows;
    for (int64_t i = 0; i < F; ++i)
      for (float sign : {1.0f, -1.0f})
        for (int64_t j = 0; j < F; ++j) rows.push_back(mu[j] + (i == j ? sign * c[i] : 0.0f));
    return rows;
  };
  const std::vector<float> mu1 = {0, 1, 2, 0, 0, -1}, mu2 = {0.5, 1, 0, 0, 1, -1};
  const std::vector<float> c1 = {1, 2, 0.5, 3, 1, 0.25}, c2 = {2, 2, 1, 0.5, 1, 4};
  const auto x = make(mu1, c1), y = make(mu2, c2);
  double want = 0.0;
  for (int64_t i = 0; i < F; ++i) {
    const double s1 = std::sqrt(2.0 * c1[i] * c1[i] / (n - 1)),
                 s2 = std::sqrt(2.0 * c2[i] * c2[i] / (n - 1));
    want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + (s1 - s2) * (s1 - s2);
  }
  const FidResult r = fid_ref({x.data(), n, F}, {y.data(), n, F});
  EXPECT_NEAR(r.fid, want, 1e-12 * want);
}

TEST(KidRef, UnbiasedMmdMatchesNumpyOnWholeSets) {
  const Golden g;
  std::vector<int64_t> ia(g.na), ib(g.nb);
  for (int64_t i = 0; i < g.na; ++i) ia[i] = i;
  for (int64_t i = 0; i < g.nb; ++i) ib[i] = i;
  const double want = g.scalar("mmd2_full");
  EXPECT_NEAR(mmd2_unbiased(g.rows_a(), ia, g.rows_b(), ib), want, 1e-10 * std::abs(want));
  // With subsets as large as the smaller set (240 of 300 and of 240), KID's mean is not the
  // whole-set value, but a single subset of both whole sets is.
  const FeatureRows a240{g.a.data(), 240, g.dim};
  KidOptions o;
  o.subsets = 1, o.subset_size = 240;
  std::vector<int64_t> i240(240);
  for (int64_t i = 0; i < 240; ++i) i240[i] = i;
  EXPECT_NEAR(kid_ref(a240, g.rows_b(), o).kid, mmd2_unbiased(a240, i240, g.rows_b(), ib),
              1e-12 * std::abs(want));
}

TEST(KidRef, EqualsBruteForceTwinOverItsSubsets) {
  const auto x = gaussian_rows(120, 16, 1, 0.0f, 1.0f), y = gaussian_rows(90, 16, 2, 0.2f, 1.3f);
  const FeatureRows a{x.data(), 120, 16}, b{y.data(), 90, 16};
  KidOptions o;
  o.subsets = 7, o.subset_size = 30, o.seed = 99;
  const KidResult r = kid_ref(a, b, o);
  EXPECT_EQ(r.subsets, 7);
  EXPECT_EQ(r.subset_size, 30);
  std::vector<double> per;
  for (int64_t s = 0; s < o.subsets; ++s) {
    const auto ia = kid_subset(a.n, 30, o.seed, s, 0), ib = kid_subset(b.n, 30, o.seed, s, 1);
    ASSERT_EQ(std::set<int64_t>(ia.begin(), ia.end()).size(), 30u);  // distinct
    for (int64_t i : ia) ASSERT_TRUE(i >= 0 && i < a.n);
    for (int64_t i : ib) ASSERT_TRUE(i >= 0 && i < b.n);
    per.push_back(twin_mmd2(pick(a, ia), pick(b, ib)));
  }
  double mean = 0.0, ss = 0.0;
  for (double v : per) mean += v / static_cast<double>(per.size());
  for (double v : per) ss += (v - mean) * (v - mean);
  const double sd = std::sqrt(ss / (per.size() - 1.0));
  EXPECT_NEAR(r.kid, mean, 1e-12 * std::abs(mean) + 1e-14);
  EXPECT_NEAR(r.std, sd, 1e-9 * sd);
  EXPECT_NEAR(r.std_error, sd / std::sqrt(7.0), 1e-9 * sd);
  EXPECT_GT(sd, 0.0);
  // Default subset size: min(1000, n / 2) of the smaller set.
  EXPECT_EQ(kid_ref(a, b, {.subsets = 2, .subset_size = 0, .seed = 1}).subset_size, 45);
}

TEST(KidRef, UnbiasedOnDiscreteDistributionsWithKnownMmd) {
  // X uniform on 3 points, Y uniform on 3 others (2-dim): the population MMD^2 is the plain
  // average of kernel values over the support pairs (diagonal included, independent draws).
  const std::vector<std::array<float, 2>> px = {{{0, 0}}, {{1, 0}}, {{0, 2}}};
  const std::vector<std::array<float, 2>> py = {{{0, 0}}, {{1, 1}}, {{2, 0}}};
  const auto k = [](const std::array<float, 2>& p, const std::array<float, 2>& q) {
    return std::pow((double(p[0]) * q[0] + double(p[1]) * q[1]) / 2.0 + 1.0, 3);
  };
  const auto avg = [&](const auto& s, const auto& t) {
    double v = 0;
    for (const auto& p : s)
      for (const auto& q : t) v += k(p, q) / double(s.size() * t.size());
    return v;
  };
  const double pop = avg(px, px) + avg(py, py) - 2 * avg(px, py);
  // Expected bias of the V-statistic (self-pairs included) at subset size m:
  // (E k(x, x) - E k(x, x')) / m for each side.
  const auto self = [&](const auto& s) {
    double v = 0;
    for (const auto& p : s) v += k(p, p) / double(s.size());
    return v;
  };
  constexpr int64_t n = 4000, m = 4;
  const double bias = (self(px) - avg(px, px) + self(py) - avg(py, py)) / m;
  std::vector<float> x, y;
  Generator g(2024);
  for (int64_t i = 0; i < n; ++i) {
    const auto& p = px[g.next_below(3)];
    const auto& q = py[g.next_below(3)];
    x.insert(x.end(), p.begin(), p.end());
    y.insert(y.end(), q.begin(), q.end());
  }
  const KidResult r =
      kid_ref({x.data(), n, 2}, {y.data(), n, 2}, {.subsets = 10000, .subset_size = m, .seed = 3});
  // The tolerance covers the subset averaging (4 s.e.) and the finite sample of 4000 draws; the
  // biased estimator would sit `bias` away, far outside it.
  const double tol = 4 * r.std_error + 0.02 * std::abs(pop);
  EXPECT_NEAR(r.kid, pop, tol) << "pop " << pop << " s.e. " << r.std_error;
  EXPECT_GT(bias, 5 * tol);
}

TEST(KidRef, SameDistributionIsNearZeroDifferentIsNot) {
  const auto x = gaussian_rows(400, 8, 1, 0.0f, 1.0f), y = gaussian_rows(400, 8, 2, 0.0f, 1.0f),
             z = gaussian_rows(400, 8, 3, 0.5f, 1.0f);
  const KidOptions o{.subsets = 50, .subset_size = 100, .seed = 4};
  const KidResult same = kid_ref({x.data(), 400, 8}, {y.data(), 400, 8}, o);
  const KidResult diff = kid_ref({x.data(), 400, 8}, {z.data(), 400, 8}, o);
  EXPECT_LT(std::abs(same.kid), 4 * same.std + 1e-12);
  EXPECT_GT(diff.kid, 10 * std::abs(same.kid));
}

TEST(PrecisionRecall, HandBuiltLineWithBoundaries) {
  // Reference points 0..4 on a line; with k = 2 the radii are 2, 1, 1, 1, 2 (exact in float).
  const std::vector<float> ref = {0, 0, 1, 0, 2, 0, 3, 0, 4, 0};
  const FeatureRows r{ref.data(), 5, 2};
  EXPECT_EQ(knn_radii_sq(r, 2), (std::vector<double>{4, 1, 1, 1, 4}));
  EXPECT_EQ(knn_radii_sq(r, 1), (std::vector<double>{1, 1, 1, 1, 1}));
  // Candidates: -2 (on the boundary of 0's ball: inside), 2.5 (inside), 5.5 (inside 4's ball of
  // radius 2), 6.5 (outside). Their own k = 2 radii are 7.5, 4, 3, 4; -2's ball covers 0..4.
  const std::vector<float> cand = {-2, 0, 2.5, 0, 5.5, 0, 6.5, 0};
  const FeatureRows c{cand.data(), 4, 2};
  const PrecisionRecall pr = precision_recall(r, c, 2);
  EXPECT_EQ(pr.precision, 0.75);
  EXPECT_EQ(pr.recall, 1.0);
  // k = 1 (all reference radii 1): only 2.5 is inside. The candidates' radii are 4.5, 3, 1, 1, and
  // the ball of 2.5 (radius 3) covers every reference point.
  const PrecisionRecall pr1 = precision_recall(r, c, 1);
  EXPECT_EQ(pr1.precision, 0.25);
  EXPECT_EQ(pr1.recall, 1.0);
  // A far-away candidate cluster: nothing inside either way.
  const std::vector<float> far = {100, 0, 101, 0, 102, 0};
  const PrecisionRecall none = precision_recall(r, {far.data(), 3, 2}, 1);
  EXPECT_EQ(none.precision, 0.0);
  EXPECT_EQ(none.recall, 0.0);
  EXPECT_THROW(precision_recall(r, {far.data(), 3, 2}, 3), Error);  // needs more than k rows
}

TEST(PrecisionRecall, MatchesNumpyOnFixedFeatures) {
  const Golden g;
  const PrecisionRecall pr = precision_recall(g.rows_a(), g.rows_b(), 3);
  EXPECT_DOUBLE_EQ(pr.precision, g.scalar("precision"));
  EXPECT_DOUBLE_EQ(pr.recall, g.scalar("recall"));
}

TEST(Diversity, MeanPairwiseDistance) {
  const std::vector<float> line = {0, 3, 4};
  EXPECT_DOUBLE_EQ(mean_pairwise_distance({line.data(), 3, 1}), 8.0 / 3.0);
  EXPECT_TRUE(std::isnan(mean_pairwise_distance({line.data(), 1, 1})));
  const Golden g;
  EXPECT_NEAR(mean_pairwise_distance(g.rows_a()), g.scalar("diversity_a"), 1e-12);
  EXPECT_NEAR(mean_pairwise_distance(g.rows_b()), g.scalar("diversity_b"), 1e-12);
}

TEST(DistributionMetrics, IdenticalForOneTwoAndThreeThreads) {
  const auto x = gaussian_rows(300, 16, 11, 0.0f, 1.0f), y = gaussian_rows(257, 16, 12, 0.1f, 1.2f);
  const FeatureRows a{x.data(), 300, 16}, b{y.data(), 257, 16};
  const DistributionOptions o{.kid = {.subsets = 20, .subset_size = 0, .seed = 5}, .k = 3};
  const int saved = num_threads();
  std::vector<nlohmann::json> runs;
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    runs.push_back(distribution_metrics(a, b, o).to_json());
  }
  set_num_threads(saved);
  EXPECT_EQ(runs[0].dump(), runs[1].dump());  // dump prints doubles round-trip exactly
  EXPECT_EQ(runs[0].dump(), runs[2].dump());
  EXPECT_GT(runs[0]["kid_detail"]["std"].get<double>(), 0.0);
}

TEST(DistributionMetrics, TooFewRowsGiveNaNNotErrors) {
  const std::vector<float> one = {1, 2}, three = {0, 0, 1, 1, 2, 0};
  const auto m = distribution_metrics({one.data(), 1, 2}, {three.data(), 3, 2});
  EXPECT_TRUE(std::isnan(m.fid.fid));
  EXPECT_TRUE(std::isnan(m.kid.kid));
  EXPECT_TRUE(std::isnan(m.pr.precision));
  EXPECT_TRUE(m.to_json()["fid_ref"].is_null());
  EXPECT_THROW(fid_ref({one.data(), 1, 2}, {three.data(), 3, 2}), Error);
  EXPECT_THROW(distribution_metrics({one.data(), 1, 2}, {three.data(), 2, 3}), Error);
}
