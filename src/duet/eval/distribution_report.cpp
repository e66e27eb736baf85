#include "duet/eval/distribution_report.h"

#include <algorithm>

#include "duet/autograd/autograd.h"
#include "duet/eval/reference_version.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/trainer.h"

namespace duet::eval {
namespace {

// Eval mode while features are extracted; the previous mode comes back even on errors.
class EvalMode {
 public:
  explicit EvalMode(nn::Module& m) : m_(m), training_(m.is_training()) { m.eval(); }
  ~EvalMode() { m_.train(training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  nn::Module& m_;
  bool training_;
};

void append_features(models::Classifier& reference, const Tensor& input, int64_t& dim,
                     std::vector<float>& out) {
  const Tensor f = reference.features(input);
  DUET_CHECK(f.rank() == 2 && f.dim(0) == input.dim(0), "reference network: features have shape ",
             f.shape().str(), ", expected [", input.dim(0), ", F]");
  if (dim == 0) dim = f.dim(1);
  DUET_CHECK(f.dim(1) == dim, "reference network: feature width changed from ", dim, " to ",
             f.dim(1));
  const std::vector<float> v = f.to_vector();
  out.insert(out.end(), v.begin(), v.end());
}

// Distinct KID seeds for each comparison of one report.
uint64_t comparison_seed(uint64_t seed, uint64_t index) {
  constexpr uint64_t kReportStream = 0x64697374;  // "dist"
  const auto w = philox4x32(index, kReportStream, seed);
  return (static_cast<uint64_t>(w[0]) << 32) | w[1];
}

FeatureRows rows_of(const std::vector<float>& f, int64_t begin, int64_t n, int64_t dim) {
  return {f.data() + begin * dim, n, dim};
}

}  // namespace

std::vector<float> features_of_u8(models::Classifier& reference, const nlohmann::json& config,
                                  const data::Dataset& d, int64_t batch) {
  DUET_CHECK(batch >= 1, "reference features: batch must be >= 1, got ", batch);
  EvalMode mode(reference);
  autograd::NoGradGuard no_grad;
  const data::NormStats norm = train::model_norm_stats(config);
  std::vector<float> out;
  int64_t dim = 0;
  for (int64_t b0 = 0; b0 < d.size(); b0 += batch) {
    const int64_t b1 = std::min(d.size(), b0 + batch);
    append_features(
        reference,
        u8_to_classifier_input(d.image(b0), b1 - b0, d.channels, d.height, d.width, norm), dim,
        out);
  }
  return out;
}

std::vector<float> features_of_generated(models::Classifier& reference,
                                         const nlohmann::json& config, const Tensor& images,
                                         float lo, float hi, int64_t batch) {
  DUET_CHECK(batch >= 1, "reference features: batch must be >= 1, got ", batch);
  DUET_CHECK(images.rank() == 4, "reference features: images must be [N, C, H, W], got ",
             images.shape().str());
  EvalMode mode(reference);
  autograd::NoGradGuard no_grad;
  const data::NormStats norm = train::model_norm_stats(config);
  const int64_t n = images.dim(0);
  std::vector<float> out;
  int64_t dim = 0;
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t b1 = std::min(n, b0 + batch);
    append_features(reference, to_classifier_input(images.slice(0, b0, b1), norm, lo, hi), dim,
                    out);
  }
  return out;
}

std::vector<int64_t> class_indices(const data::Dataset& d, int32_t cls, int64_t skip,
                                   int64_t count) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < d.size() && std::ssize(idx) < count; ++i)
    if (d.label(i) == cls && skip-- <= 0) idx.push_back(i);
  return idx;
}

