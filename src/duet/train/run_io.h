// What every training run (classify or generate) shares around its step: the progress bar and
// grep-able epoch lines, the train_log.jsonl kept in step with checkpoints on resume, the finite
// weights check before a checkpoint, and the atomic metrics.json.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "duet/models/checkpoint.h"
#include "duet/nn/module.h"

namespace duet::train {

// The metadata key of training checkpoints (last.safetensors): recipe, epoch, step, seed.
inline constexpr const char* kTrainMetaKey = models::kRunStateKey;

// The bar (only when stderr is a terminal), epoch lines on stdout, notes on stderr.
class Progress {
 public:
  // `lines`: where epoch lines go (stdout, or stderr when stdout carries a command's JSON).
  explicit Progress(bool enabled, std::FILE* lines = stdout);
  void update(int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss,
              double img_s);
  void line(const std::string& text);
  void note(const std::string& text);

 private:
  bool enabled_, bar_;
  std::FILE* lines_;
  std::chrono::steady_clock::time_point last_{};
};

[[noreturn]] void fail_recipe_field(const char* key, const std::string& value);

// Reads j[key] into `out` when present; Error naming the field on a wrong type.
template <class T>
void read_recipe_field(const nlohmann::json& j, const char* key, T& out) {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail_recipe_field(key, j.at(key).dump());
  }
}

bool all_parameters_finite(nn::Module& model);
std::string format_number(const char* printf_format, double v);

// Keeps the log lines of epochs <= `epochs` (a resumed run rewrites the ones after).
void truncate_log(const std::filesystem::path& path, int64_t epochs);
void append_log_line(const std::filesystem::path& path, const std::string& line);
// Writes `j` to `path` through a temporary file and a rename.
void write_json_atomically(const std::filesystem::path& path, const nlohmann::json& j);

}  // namespace duet::train
