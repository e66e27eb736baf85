// Self-describing model checkpoints: safetensors whose __metadata__ holds the model config
// (JSON, under "duet.config") and the format version, so `-m FILE` is all a command needs.
// Parameter and buffer names are PyTorch state_dict keys. Written atomically.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/io/safetensors.h"
#include "duet/nn/module.h"

namespace duet::models {

inline constexpr const char* kFormatVersion = "1";
// The __metadata__ key that marks a training run's checkpoint (a run's last.safetensors): it holds
// the run's state (epoch, step, recipe), and the file holds "optim." and "ema." tensors besides
// the model's.
inline constexpr const char* kRunStateKey = "duet.train";
// Whether a run checkpoint's tensor belongs to the training state (optimizer, EMA), not the model.
inline bool is_run_state_tensor(const std::string& name) {
  return name.rfind("optim.", 0) == 0 || name.rfind("ema.", 0) == 0;
}

void save_model(const std::string& path, nn::Module& model, const nlohmann::json& config);

struct LoadedModel {
  std::shared_ptr<nn::Module> model;
  nlohmann::json config;
};

// Builds the model from the stored config and loads every tensor (strict: names and shapes must
// match). Errors name the file and the field. An int8 checkpoint (a "quantization" section, made
// by `duet quantize`) holds the folded inference form: Error pointing to
// compress::load_inference_model, which inference commands use. A run checkpoint (kRunStateKey)
// loads its live weights, the ones training resumes from; its optimizer and EMA entries are
// skipped (with --ema the averaged weights are the run's model.safetensors).
LoadedModel load_model(const std::string& path);

// The model config stored in a checkpoint's __metadata__ ("duet.config"); Error naming the file
// when it is absent or not JSON.
nlohmann::json read_model_config(const io::SafetensorsFile& file);

}  // namespace duet::models
