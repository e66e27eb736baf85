#include "duet/data/text.h"

#include <array>
#include <cctype>

namespace duet::data {
namespace {

using Glyph = std::array<uint8_t, kGlyphHeight>;  // one row per entry, bit 4 = leftmost pixel

Glyph glyph(char c) {
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'z') {
    static constexpr Glyph letters[26] = {
        {0, 0, 14, 1, 15, 17, 15},    {16, 16, 22, 25, 17, 17, 30},  // a b
        {0, 0, 14, 16, 16, 17, 14},   {1, 1, 13, 19, 17, 17, 15},    // c d
        {0, 0, 14, 17, 31, 16, 14},   {6, 9, 8, 28, 8, 8, 8},        // e f
        {0, 15, 17, 17, 15, 1, 14},   {16, 16, 22, 25, 17, 17, 17},  // g h
        {4, 0, 12, 4, 4, 4, 14},      {2, 0, 6, 2, 2, 18, 12},       // i j
        {16, 16, 18, 20, 24, 20, 18}, {12, 4, 4, 4, 4, 4, 14},       // k l
        {0, 0, 26, 21, 21, 17, 17},   {0, 0, 22, 25, 17, 17, 17},    // m n
        {0, 0, 14, 17, 17, 17, 14},   {0, 0, 30, 17, 30, 16, 16},    // o p
        {0, 0, 15, 17, 15, 1, 1},     {0, 0, 22, 25, 16, 16, 16},    // q r
        {0, 0, 15, 16, 14, 1, 30},    {8, 8, 28, 8, 8, 9, 6},        // s t
        {0, 0, 17, 17, 17, 19, 13},   {0, 0, 17, 17, 17, 10, 4},     // u v
        {0, 0, 17, 17, 21, 21, 10},   {0, 0, 17, 10, 4, 10, 17},     // w x
        {0, 0, 17, 17, 15, 1, 14},    {0, 0, 31, 2, 4, 8, 31},       // y z
    };
    return letters[c - 'a'];
  }
  if (c >= '0' && c <= '9') {
    static constexpr Glyph digits[10] = {
        {14, 17, 19, 21, 25, 17, 14}, {4, 12, 4, 4, 4, 4, 14},  {14, 17, 1, 2, 4, 8, 31},
        {31, 2, 4, 2, 1, 17, 14},     {2, 6, 10, 18, 31, 2, 2}, {31, 16, 30, 1, 1, 17, 14},
        {6, 8, 16, 30, 17, 17, 14},   {31, 1, 2, 4, 8, 8, 8},   {14, 17, 17, 14, 17, 17, 14},
        {14, 17, 17, 15, 1, 2, 12},
    };
    return digits[c - '0'];
  }
  switch (c) {
    case '-':
      return {0, 0, 0, 14, 0, 0, 0};
    case '/':
      return {0, 1, 2, 4, 8, 16, 0};
    case '_':
      return {0, 0, 0, 0, 0, 0, 31};
    case '.':
      return {0, 0, 0, 0, 0, 12, 12};
    default:
      return {0, 0, 0, 0, 0, 0, 0};
  }
}

}  // namespace

int64_t text_width(std::string_view text) {
  return text.empty() ? 0 : static_cast<int64_t>(text.size()) * kGlyphAdvance - 1;
}

void draw_text(Image& image, int64_t x, int64_t y, std::string_view text, uint8_t value) {
  for (size_t i = 0; i < text.size(); ++i) {
    const Glyph g = glyph(text[i]);
    const int64_t left = x + static_cast<int64_t>(i) * kGlyphAdvance;
    for (int64_t r = 0; r < kGlyphHeight; ++r)
      for (int64_t col = 0; col < kGlyphWidth; ++col) {
        if (!((g[static_cast<size_t>(r)] >> (kGlyphWidth - 1 - col)) & 1)) continue;
        const int64_t px = left + col, py = y + r;
        if (px < 0 || py < 0 || px >= image.width || py >= image.height) continue;
        for (int64_t ch = 0; ch < image.channels; ++ch)
          image.pixels[static_cast<size_t>((py * image.width + px) * image.channels + ch)] = value;
      }
  }
}

}  // namespace duet::data