DistributionReport distribution_report(const Judgement& j, models::Classifier& reference,
                                       const nlohmann::json& config, const data::Dataset& real,
                                       const data::Dataset& floor_set,
                                       const DistributionReportOptions& o,
                                       const std::vector<float>* generated, float lo, float hi) {
  const int64_t k = j.num_classes, per = j.per_class, n = k * per;
  DUET_CHECK(j.images.rank() == 4 && j.images.dim(0) == n,
             "distribution report: the judgement holds ", j.images.shape().str(),
             " images, expected ", n);
  const int64_t c = j.images.dim(1), s = j.images.dim(2);
  const int64_t rc = config.value("in_channels", 1), rs = config.value("image_size", 28);
  if (rc != c || rs != s)
    fail_usage("reference network takes ", rc, "x", rs, "x", rs, " images, the generator makes ", c,
               "x", s, "x", s);
  for (const auto* d : {&real, &floor_set})
    if (d->channels != c || d->height != s || d->width != s || d->num_classes() != k)
      fail_usage("distribution report: real images are ", d->channels, "x", d->height, "x",
                 d->width, " in ", d->num_classes(), " classes; expected ", c, "x", s, "x", s,
                 " in ", k);

  DistributionReport r;
  // The reference (real) and floor images, class-major, with each class's row range.
  std::vector<int64_t> real_idx, floor_idx, real_begin, floor_begin;
  for (int32_t cls = 0; cls < k; ++cls) {
    real_begin.push_back(std::ssize(real_idx));
    floor_begin.push_back(std::ssize(floor_idx));
    const auto ri = class_indices(real, cls, 0, per),
               fi = class_indices(floor_set, cls, o.floor_skip, per);
    real_idx.insert(real_idx.end(), ri.begin(), ri.end());
    floor_idx.insert(floor_idx.end(), fi.begin(), fi.end());
  }
  real_begin.push_back(std::ssize(real_idx));
  floor_begin.push_back(std::ssize(floor_idx));
  const std::vector<float> rf =
      features_of_u8(reference, config, data::subset(real, real_idx), o.batch);
  const std::vector<float> ff =
      features_of_u8(reference, config, data::subset(floor_set, floor_idx), o.batch);
  std::vector<float> own;
  if (!generated) own = features_of_generated(reference, config, j.images, lo, hi, o.batch);
  const std::vector<float>& gf = generated ? *generated : own;
  const int64_t dim = real_idx.empty() ? 0 : std::ssize(rf) / std::ssize(real_idx);
  DUET_CHECK(dim >= 1 && std::ssize(gf) == n * dim && std::ssize(ff) == std::ssize(floor_idx) * dim,
             "distribution report: feature sizes disagree (", gf.size(), " generated, ", rf.size(),
             " real, ", ff.size(), " floor values)");
  r.feature_dim = dim;

  uint64_t comparison = 0;
  const auto compare = [&](const FeatureRows& ref, const FeatureRows& cand) {
    DistributionOptions m = o.metrics;
    m.kid.seed = comparison_seed(o.seed, comparison++);
    return distribution_metrics(ref, cand, m);
  };
  for (int64_t cls = 0; cls < k; ++cls) {
    const auto i = static_cast<size_t>(cls);
    const FeatureRows ref = rows_of(rf, real_begin[i], real_begin[i + 1] - real_begin[i], dim);
    r.classes.push_back(compare(ref, rows_of(gf, cls * per, per, dim)));
    r.floor_classes.push_back(
        compare(ref, rows_of(ff, floor_begin[i], floor_begin[i + 1] - floor_begin[i], dim)));
  }
  const FeatureRows all_real = rows_of(rf, 0, std::ssize(real_idx), dim);
  r.overall = compare(all_real, rows_of(gf, 0, n, dim));
  r.floor = compare(all_real, rows_of(ff, 0, std::ssize(floor_idx), dim));
  return r;
}

nlohmann::json DistributionReport::to_json(const std::vector<std::string>& names) const {
  nlohmann::json per = nlohmann::json::array();
  for (size_t i = 0; i < classes.size(); ++i)
    per.push_back({{"class", i},
                   {"name", i < names.size() ? names[i] : std::to_string(i)},
                   {"generated", classes[i].to_json()},
                   {"floor", floor_classes[i].to_json()}});
  const std::string version = reference_version(reference_sha256);
  return {{"reference",
           {{"path", reference_path},
            {"sha256", reference_sha256},
            {"version", version.empty() ? nlohmann::json() : nlohmann::json(version)},
            {"is_judge", reference_is_judge},
            {"feature_dim", feature_dim}}},
          {"floor_source", floor_source},
          {"overall", overall.to_json()},
          {"floor", floor.to_json()},
          {"classes", per}};
}

}  // namespace duet::eval
