// The moving parts of a generation run (data, UNet, loader, schedule, AdamW, EMA) built from a
// recipe, and its one training step. train_generator iterates this step and `duet bench gen`
// times it, so the benchmark measures exactly what `duet train --task generate` runs.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

#include "duet/data/loader.h"
#include "duet/gen/objective.h"
#include "duet/models/unet.h"
#include "duet/models/unified.h"
#include "duet/nn/module.h"
#include "duet/train/ema.h"
#include "duet/train/generate_trainer.h"
#include "duet/train/optimizer.h"
#include "duet/train/schedule.h"

namespace duet::train {

struct GenerateSetup {
  data::Dataset train_set;  // empty for a reflow, which trains on pairs
  int64_t train_size = 0;   // images (or pairs) per epoch before batching
  std::vector<std::string> class_names;
  nlohmann::json config;
  // In training mode, initialised from the seed or loaded from the recipe's `init` checkpoint.
  std::shared_ptr<nn::Module> module;
  models::UNet* unet = nullptr;  // module, as the UNet it is (a unified model's UNet)
  // Unified runs: module as the classifier it also is, and the test split its head is scored on
  // after each epoch; null / empty otherwise.
  models::UnifiedNet* unified = nullptr;
  data::Dataset test_set;
  data::NormStats norm;  // the inputs' normalisation: pixels 0..255 to [-1, 1]
  std::unique_ptr<data::BatchSource> loader;
  LrSchedule schedule;
  std::unique_ptr<Optimizer> optim;
  std::unique_ptr<Ema> ema;
  gen::Objective objective = gen::Objective::flow;
  gen::TimeSampling time_sampling = gen::TimeSampling::uniform;
  int64_t batches_per_epoch = 0, total_steps = 0;
};

// Builds everything a fresh run starts from; recipe.seed must be >= 0 and the recipe valid.
// Usage Errors when an `init` checkpoint is not a generator, its objective is not the recipe's,
// or its channels, size or classes differ from the data's (or the reflow pairs').
GenerateSetup make_generate_setup(const GenerateRecipe& recipe);

// What one step measured. `total` is the weighted sum that was minimised.
struct GenerateStepLoss {
  float total = 0.0f;
  float generate = 0.0f;  // the objective's MSE (0 when its weight is 0)
  float classify = 0.0f;  // unified runs: the head's cross-entropy (0 otherwise)
  int64_t correct = 0;    // unified runs: the head's right answers on the batch
};

// One step at global step `step` (0-based): the schedule's lr, label dropout, the objective's
// draw (with the batch's paired noise when it has one), forward, MSE (plus, in a unified run, the
// head's cross-entropy on the batch's clean view), backward, AdamW, EMA. When the total loss is
// not finite nothing was updated. Its randomness comes from a Philox stream keyed by the seed and
// positioned by the step, so a resumed run draws exactly what an uninterrupted one did.
GenerateStepLoss generate_train_step(GenerateSetup& s, const GenerateRecipe& r,
                                     const data::Batch& batch, int64_t step);

}  // namespace duet::train
