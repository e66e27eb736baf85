// The moving parts of a classification run (data, model, loader, schedule, optimizer, EMA) built
// from a recipe, and its one training step. train_classifier iterates this step and
// `duet bench train` times it, so the benchmark measures exactly what `duet train` runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/data/loader.h"
#include "duet/nn/module.h"
#include "duet/train/distill.h"
#include "duet/train/ema.h"
#include "duet/train/optimizer.h"
#include "duet/train/schedule.h"
#include "duet/train/sgd.h"
#include "duet/train/trainer.h"

namespace duet::train {

struct ClassifySetup {
  ClassifyRecipe recipe;  // with its seed resolved (>= 0)
  data::Dataset train_set, val_set, test_set;
  data::NormStats norm;  // of train_set (of the --init checkpoint when fine-tuning), in the
                         // config as "preprocess"
  nlohmann::json config;
  std::shared_ptr<nn::Module> model;  // in training mode, from the seed or the --init checkpoint
  std::unique_ptr<data::Loader> loader;
  LrSchedule schedule;
  std::unique_ptr<Optimizer> optim;
  Sgd* sgd = nullptr;  // optim when it is SGD (one-cycle cycles its momentum)
  std::unique_ptr<Ema> ema;
  std::unique_ptr<Teacher> teacher;  // set when the recipe distils from a teacher checkpoint
  int64_t batches_per_epoch = 0, total_steps = 0;
};

// Builds everything a fresh run starts from; recipe.seed must be >= 0 and the recipe valid.
// Without `load_test` the test split is not read (test_set stays empty).
ClassifySetup make_classify_setup(const ClassifyRecipe& recipe, bool load_test = true);

struct StepStats {
  float loss = 0.0f;  // mean over the batch; not finite: nothing was updated
  int64_t images = 0, correct = 0;
};

// A noise-aware run (recipe.noised "flow" | "ddpm"): the input normalisation that maps pixels to
// the generator's range, p / 255 * 2 - 1 (mean = std = 0.5 per channel), and the loader's
// per-batch step that replaces each image x by x_t = a(t) x + b(t) eps of that schedule at a
// uniform t in [0, 1) per image. Its draws come from a Philox seed derived from (seed, epoch,
// batch index) alone, so a resumed run sees exactly the noise an uninterrupted one would.
data::NormStats noised_norm(int64_t channels);
std::function<void(data::Batch&)> noised_batch_hook(const std::string& schedule, uint64_t seed);

// One training step at global step `step` (0-based): the schedule's lr (and momentum), forward,
// loss, backward, optimizer, EMA, and the batch's training accuracy. A non-finite loss returns
// before touching the gradients or weights, so the caller can stop with the last good state.
StepStats train_step(ClassifySetup& s, const data::Batch& batch, int64_t step);

}  // namespace duet::train
