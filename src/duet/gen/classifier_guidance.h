// Classifier guidance (Dhariwal & Nichol 2021) for the flow and diffusion samplers: a Predictor
// wrapper that adds scale * grad_x log p(y | x_t) of a noise-aware classifier (one trained on x_t,
// `duet train --task classify --noised flow`) to the generator's prediction, converted to the
// prediction's parameterisation. Composes with classifier-free guidance: wrap guided_predictor.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/gen/sampler.h"
#include "duet/models/classifier.h"
#include "duet/models/unet.h"

namespace duet::gen {

// The classifier's input as an affine map of the generator's x per channel:
// input[c] = x[c] * scale[c] + shift[c]. No clamping: x_t lies far outside the pixel range and
// the gradient must flow through the whole map.
struct InputMap {
  std::vector<float> scale, shift;
};

// The map for a classifier whose input is (x01 - mean[c]) / std[c] with x01 = (x - lo) / (hi - lo)
// (its "preprocess"; empty mean / std: x01 itself), for a generator with value range [lo, hi].
// A noised classifier has mean = std = 0.5 on [-1, 1], i.e. the identity.
InputMap classifier_input_map(const std::vector<float>& mean, const std::vector<float>& std,
                              float lo, float hi, int64_t channels);

struct ClassGradient {
  Tensor grad;               // [N, C, H, W]: d/dx of log p(labels[i] | x[i]), row by row
  std::vector<float> log_p;  // [N]: log p(labels[i] | x[i])
};

// One classifier forward + backward on x (eval mode, the previous mode comes back). The gradient
// of sum_i log p(y_i | x_i) splits into the per-image gradients because the classifier treats
// images independently in eval mode. The classifier's parameters record no gradient and their
// accumulated .grad stays as it was. Works whether or not grad mode is on at the call.
ClassGradient class_log_prob_gradient(models::Classifier& classifier, const InputMap& map,
                                      const Tensor& x, const std::vector<int32_t>& labels);

// The factor k(t) with prediction_guided = prediction + scale * k(t) * grad_x log p(y | x_t) for
// an objective (see the derivation in classifier_guidance.cpp): flow and ddpm-v -b/a, ddpm-eps -b,
// with x_t = a x0 + b eps. a is floored at kMinSignal so that t = 1 (a = 0 for flow) stays finite.
constexpr double kMinSignal = 0.05;
double guidance_factor(Objective objective, double t);

// `base` plus classifier guidance of strength `scale` towards `labels` (one per row of x_t; the
// classifier's classes). Scale 0 returns base's prediction itself, without running the classifier.
// The classifier must outlive the predictor.
Predictor classifier_guided_predictor(Predictor base, Objective objective,
                                      models::Classifier& classifier, InputMap map,
                                      std::vector<int32_t> labels, double scale);

// Usage Errors naming `flag` (the classifier's option, e.g. "--guide-with") unless: scale is a
// finite number >= 0; the classifier's config (in_channels, image_size, num_classes) matches the
// generator's; it was trained on noised inputs ("noised" in its config, i.e. `duet train --noised`)
// of the generator's noise family (flow, or the diffusion schedule for ddpm-eps / ddpm-v).
void validate_guide_classifier(const models::UNetConfig& generator, Objective objective,
                               const nlohmann::json& classifier_config, double scale,
                               const std::string& flag = "--guide-with");

// Images for `labels` as gen::generate draws them (the same starting noise from Philox(seed), the
// same CFG), with classifier guidance of strength `cg_scale` on top; cg_scale 0 gives
// gen::generate's images bit for bit. The generator runs in eval mode and gets its mode back.
Tensor generate_classifier_guided(models::UNet& model, Objective objective,
                                  const std::vector<int32_t>& labels, double cfg_scale,
                                  models::Classifier& classifier, const InputMap& map,
                                  double cg_scale, const SampleOptions& options, uint64_t seed);

}  // namespace duet::gen
