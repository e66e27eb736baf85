// The judge's distribution report (eval/distribution_report.h) on a hand-made judgement with a
// stand-in reference network (features: mean and std of the normalised pixels, 3 x the mean):
// per class and pooled metrics equal distribution_metrics on directly computed features of the
// same images; the floor uses the other set's first images of each class, or skips the ones the
// judge compares against; reusing the judge's features changes nothing; a reference network
// that takes other images is a usage error.
#include <gtest/gtest.h>

#include <cmath>

#include "duet/eval/distribution_report.h"
#include "duet/eval/reference_version.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

using namespace duet;
using namespace duet::eval;

namespace {

constexpr int64_t kClasses = 2, kPer = 6, kSize = 4;

class PixelStats : public models::Classifier {
 public:
  PixelStats() : Classifier("PixelStats") {}
  Tensor features(const Tensor& x) override {
    const int64_t n = x.dim(0), per = x.numel() / n;
    const auto v = x.to_vector();
    std::vector<float> f;
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0, ss = 0.0;
      for (int64_t j = 0; j < per; ++j) s += v[i * per + j];
      const double m = s / per;
      for (int64_t j = 0; j < per; ++j) ss += (v[i * per + j] - m) * (v[i * per + j] - m);
      f.insert(f.end(), {float(m), float(std::sqrt(ss / per)), float(3 * m)});
    }
    return Tensor::from_vector(f, Shape{n, 3});
  }
  Tensor logits(const Tensor& f) override { return f; }
};

nlohmann::json config(int64_t size = kSize) {
  return {{"in_channels", 1},
          {"image_size", size},
          {"num_classes", kClasses},
          {"preprocess", {{"mean", {0.5}}, {"std", {0.25}}}}};
}

// `per_class` random images of each class, classes interleaved.
data::Dataset dataset(int64_t per_class, uint64_t seed) {
  data::Dataset d;
  d.class_names = {"a", "b"};
  d.channels = 1, d.height = kSize, d.width = kSize;
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < per_class * kClasses; ++i) labels.push_back(static_cast<int32_t>(i % 2));
  const int64_t n = std::ssize(labels);
  d.labels = Tensor::from_vector(labels, Shape{n});
  d.images = Tensor::empty(Shape{n, 1, kSize, kSize}, DType::u8);
  Generator g(seed);
  for (int64_t i = 0; i < d.images.numel(); ++i)
    d.images.data<uint8_t>()[i] = static_cast<uint8_t>(g.next_below(256));
  return d;
}

Judgement judgement() {
  Judgement j;
  j.num_classes = kClasses, j.per_class = kPer;
  j.images = Tensor::empty(Shape{kClasses * kPer, 1, kSize, kSize});
  Generator(5).uniform(j.images.data<float>(), j.images.numel(), -1.0f, 1.0f);
  return j;
}

// Features of images idx of d, computed directly.
std::vector<float> direct(PixelStats& net, const data::Dataset& d,
                          const std::vector<int64_t>& idx) {
  return features_of_u8(net, config(), data::subset(d, idx), 100);
}

void expect_same(const DistributionMetrics& got, const DistributionMetrics& want) {
  EXPECT_EQ(got.n_reference, want.n_reference);
  EXPECT_EQ(got.n_candidate, want.n_candidate);
  EXPECT_DOUBLE_EQ(got.fid.fid, want.fid.fid);
  EXPECT_EQ(got.pr.precision, want.pr.precision);
  EXPECT_EQ(got.pr.recall, want.pr.recall);
  EXPECT_DOUBLE_EQ(got.diversity_reference, want.diversity_reference);
  EXPECT_DOUBLE_EQ(got.diversity_candidate, want.diversity_candidate);
  EXPECT_TRUE(std::isfinite(got.kid.kid));
  EXPECT_EQ(got.kid.subset_size, want.kid.subset_size);
}

}  // namespace

