// The generation training loop behind `duet train --task generate`: a class-conditional UNet
// learns a flow-matching or diffusion objective with classifier-free-guidance label dropout,
// an EMA of its weights, atomic checkpoints every epoch, bit-identical --resume, a NaN stop, and
// a sample grid every few epochs (runs/NAME/samples/epoch-K.png) to watch it learn.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/train/trainer.h"

namespace duet::train {

// Everything that decides what a generation run computes; stored in last.safetensors.
struct GenerateRecipe {
  std::string arch = "unet-xs";
  nlohmann::json model_overrides = nlohmann::json::object();
  std::string data = "fashion-mnist";
  int64_t epochs = 10;
  int64_t batch = 64;
  double lr = 1e-3;  // AdamW peak rate
  double weight_decay = 0.0;
  std::string schedule = "cosine";  // cosine | constant | onecycle
  double warmup_epochs = 0.2;
  std::string objective = "flow";              // flow | ddpm-eps | ddpm-v
  std::string time_sampling = "logit-normal";  // uniform | logit-normal
  double cfg_dropout = 0.1;                    // probability a label is replaced by "no class"
  double ema_decay = 0.999;                    // 0: no EMA
  std::string augment;                         // comma list of crop, flip, erase; empty: none
  int64_t limit = 0;                           // > 0: train on the first `limit` images only
  int64_t sample_every = 1;                    // epochs between sample grids (0: only at the end)
  int64_t sample_steps = 20;
  double sample_cfg = 2.0;
  std::string sample_sampler;  // sampler of the grids; empty: the objective's default
  int64_t seed = -1;
  // Fine-tuning: when set, the run starts from this generator checkpoint (its config and
  // weights) instead of a fresh `arch`; recorded by SHA-256 and size, --resume refuses a changed
  // file.
  std::string init;
  std::string init_sha256;
  int64_t init_bytes = 0;
  // Reflow: when set, the training data are these (noise, image, label) pairs
  // (gen/reflow_pairs.h) instead of `data`, each image noised with its own paired noise.
  // Recorded like `init`.
  std::string reflow_pairs;
  std::string reflow_pairs_sha256;
  int64_t reflow_pairs_bytes = 0;
  // A unified run (`duet train --task unified`, a unified arch, models/unified.h): the head's
  // cross-entropy on a `classify_augment` view of the batch's clean images joins the generative
  // loss: loss = generate_weight * MSE + classify_weight * CE. A zero weight skips that pass, so
  // the separate baselines train with the same code, data, schedule and per-task compute.
  std::string task = "generate";  // generate | unified
  double generate_weight = 1.0;
  double classify_weight = 1.0;
  std::string classify_augment = "crop,flip";
  int64_t test_limit = 0;  // > 0: score the head on the first `test_limit` test images only

  bool unified() const { return task == "unified"; }

  nlohmann::json to_json() const;
  static GenerateRecipe from_json(const nlohmann::json& j);
  void validate() const;  // usage Error naming the first bad value
};

struct GenerateSummary {
  uint64_t seed = 0;
  int64_t epochs_done = 0, steps = 0;
  bool finished = false;
  double train_loss = 0.0, images_per_second = 0.0;
  double test_accuracy = -1.0;  // unified runs: the head's accuracy on the test split (EMA)
  PeakMemory peak;
};

// Runs (or resumes) a generation run into options.out_dir: model.safetensors (EMA weights when
// enabled), last.safetensors, train_log.jsonl, metrics.json, samples/epoch-K.png.
GenerateSummary train_generator(const GenerateRecipe& recipe, const TrainRunOptions& options);

}  // namespace duet::train
