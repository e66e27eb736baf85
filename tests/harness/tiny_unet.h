// The smallest class-conditional UNet config the generator tests share (two levels of 8 and 16
// channels, one block down, two up, no attention): fast enough to sample in a unit test.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

namespace duet::test {

inline nlohmann::json tiny_unet_config(int64_t classes, int64_t size) {
  return {{"family", "unet"},    {"in_channels", 1}, {"image_size", size}, {"num_classes", classes},
          {"channels", {8, 16}}, {"blocks_down", 1}, {"blocks_up", 2},     {"mid_attention", false},
          {"heads", 1},          {"embed_dim", 16},  {"groups", 4}};
}

}  // namespace duet::test
