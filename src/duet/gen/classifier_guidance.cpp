#include "duet/gen/classifier_guidance.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "duet/autograd/autograd.h"
#include "duet/gen/guidance.h"
#include "duet/ops/loss.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

namespace duet::gen {
namespace {

// Switches the parameters' gradient recording off for a scope and back on after (also when the
// classifier throws), so an input gradient never touches the weights' .grad.
class FrozenParameters {
 public:
  explicit FrozenParameters(nn::Module& m) {
    for (Tensor* p : m.parameters()) {
      saved_.emplace_back(p, autograd::requires_grad(*p));
      if (saved_.back().second) autograd::set_requires_grad(*p, false);
    }
  }
  ~FrozenParameters() {
    for (auto& [p, on] : saved_)
      if (on) autograd::set_requires_grad(*p, true);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<std::pair<Tensor*, bool>> saved_;
};

// Eval mode for a scope; the previous mode comes back.
class EvalScope {
 public:
  explicit EvalScope(nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalScope() { m_.train(was_training_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  nn::Module& m_;
  bool was_training_;
};

// Which noise a classifier config's "noised" entry says it was trained on: true for the
// diffusion (cosine) schedule, false for flow. Usage Error naming `flag` when it is absent.
bool noised_with_diffusion(const nlohmann::json& config, const std::string& flag) {
  const auto it = config.find("noised");
  if (it == config.end() || !it->is_object())
    fail_usage(flag,
               ": the classifier was not trained on noised inputs (no 'noised' in its "
               "config); classifier guidance needs one trained with `duet train --task "
               "classify --noised flow`");
  const std::string schedule = it->value("schedule", std::string());
  if (schedule == "flow") return false;
  if (schedule == "ddpm") return true;
  fail_usage(flag, ": the classifier's config has noised.schedule '", schedule,
             "' (expected flow or ddpm)");
}

}  // namespace

InputMap classifier_input_map(const std::vector<float>& mean, const std::vector<float>& std,
                              float lo, float hi, int64_t channels) {
  DUET_CHECK(hi > lo, "classifier guidance: value range [", lo, ", ", hi, "] is empty");
  DUET_CHECK(mean.size() == std.size() && (mean.empty() || std::ssize(mean) == channels),
             "classifier guidance: ", mean.size(), " means and ", std.size(), " stds for ",
             channels, " channels");
  InputMap m;
  for (int64_t c = 0; c < channels; ++c) {
    // input = ((x - lo) / (hi - lo) - mean) / std
    const double sd = mean.empty() ? 1.0 : std[static_cast<size_t>(c)];
    const double mu = mean.empty() ? 0.0 : mean[static_cast<size_t>(c)];
    DUET_CHECK(sd > 0.0, "classifier guidance: std must be > 0, got ", sd);
    m.scale.push_back(static_cast<float>(1.0 / ((hi - lo) * sd)));
    m.shift.push_back(static_cast<float>((-lo / (hi - lo) - mu) / sd));
  }
  return m;
}

ClassGradient class_log_prob_gradient(models::Classifier& classifier, const InputMap& map,
                                      const Tensor& x_in, const std::vector<int32_t>& labels) {
  DUET_CHECK(x_in.defined() && x_in.dtype() == DType::f32 && x_in.rank() == 4,
             "classifier guidance: expected f32 images [N, C, H, W], got ",
             x_in.defined() ? x_in.shape().str() : "nothing");
  const Tensor x = ops::contiguous(autograd::detached(x_in));
  const int64_t n = x.dim(0), channels = x.dim(1), plane = x.dim(2) * x.dim(3);
  DUET_CHECK(std::ssize(labels) == n, "classifier guidance: ", n, " images for ", labels.size(),
             " labels");
  DUET_CHECK(std::ssize(map.scale) == channels && std::ssize(map.shift) == channels,
             "classifier guidance: the input map has ", map.scale.size(), " channels, x has ",
             channels);

  // The map runs outside autograd (it is a per-channel affine function); the gradient with
  // respect to the classifier's input is chained through it by hand below.
  Tensor in = Tensor::empty(x.shape());
  {
    const float* xs = x.data<float>();
    float* is = in.data<float>();
    for (int64_t i = 0; i < n * channels; ++i) {
      const float s = map.scale[static_cast<size_t>(i % channels)];
      const float b = map.shift[static_cast<size_t>(i % channels)];
      for (int64_t j = i * plane; j < (i + 1) * plane; ++j) is[j] = xs[j] * s + b;
    }
  }

  EvalScope eval_mode(classifier);
  FrozenParameters frozen(classifier);
  autograd::EnableGradGuard grad_on;
  autograd::set_requires_grad(in, true);
  const Tensor logits = classifier.forward(in);
  DUET_CHECK(logits.rank() == 2 && logits.dim(0) == n, "classifier guidance: logits have shape ",
             logits.shape().str(), " for ", n, " images");
  const int64_t k = logits.dim(1);
  for (int32_t y : labels)
    DUET_CHECK(y >= 0 && y < k, "classifier guidance: label ", y, " outside the classifier's ", k,
               " classes");
  // cross_entropy is the batch mean of -log p(y_i | x_i): seeding its backward with -N gives the
  // gradient of sum_i log p(y_i | x_i).
  const Tensor loss = ops::cross_entropy(logits, Tensor::from_vector(labels, Shape{n}));
  autograd::backward(loss, Tensor::scalar(-static_cast<float>(n)));
  const Tensor g_in = autograd::grad(in);
  DUET_CHECK(g_in.defined(), "classifier guidance: the classifier's output does not depend on x");

  ClassGradient out;
  out.grad = Tensor::empty(x.shape());
  {
    const float* gi = g_in.data<float>();
    float* go = out.grad.data<float>();
    for (int64_t i = 0; i < n * channels; ++i) {
      const float s = map.scale[static_cast<size_t>(i % channels)];
      for (int64_t j = i * plane; j < (i + 1) * plane; ++j) go[j] = gi[j] * s;
    }
  }
  // log p(y) = z_y - max - log(sum exp(z - max)), in double.
  const std::vector<float> z = autograd::detached(logits).to_vector();
  out.log_p.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = z.data() + i * k;
    const double mx = *std::max_element(row, row + k);
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(double(row[j]) - mx);
    out.log_p.push_back(
        static_cast<float>(double(row[labels[static_cast<size_t>(i)]]) - mx - std::log(sum)));
  }
  return out;
}

// From the score to the prediction. Write x_t = a x0 + b eps (flow: a = 1 - t, b = t; diffusion:
// a = sqrt(alpha_bar), b = sqrt(1 - alpha_bar)). Tweedie's formula ties the score of the noised
// marginal to the expected noise: grad log p_t(x_t) = -E[eps | x_t] / b. Bayes splits the
// class-conditional score, grad log p_t(x_t | y) = grad log p_t(x_t) + grad log p_t(y | x_t), and
// guidance of strength w adds w * g, g = grad_x log p_t(y | x_t) by the noise-aware classifier,
// to the score the generator implies. In noise terms: eps_guided = eps - w b g.
// The predictions, as functions of eps at fixed x_t (x0 = (x_t - b eps) / a):
//   ddpm-eps: p = eps                                     -> dp = -w b g
//   flow:     p = eps - x0 = (eps - x_t) / a   (a + b = 1)      -> dp = -w (b / a) g
//   ddpm-v:   p = a eps - b x0 = (eps - b x_t) / a (a^2 + b^2 = 1) -> dp = -w (b / a) g
// so the implied eps of every guided prediction moves by exactly -w b g (gen::decompose agrees;
// tested). For flow, t/(1 - t): the sampler integrates dx/dt = v from t = 1 down to 0, so a step
// of |dt| moves x by +|dt| w t / (1 - t) g, up the classifier's log-probability. At t = 1 the flow
// has a = 0 (pure noise, the conversion divides by it): a is floored at kMinSignal, so the
// factor is at most 1 / kMinSignal = 20 there (19 at t = 0.95, the next grid point of 20 steps).
double guidance_factor(Objective objective, double t) {
  const NoiseLevel k = noise_level(objective, t);
  const double a = std::max(k.a, kMinSignal);
  return objective == Objective::ddpm_eps ? -k.b : -k.b / a;
}

Predictor classifier_guided_predictor(Predictor base, Objective objective,
                                      models::Classifier& classifier, InputMap map,
                                      std::vector<int32_t> labels, double scale) {
  DUET_CHECK(std::isfinite(scale) && scale >= 0.0,
             "classifier guidance: scale must be a finite number >= 0, got ", scale);
  return [base = std::move(base), objective, &classifier, map = std::move(map),
          labels = std::move(labels), scale](const Tensor& x, double t) {
    Tensor p = base(x, t);
    if (scale == 0.0) return p;
    const ClassGradient g = class_log_prob_gradient(classifier, map, x, labels);
    DUET_CHECK(p.shape() == x.shape(), "classifier guidance: prediction ", p.shape().str(),
               " does not match x_t ", x.shape().str());
    Tensor out = ops::contiguous(p).clone();
    const float f = static_cast<float>(scale * guidance_factor(objective, t));
    const float* gp = g.grad.data<float>();
    float* o = out.data<float>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] += f * gp[i];
    return out;
  };
}

void validate_guide_classifier(const models::UNetConfig& g, Objective objective,
                               const nlohmann::json& c, double scale, const std::string& flag) {
  if (!std::isfinite(scale) || scale < 0.0)
    fail_usage("--classifier-guidance must be a finite number >= 0, got ", scale);
  const int64_t cc = c.value("in_channels", 1), cs = c.value("image_size", 28),
                ck = c.value("num_classes", 10);
  if (cc != g.in_channels || cs != g.image_size)
    fail_usage(flag, ": the classifier takes ", cc, "x", cs, "x", cs,
               " images, the generator makes ", g.in_channels, "x", g.image_size, "x",
               g.image_size);
  if (ck != g.num_classes)
    fail_usage(flag, ": the classifier knows ", ck, " classes, the generator ", g.num_classes);
  const bool diffusion = noised_with_diffusion(c, flag);
  if (diffusion != is_diffusion(objective))
    fail_usage(flag, ": the classifier was trained on ", diffusion ? "ddpm" : "flow",
               "-noised inputs, but the generator is ", objective_name(objective),
               " (train it with --noised ", is_diffusion(objective) ? "ddpm" : "flow", ")");
}

Tensor generate_classifier_guided(models::UNet& model, Objective objective,
                                  const std::vector<int32_t>& labels, double cfg_scale,
                                  models::Classifier& classifier, const InputMap& map,
                                  double cg_scale, const SampleOptions& options, uint64_t seed) {
  EvalScope eval_mode(model);
  const auto& c = model.config();
  // The same draws as gen::generate: the starting noise first, then the sampler's own.
  Generator gen(seed);
  const int64_t n = std::ssize(labels);
  Tensor x1 = Tensor::normal(Shape{n, c.in_channels, c.image_size, c.image_size}, gen);
  const Predictor p = classifier_guided_predictor(guided_predictor(model, labels, cfg_scale),
                                                  objective, classifier, map, labels, cg_scale);
  return sample(p, objective, x1, options, gen);
}

}  // namespace duet::gen
