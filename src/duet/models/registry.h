// Builds models from the JSON config stored in checkpoints, and names the built-in presets.
// This is the one place that maps an architecture name to a constructor.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "duet/nn/module.h"
#include "duet/tensor/rng.h"

namespace duet::models {

// The config of a named preset ("resnet20", "resnet32", "resnet56"); usage Error listing the
// known names otherwise.
nlohmann::json preset_config(const std::string& arch);
std::vector<std::string> preset_names();

// Builds the model a config describes (field "family" selects the builder).
std::shared_ptr<nn::Module> build_model(const nlohmann::json& config, Generator& gen);

// The input shape [1, C, H, W] a config expects.
Shape input_shape(const nlohmann::json& config);

struct NetworkCost {
  double macs = 0;         // forward multiply-accumulates per image, counted by the layers
  int64_t parameters = 0;  // (the numbers `duet info` prints)
};
// Builds a separate copy of the config's network and runs one image through it.
NetworkCost network_cost(const nlohmann::json& config);

}  // namespace duet::models
