#include "duet/eval/judge.h"

#include <algorithm>
#include <cstring>

#include "duet/autograd/autograd.h"
#include "duet/gen/guidance.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/trainer.h"

namespace duet::eval {
namespace {

// Batch b of a judge run draws its noise from its own Philox-derived seed, so batches are
// independent draws however many there are, and the run is a function of (seed, batch size).
uint64_t batch_seed(uint64_t seed, uint64_t batch_index) {
  constexpr uint64_t kJudgeStream = 0x6a756467;  // "judg": keeps these apart from other uses
  const auto w = philox4x32(batch_index, kJudgeStream, seed);
  return (static_cast<uint64_t>(w[0]) << 32) | w[1];
}

// Eval mode for the duration of a judge run; the previous modes come back even on errors.
class EvalModes {
 public:
  EvalModes(nn::Module& a, nn::Module& b)
      : a_(a), b_(b), a_training_(a.is_training()), b_training_(b.is_training()) {
    a.eval();
    b.eval();
  }
  ~EvalModes() {
    a_.train(a_training_);
    b_.train(b_training_);
  }
  EvalModes(const EvalModes&) = delete;
  EvalModes& operator=(const EvalModes&) = delete;

 private:
  nn::Module &a_, &b_;
  bool a_training_, b_training_;
};

// Normalises x01 values in place, channel by channel.
void normalise(float* x, int64_t n, int64_t c, int64_t hw, const data::NormStats& norm) {
  if (norm.mean.empty()) return;
  DUET_CHECK(std::ssize(norm.mean) == c && std::ssize(norm.std) == c, "judge: ", norm.mean.size(),
             " normalisation means for ", c, " channels");
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      float* p = x + (i * c + ch) * hw;
      const float m = norm.mean[static_cast<size_t>(ch)], s = norm.std[static_cast<size_t>(ch)];
      for (int64_t j = 0; j < hw; ++j) p[j] = (p[j] - m) / s;
    }
}

// Features [n, F] and probabilities [n, k] of one batch, appended to `features` and `probs`.
void classify(models::Classifier& classifier, const Tensor& input, int64_t k, int64_t& dim,
              std::vector<float>& features, std::vector<float>* probs) {
  const Tensor f = classifier.features(input);
  DUET_CHECK(f.rank() == 2 && f.dim(0) == input.dim(0), "judge: classifier features have shape ",
             f.shape().str(), ", expected [", input.dim(0), ", F]");
  if (dim == 0) dim = f.dim(1);
  DUET_CHECK(f.dim(1) == dim, "judge: classifier feature width changed from ", dim, " to ",
             f.dim(1));
  const std::vector<float> fv = f.to_vector();
  features.insert(features.end(), fv.begin(), fv.end());
  if (!probs) return;
  const Tensor logits = classifier.logits(f);
  DUET_CHECK(logits.rank() == 2 && logits.dim(1) == k, "judge: classifier logits have shape ",
             logits.shape().str(), ", expected [", input.dim(0), ", ", k, "]");
  const std::vector<float> p = ops::softmax(logits).to_vector();
  probs->insert(probs->end(), p.begin(), p.end());
}

}  // namespace

Tensor to_classifier_input(const Tensor& images, const data::NormStats& norm, float lo, float hi) {
  DUET_CHECK(images.rank() == 4, "judge: images must be [N, C, H, W], got ", images.shape().str());
  DUET_CHECK(hi > lo, "judge: value range needs lo < hi, got [", lo, ", ", hi, "]");
  const std::vector<float> v = images.to_vector();
  Tensor out = Tensor::empty(images.shape());
  float* x = out.data<float>();
  const float scale = 1.0f / (hi - lo);
  for (size_t i = 0; i < v.size(); ++i) x[i] = std::clamp((v[i] - lo) * scale, 0.0f, 1.0f);
  normalise(x, images.dim(0), images.dim(1), images.dim(2) * images.dim(3), norm);
  return out;
}

