// Turning model outputs back into pictures: float images in a value range become 8-bit images,
// and a batch becomes one grid image (what sample grids and `duet sample` write).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "duet/data/image.h"
#include "duet/tensor/tensor.h"

namespace duet::data {

// Image `index` of a [N, C, H, W] f32 batch (C = 1 or 3), mapping [lo, hi] to 0..255 (clamped).
Image to_image(const Tensor& batch, int64_t index, float lo = -1.0f, float hi = 1.0f);

// All images of the batch in rows of `columns`, separated and framed by `pad` pixels of `fill`.
Image image_grid(const Tensor& batch, int64_t columns, int64_t pad = 2, uint8_t fill = 255,
                 float lo = -1.0f, float hi = 1.0f);

// The grid with a margin on the left naming each row (one label per row of images, drawn with the
// built-in font, vertically centred on the row); `pad` and `fill` as given to image_grid.
Image label_grid_rows(const Image& grid, const std::vector<std::string>& labels,
                      int64_t cell_height, int64_t pad = 2, uint8_t fill = 255);

}  // namespace duet::data
