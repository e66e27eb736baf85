#include "duet/gen/sampler.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/kernels/packed_weights.h"
#include "duet/tensor/error.h"

namespace duet::gen {
namespace {

// out = x + c * d, elementwise over contiguous f32 tensors of one shape.
Tensor axpy(const Tensor& x, double c, const Tensor& d) {
  const auto xv = x.to_vector(), dv = d.to_vector();
  std::vector<float> out(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) out[i] = static_cast<float>(xv[i] + c * dv[i]);
  return Tensor::from_vector(out, x.shape());
}

double grid(int i, int steps) {
  return 1.0 - static_cast<double>(i) / steps;
}

}  // namespace

SamplerKind parse_sampler(const std::string& name) {
  if (name == "euler") return SamplerKind::euler;
  if (name == "heun") return SamplerKind::heun;
  if (name == "ddim") return SamplerKind::ddim;
  if (name == "ddpm") return SamplerKind::ddpm;
  fail_usage("unknown --sampler '", name, "' (known: euler, heun, ddim, ddpm)");
}

std::string sampler_name(SamplerKind k) {
  switch (k) {
    case SamplerKind::euler:
      return "euler";
    case SamplerKind::heun:
      return "heun";
    case SamplerKind::ddim:
      return "ddim";
    case SamplerKind::ddpm:
      return "ddpm";
  }
  return "?";
}

SamplerKind default_sampler(Objective o) {
  return is_diffusion(o) ? SamplerKind::ddim : SamplerKind::heun;
}

void validate(const SampleOptions& o, Objective objective) {
  if (o.steps < 1) fail_usage("--steps must be at least 1, got ", o.steps);
  const bool ode = o.kind == SamplerKind::euler || o.kind == SamplerKind::heun;
  if (ode && is_diffusion(objective))
    fail_usage("--sampler ", sampler_name(o.kind), " integrates a flow model, but this model is ",
               objective_name(objective), " (use ddim or ddpm)");
  if (!ode && !is_diffusion(objective))
    fail_usage("--sampler ", sampler_name(o.kind),
               " steps a diffusion model, but this model is flow (use euler or heun)");
  if (!(o.eta >= 0 && o.eta <= 1)) fail_usage("--eta must be in [0, 1], got ", o.eta);  // NaN too
}

SampleOptions sample_options(Objective objective, const std::string& sampler, int steps,
                             double eta) {
  SampleOptions o;
  o.kind = sampler.empty() ? default_sampler(objective) : parse_sampler(sampler);
  o.steps = steps;
  o.eta = eta;
  o.clip_x0 = is_diffusion(objective);
  validate(o, objective);
  return o;
}

int evaluations(const SampleOptions& o) {
  return o.kind == SamplerKind::heun ? 2 * o.steps : o.steps;
}

Tensor sample(const Predictor& predict, Objective objective, const Tensor& x1,
              const SampleOptions& o, Generator& gen) {
  validate(o, objective);
  // Every step runs the same weights: each layer's packed filters are made once.
  kernels::PackedWeightsScope packed_weights;
  Tensor x = x1.clone();
  for (int i = 0; i < o.steps; ++i) {
    const double t = grid(i, o.steps), s = grid(i + 1, o.steps), dt = s - t;
    const Tensor p = predict(x, t);
    switch (o.kind) {
      case SamplerKind::euler:
        x = axpy(x, dt, p);
        break;
      case SamplerKind::heun: {  // trapezoidal corrector on the Euler predictor
        const Tensor p2 = predict(axpy(x, dt, p), s);
        x = axpy(axpy(x, dt / 2, p), dt / 2, p2);
        break;
      }
      case SamplerKind::ddim:
      case SamplerKind::ddpm: {  // Song et al. 2021, eq. 12; DDPM is the eta = 1 case
        Decomposition d = decompose(objective, x, p, t);
        if (o.clip_x0) {
          auto v = d.x0.to_vector();
          for (float& e : v) e = std::clamp(e, -1.0f, 1.0f);
          d.x0 = Tensor::from_vector(v, x.shape());
          // Keep the noise estimate consistent with the clipped image.
          const NoiseLevel k = noise_level(objective, t);
          d.eps = axpy(x, -k.a, d.x0);
          auto ev = d.eps.to_vector();
          for (float& e : ev) e = static_cast<float>(e / k.b);
          d.eps = Tensor::from_vector(ev, x.shape());
        }
        const double ab_t = cosine_alpha_bar(t), ab_s = s <= 0 ? 1.0 : cosine_alpha_bar(s);
        const double eta = o.kind == SamplerKind::ddpm ? 1.0 : o.eta;
        const double sigma =
            eta * std::sqrt((1 - ab_s) / (1 - ab_t)) * std::sqrt(std::max(0.0, 1 - ab_t / ab_s));
        const double keep = std::sqrt(std::max(0.0, 1 - ab_s - sigma * sigma));
        Tensor next = axpy(Tensor::zeros(x.shape()), std::sqrt(ab_s), d.x0);
        next = axpy(next, keep, d.eps);
        if (sigma > 0) next = axpy(next, sigma, Tensor::normal(x.shape(), gen));
        x = next;
        break;
      }
    }
    if (o.on_step) o.on_step(i + 1, o.steps);
  }
  // An overflow anywhere (the network, a huge guidance scale) would be written out as some image.
  if (const int64_t at = first_non_finite(x); at >= 0)
    fail("sampling: the images hold NaN or infinity after ", o.steps, " steps (element ", at,
         ": the network or the guidance scale overflows); nothing is written");
  return x;
}

}  // namespace duet::gen
