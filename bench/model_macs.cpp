#include "bench/model_macs.h"

#include "duet/models/registry.h"

namespace duet::bench {

double forward_macs_per_image(const nlohmann::json& config) {
  return models::network_cost(config).macs;
}

}  // namespace duet::bench
