// The training data of a rectified-flow reflow (Liu et al. 2022, "Flow Straight and Fast"): the
// teacher's sampler carries noise z (t = 1) to an image x (t = 0); a student trained on the
// straight line between each such pair learns a flow whose paths are nearly straight, so a few
// Euler steps reach what the teacher needs many for. This file draws, saves and loads the pairs.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/gen/sampler.h"
#include "duet/models/unet.h"

namespace duet::gen {

struct ReflowPairs {
  Tensor noise;   // f32 [N, C, H, W]: where the teacher started (t = 1)
  Tensor images;  // f32 [N, C, H, W]: where its sampler ended (t = 0), in the model's value range
  Tensor labels;  // i32 [N]: the class each pair was drawn for
  std::vector<std::string> class_names;
  // How the pairs were made (teacher file and sha256, sampler, steps, cfg, seed): stored with them.
  nlohmann::json provenance = nlohmann::json::object();

  int64_t size() const { return labels.defined() ? labels.dim(0) : 0; }
};

struct ReflowPairOptions {
  int64_t count = 10000;  // pairs; pair i is of class i mod K, so any prefix is class-balanced
  double cfg = 2.0;       // the teacher's guidance scale: the student learns the guided flow
  SampleOptions sample;   // the teacher's sampler (its on_step is not used)
  uint64_t seed = 0;
  int64_t batch = 100;  // pairs per sampler call
  // Called after each batch with (pairs done, total); may be empty.
  std::function<void(int64_t, int64_t)> on_batch;
};

// Usage Error for a bad count or batch, or a teacher that is not a flow model (reflow straightens
// an ODE's paths; a diffusion model's sampler is not one here).
void validate(const ReflowPairOptions& options, Objective teacher_objective);

// Draws the pairs with the teacher in eval mode, without gradients. Pair i's noise comes from a
// Philox stream keyed by (seed, i) alone, so the pairs do not depend on the batch size beyond the
// network's arithmetic, and a larger count extends a smaller one.
ReflowPairs make_reflow_pairs(models::UNet& teacher, Objective objective,
                              const std::vector<std::string>& class_names,
                              const ReflowPairOptions& options);

// safetensors: "noise", "images" (F32), "labels" (I32) and a "duet.reflow" metadata entry holding
// {"class_names", "provenance"}. Written atomically.
void save_reflow_pairs(const std::string& path, const ReflowPairs& pairs);

// Loads and checks a pair file: Error naming the file and the field for a missing or mistyped
// tensor, shapes that disagree, labels outside the class names, or a non-finite value.
ReflowPairs load_reflow_pairs(const std::string& path);

}  // namespace duet::gen
