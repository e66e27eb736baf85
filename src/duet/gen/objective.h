// What a generator learns: rectified flow (velocity prediction) or DDPM with a cosine schedule
// (epsilon or v prediction). Times are continuous in [0, 1]: t = 0 is data, t = 1 is noise, for
// both families, so one UNet time input and one sampler time grid serve them all.
#pragma once

#include <string>

#include "duet/tensor/rng.h"
#include "duet/tensor/tensor.h"

namespace duet::gen {

enum class Objective { flow, ddpm_eps, ddpm_v };
enum class TimeSampling { uniform, logit_normal };

// "flow" | "ddpm-eps" | "ddpm-v" (usage Error listing them otherwise), and back.
Objective parse_objective(const std::string& name);
std::string objective_name(Objective o);
TimeSampling parse_time_sampling(const std::string& name);  // "uniform" | "logit-normal"
std::string time_sampling_name(TimeSampling s);

inline bool is_diffusion(Objective o) {
  return o != Objective::flow;
}

// The cosine schedule (Nichol & Dhariwal 2021, s = 0.008) as a function of continuous t:
// alpha_bar(t) = cos^2((t + s) / (1 + s) * pi / 2) / cos^2(s / (1 + s) * pi / 2), floored at
// 1e-4 so that t = 1 keeps a (tiny) signal and every conversion below stays finite.
double cosine_alpha_bar(double t);

// The coefficients of x_t = a(t) x0 + b(t) eps for an objective: flow a = 1 - t, b = t;
// diffusion a = sqrt(alpha_bar), b = sqrt(1 - alpha_bar).
struct NoiseLevel {
  double a, b;
};
NoiseLevel noise_level(Objective o, double t);

// The regression target for one element of clean x0 and noise eps at x_t = a x0 + b eps: flow
// eps - x0, ddpm-eps eps, ddpm-v a eps - b x0. Training draws and the generative classifier share
// it, so both score the same loss.
inline float regression_target(Objective o, float a, float b, float x0, float eps) {
  switch (o) {
    case Objective::flow:
      return eps - x0;
    case Objective::ddpm_eps:
      return eps;
    case Objective::ddpm_v:
      return a * eps - b * x0;
  }
  return 0.0f;
}

// One training draw for a batch of clean images x0 [N, ...]: times t [N] (by `sampling`), noise,
// the noised input x_t and the regression target (flow: eps - x0; ddpm-eps: eps; ddpm-v:
// a eps - b x0). All drawn from `gen`, so a seed fixes them. `noise`, when given, is the noise
// paired with each image instead of a fresh draw: a reflow trains on the straight line between
// the noise a teacher started from and the image it reached.
struct TrainingDraw {
  Tensor t, x_t, target;
};
TrainingDraw draw_training_example(Objective o, TimeSampling sampling, const Tensor& x0,
                                   Generator& gen, const Tensor* noise = nullptr);

// From a network prediction at (x_t, t), the implied clean image and noise.
struct Decomposition {
  Tensor x0, eps;
};
Decomposition decompose(Objective o, const Tensor& x_t, const Tensor& prediction, double t);

}  // namespace duet::gen
