// Forward multiply-accumulates per image of a model config, counted by the layers themselves
// (the numbers `duet info` prints), for the GFLOP/s columns of the model benchmarks.
#pragma once

#include <nlohmann/json.hpp>

namespace duet::bench {

// Builds a separate copy of the model, so the measured one (its BatchNorm statistics, its
// optimizer) is untouched.
double forward_macs_per_image(const nlohmann::json& config);

}  // namespace duet::bench
