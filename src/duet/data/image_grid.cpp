#include "duet/data/image_grid.h"

#include <algorithm>
#include <cmath>

#include "duet/data/text.h"
#include "duet/tensor/error.h"

namespace duet::data {
namespace {

void check_batch(const Tensor& batch) {
  DUET_CHECK(batch.rank() == 4 && batch.dtype() == DType::f32 && batch.is_contiguous() &&
                 (batch.dim(1) == 1 || batch.dim(1) == 3),
             "image grid: expected contiguous f32 [N, 1|3, H, W], got ", batch.shape().str());
}

uint8_t to_byte(float v, float lo, float hi) {
  const float u = (v - lo) / (hi - lo) * 255.0f;
  if (!(u > 0.0f)) return 0;  // also NaN: a broken sample shows black, never garbage
  return static_cast<uint8_t>(std::lround(std::min(u, 255.0f)));
}

}  // namespace

Image to_image(const Tensor& batch, int64_t index, float lo, float hi) {
  check_batch(batch);
  DUET_CHECK(index >= 0 && index < batch.dim(0), "image grid: index ", index, " out of ",
             batch.dim(0));
  const int64_t c = batch.dim(1), h = batch.dim(2), w = batch.dim(3);
  Image img;
  img.channels = c;
  img.height = h;
  img.width = w;
  img.pixels.resize(static_cast<size_t>(c * h * w));
  const float* src = batch.data<float>() + index * c * h * w;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k)
        img.pixels[static_cast<size_t>((y * w + x) * c + k)] =
            to_byte(src[(k * h + y) * w + x], lo, hi);
  return img;
}

Image image_grid(const Tensor& batch, int64_t columns, int64_t pad, uint8_t fill, float lo,
                 float hi) {
  check_batch(batch);
  DUET_CHECK(columns >= 1 && pad >= 0 && pad <= 64, "image grid: columns ", columns, " and pad ",
             pad, " must be >= 1 and in [0, 64]");
  const int64_t n = batch.dim(0), c = batch.dim(1), h = batch.dim(2), w = batch.dim(3);
  const int64_t cols = std::min(columns, std::max<int64_t>(n, 1));
  const int64_t rows = (n + cols - 1) / cols;
  Image grid;
  grid.channels = c;
  grid.height = rows * (h + pad) + pad;
  grid.width = cols * (w + pad) + pad;
  grid.pixels.assign(static_cast<size_t>(grid.height * grid.width * c), fill);
  for (int64_t i = 0; i < n; ++i) {
    const Image one = to_image(batch, i, lo, hi);
    const int64_t top = pad + (i / cols) * (h + pad), left = pad + (i % cols) * (w + pad);
    for (int64_t y = 0; y < h; ++y)
      std::copy_n(one.pixels.begin() + y * w * c, w * c,
                  grid.pixels.begin() + ((top + y) * grid.width + left) * c);
  }
  return grid;
}

Image label_grid_rows(const Image& grid, const std::vector<std::string>& labels,
                      int64_t cell_height, int64_t pad, uint8_t fill) {
  int64_t margin = 0;
  for (const auto& l : labels) margin = std::max(margin, text_width(l));
  if (margin == 0) return grid;
  margin += 2 * pad;
  Image out;
  out.channels = grid.channels;
  out.height = grid.height;
  out.width = grid.width + margin;
  out.pixels.assign(static_cast<size_t>(out.height * out.width * out.channels), fill);
  for (int64_t y = 0; y < grid.height; ++y)
    std::copy_n(grid.pixels.begin() + y * grid.width * grid.channels, grid.width * grid.channels,
                out.pixels.begin() + (y * out.width + margin) * out.channels);
  const uint8_t ink = fill >= 128 ? 0 : 255;
  for (size_t r = 0; r < labels.size(); ++r) {
    const int64_t top = pad + static_cast<int64_t>(r) * (cell_height + pad);
    draw_text(out, pad, top + (cell_height - kGlyphHeight) / 2, labels[r], ink);
  }
  return out;
}

}  // namespace duet::data