Tensor u8_to_classifier_input(const uint8_t* pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                              const data::NormStats& norm) {
  Tensor out = Tensor::empty(Shape{n, c, h, w});
  float* x = out.data<float>();
  for (int64_t i = 0; i < out.numel(); ++i) x[i] = static_cast<float>(pixels[i]) / 255.0f;
  normalise(x, n, c, h * w, norm);
  return out;
}

std::pair<float, float> value_range(const nlohmann::json& config) {
  if (!config.contains("value_range")) return {-1.0f, 1.0f};
  const auto& v = config.at("value_range");
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number() ||
      !(v[1].get<double>() > v[0].get<double>()))
    fail("model config: field 'value_range' must be [lo, hi] with lo < hi, got ", v.dump());
  return {v[0].get<float>(), v[1].get<float>()};
}

data::Dataset load_real_images(const JudgeOptions& o, int64_t c, int64_t s, int64_t k) {
  data::Dataset d;
  if (o.real) {
    d = *o.real;
  } else {
    data::DataOptions opt;
    opt.split = o.split;
    opt.channels = c, opt.height = s, opt.width = s;
    d = data::load_dataset(o.data, opt);
  }
  if (d.channels != c || d.height != s || d.width != s) d = data::conform(d, c, s, s);
  if (d.num_classes() != k)
    fail_usage("judge: the real data (", o.real ? "in memory" : o.data, ") has ", d.num_classes(),
               " classes; the generator has ", k);
  return d;
}

void validate_judge(const models::UNet& generator, gen::Objective objective,
                    const nlohmann::json& classifier_config, const JudgeOptions& o) {
  const auto& g = generator.config();
  const int64_t k = g.num_classes, c = g.in_channels, s = g.image_size;
  if (o.per_class < 1 || o.per_class > 100000)
    fail_usage("judge: images per class must be in [1, 100000], got ", o.per_class);
  if (o.batch < 1) fail_usage("judge: batch must be >= 1, got ", o.batch);
  if (!(o.hi > o.lo)) fail_usage("judge: value range needs lo < hi, got [", o.lo, ", ", o.hi, "]");
  const int64_t cc = classifier_config.value("in_channels", 1),
                cs = classifier_config.value("image_size", 28),
                ck = classifier_config.value("num_classes", 10);
  if (cc != c || cs != s)
    fail_usage("judge: the classifier takes ", cc, "x", cs, "x", cs,
               " images, the generator makes ", c, "x", s, "x", s);
  if (ck != k) fail_usage("judge: the classifier knows ", ck, " classes, the generator ", k);
  gen::validate(o.sample, objective);
}

