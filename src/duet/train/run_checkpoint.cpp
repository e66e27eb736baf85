#include "duet/train/run_checkpoint.h"

#include <vector>

#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/checkpoint.h"
#include "duet/train/distill_digest.h"
#include "duet/train/run_io.h"

namespace duet::train {
namespace fs = std::filesystem;

void record_input_file(const char* flag, const std::string& path, bool resume, std::string& sha256,
                       int64_t& bytes) {
  if (path.empty()) return;
  if (!fs::is_regular_file(path)) fail(flag, " ", path, ": no such file");
  const auto now_bytes = static_cast<int64_t>(fs::file_size(path));
  const std::string now_sha = sha256_file(path);
  if (resume && (now_sha != sha256 || now_bytes != bytes))
    fail_usage("--resume: ", flag, " ", path, " changed since the run started (", bytes,
               " bytes, sha256 ", sha256, "; now ", now_bytes, " bytes, sha256 ", now_sha, ")");
  sha256 = now_sha;
  bytes = now_bytes;
}

void require_fits(const char* flag, const std::string& path, const nlohmann::json& config,
                  int64_t channels, int64_t image_size, int64_t classes,
                  const std::string& source) {
  const std::pair<const char*, int64_t> wanted[] = {
      {"in_channels", channels}, {"image_size", image_size}, {"num_classes", classes}};
  for (const auto& [field, want] : wanted) {
    const int64_t got = config.value(field, int64_t{-1});
    if (got != want)
      fail_usage(flag, " ", path, ": field '", field, "' is ", got, ", ", source, " needs ", want);
  }
}

RunPaths::RunPaths(const std::string& out_dir)
    : dir(out_dir),
      last(dir / "last.safetensors"),
      model(dir / "model.safetensors"),
      log(dir / "train_log.jsonl"),
      metrics(dir / "metrics.json") {}

ResumePoint read_resume_point(const fs::path& last) {
  if (!fs::exists(last)) fail(last.string(), ": no checkpoint to resume from");
  const auto file = io::SafetensorsFile::load(last.string());
  const auto it = file.metadata().find(kTrainMetaKey);
  if (it == file.metadata().end())
    fail(last.string(), ": __metadata__ has no '", kTrainMetaKey,
         "' (not a duet training checkpoint; model.safetensors cannot be resumed)");
  ResumePoint p;
  try {
    p.meta = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail(last.string(), ": __metadata__ '", kTrainMetaKey, "' is malformed (", e.what(), ")");
  }
  if (!p.meta.is_object())
    fail(last.string(), ": __metadata__ '", kTrainMetaKey, "' must be a JSON object");
  p.state = io::tensors_from_file(file, {});
  return p;
}

std::pair<int64_t, int64_t> restore_run(const ResumePoint& from, const fs::path& last,
                                        nn::Module& model, Optimizer& optim, Ema* ema,
                                        int64_t batches_per_epoch) {
  std::map<std::string, Tensor> weights;
  for (const auto& [k, t] : from.state)
    if (!models::is_run_state_tensor(k)) weights.emplace(k, t);
  try {
    model.load_state_dict(weights);
    optim.load_state_dict(from.state);
    if (ema) ema->load_state_dict(from.state);
  } catch (const Error& e) {
    fail(last.string(), ": ", e.what());
  }
  const int64_t epoch = from.meta.value("epoch", int64_t{0});
  const int64_t step = from.meta.value("step", int64_t{0});
  DUET_CHECK(step == epoch * batches_per_epoch && step == optim.step_count(), last.string(),
             ": step ", step, " does not match epoch ", epoch, " x ", batches_per_epoch,
             " batches (was the data changed?)");
  return {epoch, step};
}

void save_run_checkpoints(const RunPaths& paths, nn::Module& model, const Optimizer& optim,
                          Ema* ema, const nlohmann::json& config, const nlohmann::json& train_meta,
                          int64_t epochs_done,
                          const std::function<void(const std::string&)>& write_model) {
  if (!all_parameters_finite(model))
    fail("epoch ", epochs_done,
         ": the weights are no longer finite; stopping. The last good checkpoint is kept (",
         fs::exists(paths.last) ? paths.last.string() : "none written yet", ")");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : model.named_parameters()) tensors.emplace_back(name, *t);
  for (auto& [name, t] : model.named_buffers()) tensors.emplace_back(name, *t);
  for (auto& e : optim.state_dict()) tensors.push_back(std::move(e));
  if (ema)
    for (auto& e : ema->state_dict()) tensors.push_back(std::move(e));
  io::save_tensors(paths.last.string(), tensors,
                   {{"duet.config", config.dump()},
                    {"duet.format_version", models::kFormatVersion},
                    {kTrainMetaKey, train_meta.dump()}});
  if (write_model) return write_model(paths.model.string());
  std::unique_ptr<EmaScope> scope;
  if (ema) scope = std::make_unique<EmaScope>(*ema, model);
  models::save_model(paths.model.string(), model, config);
}

}  // namespace duet::train
