// The corruption-robustness plot of the gap report as inline SVG: one panel per corruption
// family, accuracy (0-100 %) against severity (0 = clean), one polyline per classifier
// (discriminative and generative), drawn from the report's JSON so the plot shows its numbers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace duet::eval {

// `points`: the report's robustness.points ([{"family", "severity", "discriminative":
// {"accuracy"}, "generative": {"accuracy"}}, ...]; the "clean" point starts every panel).
// Each line is <polyline class="discriminative|generative" data-family="F" .../>.
std::string robustness_svg(const nlohmann::json& points);

}  // namespace duet::eval
