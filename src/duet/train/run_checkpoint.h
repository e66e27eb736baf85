// The checkpoints of a training run folder, shared by the classify and generate loops:
// last.safetensors (weights, buffers, optimizer and EMA state, the recipe and position) for
// --resume, and model.safetensors (the weights that ship: EMA when enabled) for use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/nn/module.h"
#include "duet/tensor/error.h"
#include "duet/train/ema.h"
#include "duet/train/optimizer.h"

namespace duet::train {

struct RunPaths {
  explicit RunPaths(const std::string& out_dir);
  std::filesystem::path dir, last, model, log, metrics;
};

// What --resume starts from: every tensor of last.safetensors and its training metadata
// ({"recipe", "epoch", "step", "seed", ...}). Errors name the file.
struct ResumePoint {
  std::map<std::string, Tensor> state;
  nlohmann::json meta;
};
ResumePoint read_resume_point(const std::filesystem::path& last);

// Usage Error when a resumed run would change what the checkpoint fixed.
template <class T>
void require_same_on_resume(const char* field, const T& now, const T& saved) {
  if (now != saved)
    fail_usage("--resume: ", field, " differs from the checkpoint's (",
               nlohmann::json(saved).dump(), "); a resumed run must keep it");
}

// Fills in the SHA-256 and size of an input file the recipe names (a teacher, a checkpoint to
// start from, reflow pairs; `path` empty: none). On resume, usage Error when the file is not the
// one the run started with: the run would change.
void record_input_file(const char* flag, const std::string& path, bool resume, std::string& sha256,
                       int64_t& bytes);

// Usage Error unless the config of a starting checkpoint (`flag` `path`: --init, --qat-from)
// has the channels, image size and class count that `source` (e.g. "the data (--data X)") needs,
// naming the first field that differs.
void require_fits(const char* flag, const std::string& path, const nlohmann::json& config,
                  int64_t channels, int64_t image_size, int64_t classes, const std::string& source);

// Loads the weights, optimizer and EMA state, checks that the step count matches whole epochs of
// `batches_per_epoch`, and returns {epochs done, steps done}.
std::pair<int64_t, int64_t> restore_run(const ResumePoint& from, const std::filesystem::path& last,
                                        nn::Module& model, Optimizer& optim, Ema* ema,
                                        int64_t batches_per_epoch);

// Refuses non-finite weights (the previous checkpoints stay), then writes both files atomically.
// `write_model`, when set, writes model.safetensors (to the path it is given) instead of the
// plain (EMA) weights: a run whose shipped form differs from its training form, e.g. the int8
// export of quantisation-aware training, so the file never holds the training form.
void save_run_checkpoints(const RunPaths& paths, nn::Module& model, const Optimizer& optim,
                          Ema* ema, const nlohmann::json& config, const nlohmann::json& train_meta,
                          int64_t epochs_done,
                          const std::function<void(const std::string&)>& write_model = {});

}  // namespace duet::train
