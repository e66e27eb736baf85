// Samplers: integrate from noise (t = 1) to data (t = 0) on a uniform time grid of any step
// count. Euler and Heun follow the flow ODE; DDIM (eta) and ancestral DDPM step a diffusion
// model. The network enters as a Predictor, so guidance, analytic test fields and any model fit.
#pragma once

#include <functional>
#include <string>

#include "duet/gen/objective.h"

namespace duet::gen {

// The network's (guided) prediction at x_t for a time t shared by the whole batch.
using Predictor = std::function<Tensor(const Tensor& x_t, double t)>;

enum class SamplerKind { euler, heun, ddim, ddpm };

// "euler" | "heun" | "ddim" | "ddpm" (usage Error listing them otherwise), and back.
SamplerKind parse_sampler(const std::string& name);
std::string sampler_name(SamplerKind k);
// The sampler used when none is asked for: heun for flow, ddim for diffusion.
SamplerKind default_sampler(Objective o);

struct SampleOptions {
  SamplerKind kind = SamplerKind::euler;
  int steps = 20;
  double eta = 0.0;      // DDIM only: 0 deterministic, 1 = ancestral DDPM's noise
  bool clip_x0 = false;  // DDIM/DDPM: clamp the implied clean image to [-1, 1] at every step
  // Called after each step with (step done, total); may be empty.
  std::function<void(int, int)> on_step;
};

// Usage Error when the sampler does not fit the objective (Euler/Heun need flow, DDIM/DDPM need
// diffusion) or steps < 1.
void validate(const SampleOptions& options, Objective objective);

// The options a --sampler NAME (empty: the objective's default), --steps and --eta ask for, with
// the implied clean image clipped for diffusion; validated (usage Error as above).
SampleOptions sample_options(Objective objective, const std::string& sampler, int steps,
                             double eta = 0.0);

// Runs the sampler from x1 (noise at t = 1) and returns x0. `gen` draws DDPM/DDIM noise only.
Tensor sample(const Predictor& predict, Objective objective, const Tensor& x1,
              const SampleOptions& options, Generator& gen);

// Network evaluations a run makes (Heun: two per step).
int evaluations(const SampleOptions& options);

}  // namespace duet::gen
