// The quantisation-aware side of a classification run (`duet train --qat-from FP32.safetensors`):
// the starting twin (compress/qat.h) calibrated exactly as `duet quantize` calibrates, and the
// int8 checkpoints the run writes: its model.safetensors (the QAT weights and ranges exported
// through the int8 path) and ptq.safetensors (the post-training int8 of the same calibration).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/compress/qat.h"
#include "duet/train/classify_step.h"

namespace duet::train {

// `n` training images of `spec` (the whole training split) drawn by the seeded permutation `duet
// quantize -s SEED` uses, normalised as `config` says, in batches of 100: the same calibration
// inputs, value for value, as quantize's.
std::vector<Tensor> qat_calibration_batches(const std::string& spec, int64_t n, uint64_t seed,
                                            const nlohmann::json& config);

// The compress options a recipe's QAT fields stand for (method, --keep-fp32, range update).
compress::QatOptions qat_options(const ClassifyRecipe& r);

// Fine-tuning start of a QAT run: loads recipe.qat_from (a foldable classifier whose channels,
// size and classes match the data; usage Error otherwise), calibrates on recipe.qat_calib images
// of recipe.data (seed 0, as quantize's default) and sets s.model to the twin, s.config to the
// checkpoint's config and s.norm to its input normalisation.
void start_from_qat(ClassifySetup& s);

// The twin as an int8 checkpoint at `path`: export_int8 of its current weights (the EMA weights
// when `ema` is given), saved with `config` plus a "qat" section (source file, its sha256, the
// range update, epochs done).
void save_qat_int8(const std::string& path, compress::QatClassifier& qat, Ema* ema,
                   const nlohmann::json& config, const ClassifyRecipe& r, int64_t epochs_done);

// The post-training int8 model the twin started from, saved at `path`.
void save_ptq_int8(const std::string& path, compress::QatClassifier& qat,
                   const nlohmann::json& config);

}  // namespace duet::train
