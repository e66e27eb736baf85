#include "duet/models/registry.h"

#include "duet/autograd/autograd.h"

#include "duet/models/imagenet_resnet.h"
#include "duet/models/repvgg.h"
#include "duet/models/resnet.h"
#include "duet/models/shufflenet_v2.h"
#include "duet/models/unet.h"
#include "duet/models/unified.h"
#include "duet/models/vit.h"
#include "duet/nn/profile.h"
#include "duet/tensor/error.h"

namespace duet::models {
namespace {

struct Preset {
  const char* name;
  nlohmann::json config;
};

// CPU-friendly: half of unet-s's widths, one residual block per level down and two up (70 M MACs
// per image against unet-s's 393 M).
UNetConfig unet_xs() {
  UNetConfig c;
  c.channels = {16, 32, 64};
  c.blocks_down = 1;
  c.blocks_up = 2;
  return c;
}

nlohmann::json with_family(nlohmann::json config, const char* family) {
  config["family"] = family;
  return config;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {"resnet20", ResNetConfig{.depth = 20}.to_json()},
      {"resnet32", ResNetConfig{.depth = 32}.to_json()},
      {"resnet56", ResNetConfig{.depth = 56}.to_json()},
      // ImageNet architectures on 1x28x28 with the small stem (3x3 stride-1 conv, no max-pool).
      {"resnet18", ImageNetResNetConfig{.depth = 18}.to_json()},
      {"resnet34", ImageNetResNetConfig{.depth = 34}.to_json()},
      {"shufflenet_v2_x0_5", ShuffleNetV2Config{0.5}.to_json()},
      {"shufflenet_v2_x1_0", ShuffleNetV2Config{1.0}.to_json()},
      {"unet-s", UNetConfig{}.to_json()},
      {"unet-xs", unet_xs().to_json()},
      // unet-xs whose encoder also classifies (models/unified.h).
      {"unified-xs", with_family(unet_xs().to_json(), "unified")},
      {"repvgg_a0", RepVGGConfig{}.to_json()},
      {"vit_tiny_p4", ViTConfig{}.to_json()},
      {"vit_tiny_p7", ViTConfig{.patch = 7}.to_json()},
  };
  return p;
}

template <class Model, class Config>
std::shared_ptr<nn::Module> build(const nlohmann::json& config, Generator& gen) {
  return std::make_shared<Model>(gen, Config::from_json(config));
}

// Config "family" -> builder: the one place that maps a family to its constructor.
struct Family {
  const char* name;
  std::shared_ptr<nn::Module> (*build)(const nlohmann::json&, Generator&);
};

const std::vector<Family>& families() {
  static const std::vector<Family> f = {
      {"resnet", build<CifarResNet, ResNetConfig>},
      {"imagenet_resnet", build<ImageNetResNet, ImageNetResNetConfig>},
      {"shufflenet_v2", build<ShuffleNetV2, ShuffleNetV2Config>},
      {"unet", build<UNet, UNetConfig>},
      {"unified", build<UnifiedNet, UNetConfig>},
      {"repvgg", build<RepVGG, RepVGGConfig>},
      {"vit", build<VisionTransformer, ViTConfig>},
  };
  return f;
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
  if (!config.is_object() || !config.contains("family") || !config.at("family").is_string())
    fail("model config: expected a JSON object with a string field 'family', got ", config.dump());
  const std::string family = config.at("family").get<std::string>();
  std::string known;
  for (const auto& f : families()) {
    if (family == f.name) return f.build(config, gen);
    known += (known.empty() ? "" : ", ") + std::string(f.name);
  }
  fail("model config: unknown family '", family, "' (known: ", known, ")");
}

NetworkCost network_cost(const nlohmann::json& config) {
  Generator gen(0);
  const auto model = build_model(config, gen);
  model->eval();
  nn::ProfileScope scope;
  {
    autograd::NoGradGuard no_grad;
    model->forward(Tensor::zeros(input_shape(config)));
  }
  NetworkCost cost;
  for (const auto& r : scope.records()) cost.macs += r.macs;
  cost.parameters = model->parameter_count();
  return cost;
}

Shape input_shape(const nlohmann::json& config) {
  const int c = config.value("in_channels", 1), s = config.value("image_size", 28);
  return Shape{1, c, s, s};
}

}  // namespace duet::models
