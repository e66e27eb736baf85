// The classification training loop behind `duet train --task classify`: data, model, optimizer,
// schedule, EMA, per-epoch evaluation, logs and checkpoints (every epoch, atomically), with
// --resume continuing bit-identically. Also the inference helpers `duet eval` and `classify` share.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/data/augment.h"
#include "duet/data/dataset.h"
#include "duet/nn/module.h"
#include "duet/train/metrics.h"
#include "duet/train/peak_memory.h"

namespace duet::train {

// Everything that decides what a run computes. Stored in last.safetensors, so a resumed run is
// the same run; the CLI fills it from flags.
struct ClassifyRecipe {
  std::string arch = "resnet20";
  nlohmann::json model_overrides = nlohmann::json::object();  // merged into the preset (e.g. width)
  std::string data = "fashion-mnist";
  // Where the test split comes from (a --data spec; empty: `data`'s test split), e.g. real
  // Fashion-MNIST for a classifier trained on generated images (Classification Accuracy Score).
  std::string test_data;
  // A --data spec appended to the training images only (after --limit and --val), e.g. generated
  // images for synthetic augmentation; its class names must equal the training data's.
  std::string extra_data;
  int64_t epochs = 5;
  int64_t batch = 128;
  double lr = 0.2;                // the peak rate (one-cycle max, cosine start, constant value)
  std::string optimizer = "sgd";  // sgd | adamw
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 5e-4;
  std::string schedule = "onecycle";  // onecycle | cosine | constant
  double warmup_epochs = 0.0;
  double label_smoothing = 0.0;
  std::string augment;     // comma list of crop, flip, erase; empty: none
  double ema_decay = 0.0;  // 0: no EMA
  int64_t val = 0;         // images held out of training for validation
  int64_t limit = 0;       // > 0: train on the first `limit` images only
  int64_t test_limit = 0;  // > 0: evaluate on the first `test_limit` test images only
  int64_t seed = -1;       // < 0: random (the drawn seed is logged and stored)
  // Knowledge distillation (train/distill.h): active when `teacher` names a checkpoint. The
  // file's SHA-256 and size are filled in when the run starts; --resume refuses a changed file.
  std::string teacher;
  double kd_temperature = 4.0;
  double kd_alpha = 0.9;  // weight of the soft term
  std::string teacher_sha256;
  int64_t teacher_bytes = 0;
  // Fine-tuning: when set, the run starts from this classifier checkpoint (its config, weights
  // and input normalisation) instead of a fresh `arch`; recorded by SHA-256 like the teacher.
  std::string init;
  std::string init_sha256;
  int64_t init_bytes = 0;
  // Quantisation-aware training (train/qat_run.h): when set, the run fine-tunes the int8 twin of
  // this float classifier (calibrated on qat_calib training images by qat_method, convs named
  // in qat_keep_fp32 kept float, ranges "ema" or "fixed") and model.safetensors is int8.
  // Recorded by SHA-256 like --init.
  std::string qat_from;
  std::string qat_sha256;
  int64_t qat_bytes = 0;
  int64_t qat_calib = 1000;
  std::string qat_method = "percentile";
  std::vector<std::string> qat_keep_fp32;
  std::string qat_ranges = "ema";
  double qat_max_layer_error = 0.05;  // as quantize's --max-layer-error (0: every conv int8)
  // A noise-aware classifier for classifier guidance (gen/classifier_guidance.h): "flow" or "ddpm"
  // replaces every training image, in the generator's [-1, 1] range, by x_t = a(t) x + b(t) eps of
  // that noise schedule at a uniform t per image; empty: clean images.
  std::string noised;

  nlohmann::json to_json() const;
  // Missing fields keep their defaults; wrong types throw duet::Error naming the field.
  static ClassifyRecipe from_json(const nlohmann::json& j);
  // Usage Error naming the first bad value.
  void validate() const;
};

// "crop,flip,erase" -> the loader's augmentation (crop pads by 4 pixels, crop:P by P, erase has
// p = 0.5; until:E augments the first E epochs only).
data::AugmentConfig parse_augment(const std::string& list);
// parse_augment(list), and a usage Error naming `flag` when its until:E leaves none of a run's
// `epochs` plain (E >= epochs would silently change nothing) or comes with no augmentation.
data::AugmentConfig parse_augment(const std::string& flag, const std::string& list, int64_t epochs);

struct TrainRunOptions {
  std::string out_dir;     // created when missing
  bool resume = false;     // continue from out_dir/last.safetensors
  int64_t stop_after = 0;  // > 0: return after this many epochs of this call (an interruption)
  bool progress = true;    // bar / epoch lines on stdout and stderr
  bool lines_on_stderr = false;  // epoch lines on stderr too (stdout carries a command's JSON)
};

struct TrainSummary {
  uint64_t seed = 0;
  int64_t epochs_done = 0, steps = 0;
  bool finished = false;  // all recipe epochs done (false after stop_after)
  double train_loss = 0.0, train_acc = 0.0, images_per_second = 0.0;
  double test_acc = -1.0, val_acc = -1.0;  // of the eval weights (EMA when enabled); -1: not run
  PeakMemory peak;  // at the end of the run (process RSS, tensor allocator); also in metrics.json
};

// Runs (or resumes) a classification run. Writes out_dir/{model.safetensors, last.safetensors,
// train_log.jsonl, metrics.json}. A non-finite loss throws duet::Error and leaves the last
// checkpoint as it was.
TrainSummary train_classifier(const ClassifyRecipe& recipe, const TrainRunOptions& options);

// The recipe (with its resolved seed) stored in a training checkpoint.
ClassifyRecipe read_checkpoint_recipe(const std::string& last_path);

// The input normalisation and class names a trained model's config carries ("preprocess":
// {"mean", "std"}, "class_names"); empty stats / "0".."K-1" when absent.
data::NormStats model_norm_stats(const nlohmann::json& config);
std::vector<std::string> model_class_names(const nlohmann::json& config);

// Test-time augmentation of predict_probs. `flip`: the logits are the mean of the image's and of
// its left-right mirror's (twice the passes; the mirror is what crop,flip training taught the
// model to treat as the same object).
struct Tta {
  bool flip = false;
  // "none" or "flip"; anything else is a usage error naming `flag`.
  static Tta parse(const std::string& text, const char* flag);
  std::string name() const { return flip ? "flip" : "none"; }
};

// Class probabilities [N, K] (row-major, in `probs`) for every image of `d`, which must already
// have the model's channels and size; eval mode, no gradients, batches of `batch`.
std::vector<float> predict_probs(nn::Module& model, const data::Dataset& d,
                                 const data::NormStats& norm, int64_t batch = 256,
                                 const Tta& tta = {});

}  // namespace duet::train
