// A tiny built-in 5x7 bitmap font, enough to name the rows of a sample grid inside the PNG itself
// (lower-case letters, digits, space, '-', '/', '_', '.'; upper case is drawn as lower case,
// anything else as a blank), so no font library is needed.
#pragma once

#include <cstdint>
#include <string_view>

#include "duet/data/image.h"

namespace duet::data {

inline constexpr int64_t kGlyphWidth = 5, kGlyphHeight = 7, kGlyphAdvance = 6;

// Pixels a string occupies horizontally (kGlyphAdvance per character, no trailing gap).
int64_t text_width(std::string_view text);

// Draws `text` with its top-left corner at (x, y) in `value` on every channel; clipped to the
// image.
void draw_text(Image& image, int64_t x, int64_t y, std::string_view text, uint8_t value);

}  // namespace duet::data
