// Class-conditional generation with classifier-free guidance (Ho & Salimans 2022): the UNet is
// asked for the requested class and for "no class", and the two predictions are extrapolated.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "duet/gen/sampler.h"
#include "duet/models/unet.h"

namespace duet::gen {

// prediction = uncond + scale * (cond - uncond). Scale 1 is the conditional prediction alone and
// scale 0 the unconditional one; each of those costs one network pass, any other scale runs
// both halves as one batch of 2N. No gradients are recorded.
Predictor guided_predictor(models::UNet& model, std::vector<int32_t> labels, double scale);

// Images for `labels` (eval mode): noise from Philox(seed) at t = 1, then the sampler. The same
// seed, labels, options and thread count give bit-identical images.
// The guidance scale a generator is meant to be sampled at when none is asked for: its config's
// reflow "sample_cfg" (1 for a reflowed student: its training pairs already carry the teacher's
// guidance, see gen/reflow_pairs.h), else `fallback`.
double default_cfg(const nlohmann::json& generator_config, double fallback);

Tensor generate(models::UNet& model, Objective objective, const std::vector<int32_t>& labels,
                double cfg_scale, const SampleOptions& options, uint64_t seed);

}  // namespace duet::gen