TEST(DistributionReport, MatchesDirectMetricsPerClassPooledAndFloor) {
  PixelStats net;
  const Judgement j = judgement();
  const data::Dataset real = dataset(9, 1), other = dataset(8, 2);
  DistributionReportOptions o;
  o.batch = 5;  // several reference batches
  o.metrics.k = 2;
  const DistributionReport r =
      distribution_report(j, net, config(), real, other, o, nullptr, -1.0f, 1.0f);
  ASSERT_EQ(r.classes.size(), 2u);
  EXPECT_EQ(r.feature_dim, 3);
  const std::vector<float> gen = features_of_generated(net, config(), j.images, -1.0f, 1.0f, 100);
  std::vector<float> all_real, all_floor;
  for (int32_t c = 0; c < kClasses; ++c) {
    const auto ri = class_indices(real, c, 0, kPer), fi = class_indices(other, c, 0, kPer);
    ASSERT_EQ(ri.size(), 6u);
    EXPECT_EQ(ri.front(), c);  // classes interleave: the first image of class c is image c
    const auto rf = direct(net, real, ri), ff = direct(net, other, fi);
    all_real.insert(all_real.end(), rf.begin(), rf.end());
    all_floor.insert(all_floor.end(), ff.begin(), ff.end());
    const FeatureRows ref{rf.data(), 6, 3};
    expect_same(r.classes[c],
                distribution_metrics(ref, {gen.data() + c * kPer * 3, kPer, 3}, o.metrics));
    expect_same(r.floor_classes[c], distribution_metrics(ref, {ff.data(), 6, 3}, o.metrics));
  }
  const FeatureRows pooled{all_real.data(), 12, 3};
  expect_same(r.overall, distribution_metrics(pooled, {gen.data(), 12, 3}, o.metrics));
  expect_same(r.floor, distribution_metrics(pooled, {all_floor.data(), 12, 3}, o.metrics));
  EXPECT_GT(r.classes[0].fid.fid, 0.0);

  // Given features are used as they are: the same report.
  const DistributionReport again =
      distribution_report(j, net, config(), real, other, o, &gen, -1.0f, 1.0f);
  EXPECT_EQ(again.to_json({"a", "b"}).dump(), r.to_json({"a", "b"}).dump());
  EXPECT_EQ(r.to_json({"a", "b"})["classes"][1]["name"], "b");
}

TEST(DistributionReport, FloorFromTheSameSetSkipsTheComparedImages) {
  PixelStats net;
  const Judgement j = judgement();
  const data::Dataset real = dataset(12, 3);
  DistributionReportOptions o;
  o.floor_skip = kPer;
  o.metrics.k = 2;
  const DistributionReport r = distribution_report(j, net, config(), real, real, o, nullptr, -1, 1);
  for (int32_t c = 0; c < kClasses; ++c) {
    const auto ri = class_indices(real, c, 0, kPer), fi = class_indices(real, c, kPer, kPer);
    ASSERT_EQ(fi.size(), 6u);
    EXPECT_EQ(fi.front(), ri.back() + 2);  // the next image of the class
    const auto rf = direct(net, real, ri), ff = direct(net, real, fi);
    expect_same(r.floor_classes[c],
                distribution_metrics({rf.data(), 6, 3}, {ff.data(), 6, 3}, o.metrics));
  }
}

TEST(DistributionReport, ReferenceTakingOtherImagesIsAUsageError) {
  PixelStats net;
  const data::Dataset real = dataset(9, 1);
  try {
    distribution_report(judgement(), net, config(8), real, real, {}, nullptr, -1, 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
  }
}

TEST(DistributionReport, OnlyAReleasedReferenceHasAVersion) {
  EXPECT_EQ(duet::eval::reference_version(duet::eval::kReferenceV1Sha256), "v1");
  EXPECT_EQ(duet::eval::reference_version(std::string(64, '0')), "");
  EXPECT_EQ(duet::eval::reference_version(""), "");
}
