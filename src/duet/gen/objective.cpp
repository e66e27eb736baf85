#include "duet/gen/objective.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "duet/tensor/error.h"

namespace duet::gen {

Objective parse_objective(const std::string& name) {
  if (name == "flow") return Objective::flow;
  if (name == "ddpm-eps" || name == "ddpm") return Objective::ddpm_eps;
  if (name == "ddpm-v") return Objective::ddpm_v;
  fail_usage("unknown --objective '", name, "' (known: flow, ddpm-eps, ddpm-v)");
}

std::string objective_name(Objective o) {
  switch (o) {
    case Objective::flow:
      return "flow";
    case Objective::ddpm_eps:
      return "ddpm-eps";
    case Objective::ddpm_v:
      return "ddpm-v";
  }
  return "?";
}

TimeSampling parse_time_sampling(const std::string& name) {
  if (name == "uniform") return TimeSampling::uniform;
  if (name == "logit-normal") return TimeSampling::logit_normal;
  fail_usage("unknown --time-sampling '", name, "' (known: uniform, logit-normal)");
}

std::string time_sampling_name(TimeSampling s) {
  return s == TimeSampling::uniform ? "uniform" : "logit-normal";
}

double cosine_alpha_bar(double t) {
  constexpr double s = 0.008;
  const auto f = [](double u) {
    const double c = std::cos((u + s) / (1 + s) * std::numbers::pi / 2);
    return c * c;
  };
  return std::max(f(t) / f(0.0), 1e-4);
}

NoiseLevel noise_level(Objective o, double t) {
  if (o == Objective::flow) return {1.0 - t, t};
  const double ab = cosine_alpha_bar(t);
  return {std::sqrt(ab), std::sqrt(1.0 - ab)};
}

TrainingDraw draw_training_example(Objective o, TimeSampling sampling, const Tensor& x0,
                                   Generator& gen, const Tensor* noise) {
  DUET_CHECK(x0.rank() >= 2 && x0.dtype() == DType::f32 && x0.is_contiguous(),
             "generation: expected contiguous f32 images [N, ...], got ", x0.shape().str());
  const int64_t n = x0.dim(0), per = x0.numel() / std::max<int64_t>(n, 1);
  std::vector<float> t(static_cast<size_t>(n));
  if (sampling == TimeSampling::uniform) {
    gen.uniform(t.data(), n);
  } else {  // logit-normal(0, 1) (Esser et al. 2024): more weight on the middle times
    gen.normal(t.data(), n);
    for (float& v : t) v = 1.0f / (1.0f + std::exp(-v));
  }
  TrainingDraw d;
  d.t = Tensor::from_vector(t, Shape{n});
  if (noise != nullptr)
    DUET_CHECK(
        noise->shape() == x0.shape() && noise->dtype() == DType::f32 && noise->is_contiguous(),
        "generation: paired noise ", noise->shape().str(), " does not match images ",
        x0.shape().str());
  const Tensor eps = noise != nullptr ? *noise : Tensor::normal(x0.shape(), gen);
  d.x_t = Tensor::empty(x0.shape());
  d.target = Tensor::empty(x0.shape());
  const float* xp = x0.data<float>();
  const float* ep = eps.data<float>();
  float* xt = d.x_t.data<float>();
  float* tg = d.target.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const NoiseLevel k = noise_level(o, t[static_cast<size_t>(i)]);
    const float a = static_cast<float>(k.a), b = static_cast<float>(k.b);
    for (int64_t j = i * per; j < (i + 1) * per; ++j) {
      xt[j] = a * xp[j] + b * ep[j];
      tg[j] = regression_target(o, a, b, xp[j], ep[j]);
    }
  }
  return d;
}

Decomposition decompose(Objective o, const Tensor& x_t, const Tensor& prediction, double t) {
  DUET_CHECK(x_t.shape() == prediction.shape(), "generation: prediction ", prediction.shape().str(),
             " does not match x_t ", x_t.shape().str());
  const std::vector<float> xv = x_t.to_vector(), pv = prediction.to_vector();
  std::vector<float> x0(xv.size()), eps(xv.size());
  const NoiseLevel k = noise_level(o, t);
  for (size_t j = 0; j < xv.size(); ++j) {
    const double x = xv[j], p = pv[j];
    double c = 0.0, e = 0.0;
    switch (o) {
      case Objective::flow:  // p = eps - x0, x = (1 - t) x0 + t eps
        c = x - t * p;
        e = x + (1.0 - t) * p;
        break;
      case Objective::ddpm_eps:  // p = eps
        e = p;
        c = (x - k.b * p) / k.a;
        break;
      case Objective::ddpm_v:  // p = a eps - b x0, with a^2 + b^2 = 1
        c = k.a * x - k.b * p;
        e = k.b * x + k.a * p;
        break;
    }
    x0[j] = static_cast<float>(c);
    eps[j] = static_cast<float>(e);
  }
  return {Tensor::from_vector(x0, x_t.shape()), Tensor::from_vector(eps, x_t.shape())};
}

}  // namespace duet::gen
