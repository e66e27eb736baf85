// The gap report as one self-contained HTML page: inline CSS, sample grids as base64 PNG data
// URIs, the robustness plot as inline SVG, no scripts and nothing fetched, so it opens offline.
// Rendered from the report's JSON (GapReport::to_json), so page and JSON show the same numbers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duet::eval {

// Standard base64 (RFC 4648, with '=' padding).
std::string base64_encode(std::span<const uint8_t> bytes);

// &, <, >, " and ' as character references.
std::string html_escape(std::string_view text);

// `report`: GapReport::to_json(); `grid_pngs[i]`: the PNG of report["generation"][i]'s grid.
std::string gap_html(const nlohmann::json& report,
                     const std::vector<std::vector<uint8_t>>& grid_pngs);

}  // namespace duet::eval
