// Reading the fields of a model config (the JSON stored in checkpoints) with one-line errors that
// name the field and what was expected; shared by the model families' from_json.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "duet/tensor/error.h"

namespace duet::models {

// The largest integer a config field takes: a sanity bound (no layer is a million wide), which
// also keeps products of fields (widths x multipliers) inside int.
inline constexpr int kConfigIntMax = 1 << 20;

// An integer field in [min_value, kConfigIntMax]; `fallback` when absent.
inline int config_int(const nlohmann::json& j, const char* key, int fallback, int min_value) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < min_value || v.get<int64_t>() > kConfigIntMax)
    fail("model config: field '", key, "' must be an integer in [", min_value, ", ", kConfigIntMax,
         "], got ", v.dump());
  return v.get<int>();
}

// A list of integers, each in [min_value, kConfigIntMax]; `fallback` when absent.
inline std::vector<int> config_int_list(const nlohmann::json& j, const char* key,
                                        const std::vector<int>& fallback, int min_value) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  std::vector<int> out;
  bool ok = v.is_array();
  for (size_t i = 0; ok && i < v.size(); ++i) {
    ok = v[i].is_number_integer() && v[i].get<int64_t>() >= min_value &&
         v[i].get<int64_t>() <= kConfigIntMax;
    if (ok) out.push_back(v[i].get<int>());
  }
  if (!ok)
    fail("model config: field '", key, "' must be a list of integers in [", min_value, ", ",
         kConfigIntMax, "], got ", v.dump());
  return out;
}

// A boolean field; `fallback` when absent.
inline bool config_bool(const nlohmann::json& j, const char* key, bool fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_boolean())
    fail("model config: field '", key, "' must be true or false, got ", v.dump());
  return v.get<bool>();
}

}  // namespace duet::models
