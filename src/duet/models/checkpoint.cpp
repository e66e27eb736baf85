#include "duet/models/checkpoint.h"

#include <map>

#include "duet/io/tensor_io.h"
#include "duet/models/registry.h"
#include "duet/tensor/error.h"

namespace duet::models {

void save_model(const std::string& path, nn::Module& model, const nlohmann::json& config) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : model.named_parameters()) tensors.emplace_back(name, *t);
  for (auto& [name, t] : model.named_buffers()) tensors.emplace_back(name, *t);
  io::save_tensors(path, tensors,
                   {{"duet.config", config.dump()}, {"duet.format_version", kFormatVersion}});
}

nlohmann::json read_model_config(const io::SafetensorsFile& file) {
  const auto& meta = file.metadata();
  auto it = meta.find("duet.config");
  if (it == meta.end())
    fail(file.path(),
         ": __metadata__ has no 'duet.config' (not a duet checkpoint; expected the model "
         "config as JSON)");
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail(file.path(), ": __metadata__ 'duet.config' is not valid JSON (", e.what(), ")");
  }
}

LoadedModel load_model(const std::string& path) {
  const auto file = io::SafetensorsFile::load(path);
  LoadedModel out;
  out.config = read_model_config(file);
  if (out.config.contains("quantization"))
    fail(path, ": an int8 inference checkpoint (made by duet quantize); this command needs the ",
         "float model it was made from");
  Generator gen(0);  // weights are overwritten by the file
  try {
    out.model = build_model(out.config, gen);
    std::map<std::string, Tensor> state = io::tensors_from_file(file, {.floats_to_f32 = true});
    if (file.metadata().count(kRunStateKey))
      std::erase_if(state, [](const auto& entry) { return is_run_state_tensor(entry.first); });
    out.model->load_state_dict(state);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return out;
}

}  // namespace duet::models
