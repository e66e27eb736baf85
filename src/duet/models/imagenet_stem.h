// The stem choice shared by the ImageNet-derived families (ResNet-18/34, ShuffleNetV2) and the
// choice-valued config fields their from_json reads (a string or number out of a fixed set).
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "duet/ops/pool.h"
#include "duet/tensor/error.h"

namespace duet::models {

// A field equal to one of `allowed` (strings or numbers); `fallback` when absent.
template <class T>
T config_choice(const nlohmann::json& j, const char* key, const T& fallback,
                std::initializer_list<T> allowed) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  const bool right_kind = std::is_arithmetic_v<T> ? v.is_number() : v.is_string();
  if (right_kind)
    for (const T& a : allowed)
      if (v.get<T>() == a) return a;
  std::string list;
  for (const T& a : allowed) list += (list.empty() ? "" : ", ") + nlohmann::json(a).dump();
  fail("model config: field '", key, "' must be one of ", list, ", got ", v.dump());
}

// "imagenet": the stride-4 stem these networks were designed for (a strided stem conv, then a
// 3x3 stride-2 max-pool). "small": a 3x3 stride-1 stem conv and no pool, the usual adaptation for
// 28x28 / 32x32 inputs, where a stride-4 stem would leave the last stage with 1x1 maps.
inline std::string config_stem(const nlohmann::json& j, int image_size) {
  return config_choice<std::string>(j, "stem", image_size < 64 ? "small" : "imagenet",
                                    {"small", "imagenet"});
}

// The stem's 3x3 stride-2 max-pool (padding 1, as in torchvision); only for stem "imagenet".
inline Tensor stem_max_pool(const Tensor& x) {
  return ops::max_pool2d(x, 3, 2, 1);
}

}  // namespace duet::models