Judgement judge_generator(models::UNet& generator, gen::Objective objective,
                          models::Classifier& classifier, const nlohmann::json& classifier_config,
                          const JudgeOptions& o) {
  validate_judge(generator, objective, classifier_config, o);
  const auto& g = generator.config();
  const int64_t k = g.num_classes, c = g.in_channels, s = g.image_size;
  gen::SampleOptions sample = o.sample;
  sample.on_step = nullptr;
  const data::NormStats norm = train::model_norm_stats(classifier_config);
  const data::Dataset real = load_real_images(o, c, s, k);  // before generating: errors come early

  EvalModes modes(generator, classifier);
  autograd::NoGradGuard no_grad;
  Judgement j;
  j.num_classes = k, j.per_class = o.per_class, j.seed = o.seed;
  const int64_t n = k * o.per_class, image = c * s * s;
  for (int32_t cls = 0; cls < k; ++cls) j.labels.insert(j.labels.end(), o.per_class, cls);
  j.images = Tensor::empty(Shape{n, c, s, s});
  for (int64_t b0 = 0, b = 0; b0 < n; b0 += o.batch, ++b) {
    const int64_t b1 = std::min(n, b0 + o.batch);
    const std::vector<int32_t> labels(j.labels.begin() + b0, j.labels.begin() + b1);
    const Tensor x =
        o.draw ? o.draw(labels, batch_seed(o.seed, b))
               : gen::generate(generator, objective, labels, o.cfg, sample, batch_seed(o.seed, b));
    std::memcpy(j.images.data<float>() + b0 * image, x.data<float>(),
                static_cast<size_t>((b1 - b0) * image) * sizeof(float));
    classify(classifier, to_classifier_input(x, norm, o.lo, o.hi), k, j.feature_dim, j.features,
             &j.probs);
    if (o.on_batch) o.on_batch(b1, n);
  }

  j.metrics = train::classify_metrics(j.probs.data(), j.labels.data(), n, k);
  j.classes.resize(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i) {
    const float* p = j.probs.data() + i * k;
    const int32_t want = j.labels[static_cast<size_t>(i)];
    auto& cj = j.classes[static_cast<size_t>(want)];
    cj.mean_confidence += p[train::argmax_row(j.probs.data(), i, k)];
    cj.mean_p_requested += p[want];
  }
  const int64_t dim = j.feature_dim;
  for (int64_t cls = 0; cls < k; ++cls) {
    auto& cj = j.classes[static_cast<size_t>(cls)];
    j.mean_confidence += cj.mean_confidence / static_cast<double>(n);
    j.mean_p_requested += cj.mean_p_requested / static_cast<double>(n);
    cj.mean_confidence /= static_cast<double>(o.per_class);
    cj.mean_p_requested /= static_cast<double>(o.per_class);
    cj.accuracy = j.metrics.class_accuracy[static_cast<size_t>(cls)];
    cj.generated = feature_stats(j.features.data() + cls * o.per_class * dim, o.per_class, dim);

    // The first per_class real images of this class, in data set order.
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < real.size() && std::ssize(idx) < o.per_class; ++i)
      if (real.label(i) == cls) idx.push_back(i);
    const data::Dataset rc = data::subset(real, idx);
    std::vector<float> rf;
    for (int64_t b0 = 0; b0 < rc.size(); b0 += o.batch) {
      const int64_t b1 = std::min(rc.size(), b0 + o.batch);
      classify(classifier, u8_to_classifier_input(rc.image(b0), b1 - b0, c, s, s, norm), k,
               j.feature_dim, rf, nullptr);
    }
    cj.real = feature_stats(rf.data(), rc.size(), dim);
    cj.mean_distance = mean_distance(cj.real, cj.generated);
  }
  return j;
}

Tensor Judgement::first_columns(int64_t columns) const {
  const int64_t image = images.numel() / images.dim(0);
  Tensor out =
      Tensor::empty(Shape{num_classes * columns, images.dim(1), images.dim(2), images.dim(3)});
  for (int64_t c = 0; c < num_classes; ++c)
    std::memcpy(out.data<float>() + c * columns * image,
                images.data<float>() + c * per_class * image,
                static_cast<size_t>(columns * image) * sizeof(float));
  return out;
}

nlohmann::json Judgement::to_json(const std::vector<std::string>& names) const {
  nlohmann::json per = nlohmann::json::array();
  for (size_t i = 0; i < classes.size(); ++i) {
    const auto& cj = classes[i];
    per.push_back({{"class", i},
                   {"name", i < names.size() ? names[i] : std::to_string(i)},
                   {"accuracy", cj.accuracy},
                   {"confidence", cj.mean_confidence},
                   {"p_requested", cj.mean_p_requested},
                   {"generated", cj.generated.to_json()},
                   {"real", cj.real.to_json()},
                   {"mean_distance", cj.mean_distance}});
  }
  nlohmann::json confusion = nlohmann::json::array();
  for (int64_t t = 0; t < num_classes; ++t) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t p = 0; p < num_classes; ++p) row.push_back(metrics.confusion_at(t, p));
    confusion.push_back(row);
  }
  return {{"num_classes", num_classes},
          {"per_class", per_class},
          {"images", metrics.count},
          {"seed", seed},
          {"feature_dim", feature_dim},
          {"accuracy", metrics.accuracy},
          {"confidence", mean_confidence},
          {"p_requested", mean_p_requested},
          {"loss", metrics.mean_loss},
          {"ece", metrics.ece},
          {"classes", per},
          {"confusion", confusion}};
}

}  // namespace duet::eval
