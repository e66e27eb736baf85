#include "duet/models/registry.h"

#include "duet/models/resnet.h"
#include "duet/tensor/error.h"

namespace duet::models {
namespace {

struct Preset {
  const char* name;
  nlohmann::json config;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {"resnet20", ResNetConfig{20}.to_json()},
      {"resnet32", ResNetConfig{32}.to_json()},
      {"resnet56", ResNetConfig{56}.to_json()},
  };
  return p;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.emplace_back(p.name);
  return names;
}

nlohmann::json preset_config(const std::string& arch) {
  for (const auto& p : presets())
    if (arch == p.name) {
      nlohmann::json c = p.config;
      c["arch"] = arch;
      return c;
    }
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  fail_usage("unknown --arch '", arch, "' (known: ", known, ")");
}

std::shared_ptr<nn::Module> build_model(const nlohmann::json& config, Generator& gen) {
  const std::string family = config.value("family", "");
  if (family == "resnet")
    return std::make_shared<CifarResNet>(gen, ResNetConfig::from_json(config));
  fail("model config: unknown family '", family, "' (known: resnet)");
}

Shape input_shape(const nlohmann::json& config) {
  const int c = config.value("in_channels", 1), s = config.value("image_size", 28);
  return Shape{1, c, s, s};
}

}  // namespace duet::models
