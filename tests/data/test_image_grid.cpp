// Sample grids: value-range mapping to bytes (clamped, NaN as black), grid geometry, and row
// labels drawn with the built-in font.
#include <gtest/gtest.h>

#include <cmath>

#include "duet/data/image_grid.h"
#include "duet/data/text.h"

using namespace duet;
using namespace duet::data;

TEST(ImageGrid, MapsTheValueRangeToBytes) {
  const Tensor t = Tensor::from_vector(std::vector<float>{-1.0f, 0.0f, 1.0f, 3.0f, -7.0f, NAN},
                                       Shape{1, 1, 2, 3});
  const Image im = to_image(t, 0);
  ASSERT_EQ(im.pixels.size(), 6u);
  EXPECT_EQ(im.pixels[0], 0);
  EXPECT_EQ(im.pixels[1], 128);  // 127.5 rounds half away from zero
  EXPECT_EQ(im.pixels[2], 255);
  EXPECT_EQ(im.pixels[3], 255);  // clamped
  EXPECT_EQ(im.pixels[4], 0);
  EXPECT_EQ(im.pixels[5], 0);  // NaN shows black
}

TEST(ImageGrid, GeometryAndPlacement) {
  // 5 images of 1x2x3, 2 per row, pad 1: 3 rows.
  std::vector<float> v(5 * 6);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (i / 6) % 2 ? 1.0f : -1.0f;  // odd images white
  const Image g = image_grid(Tensor::from_vector(v, Shape{5, 1, 2, 3}), 2, 1, 100);
  EXPECT_EQ(g.width, 2 * (3 + 1) + 1);
  EXPECT_EQ(g.height, 3 * (2 + 1) + 1);
  EXPECT_EQ(g.pixels[0], 100);                // frame
  EXPECT_EQ(g.pixels[1 * g.width + 1], 0);    // image 0 (black) at (1, 1)
  EXPECT_EQ(g.pixels[1 * g.width + 5], 255);  // image 1 (white) at (1, 5)
  EXPECT_EQ(g.pixels[7 * g.width + 1], 0);    // image 4 (black) on row 3
  EXPECT_EQ(g.pixels[7 * g.width + 5], 100);  // no sixth image: fill
}

TEST(ImageGrid, RowLabelsUseTheBuiltInFont) {
  EXPECT_EQ(text_width(""), 0);
  EXPECT_EQ(text_width("bag"), 3 * kGlyphAdvance - 1);
  Image blank;
  blank.channels = 1, blank.height = 7, blank.width = 5;
  blank.pixels.assign(35, 0);
  draw_text(blank, 0, 0, "1", 9);
  // The digit one: ..#.. / .##.. / ..#.. x4 / .###.
  const char* rows[7] = {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."};
  for (int r = 0; r < 7; ++r)
    for (int c = 0; c < 5; ++c)
      EXPECT_EQ(blank.pixels[r * 5 + c], rows[r][c] == '#' ? 9 : 0) << r << "," << c;
  draw_text(blank, 3, 3, "x", 1);  // clipped at the edges, no out-of-bounds write
  Image grid;
  grid.channels = 3, grid.height = 20, grid.width = 10;
  grid.pixels.assign(600, 255);
  const Image labelled = label_grid_rows(grid, {"a", "dress"}, 8, 2);
  EXPECT_EQ(labelled.width, 10 + text_width("dress") + 4);
  EXPECT_EQ(labelled.height, 20);
  int ink = 0;
  for (uint8_t p : labelled.pixels) ink += p == 0;
  EXPECT_GT(ink, 0);
}
