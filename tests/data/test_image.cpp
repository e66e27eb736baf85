#include "../harness/error_capture.h"
#include "duet/data/image.h"

#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "duet/tensor/error.h"
#include "temp_dir.h"

namespace duet::data {
namespace {

using test::TempDir;

Image gradient(int64_t h, int64_t w, int64_t c) {
  Image im(h, w, c);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t ch = 0; ch < c; ++ch)
        im.at(y, x, ch) =
            static_cast<uint8_t>((y * 255 / std::max<int64_t>(h - 1, 1) + x * 3 + ch * 40) % 256);
  return im;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

TEST(Image, PngRoundTripIsExact) {
  TempDir dir;
  for (int64_t c : {1, 3}) {
    const Image im = gradient(13, 7, c);
    const std::string path = dir.file("a" + std::to_string(c) + ".png");
    write_png(path, im);
    const Image back = read_image(path);
    EXPECT_EQ(back.height, 13);
    EXPECT_EQ(back.width, 7);
    EXPECT_EQ(back.channels, c);
    EXPECT_EQ(back.pixels, im.pixels);
  }
}

TEST(Image, JpegRoundTripWithinTolerance) {
  TempDir dir;
  for (int64_t c : {1, 3}) {
    // Smooth content: JPEG at quality 95 keeps it within a few levels.
    Image im(24, 40, c);
    for (int64_t y = 0; y < 24; ++y)
      for (int64_t x = 0; x < 40; ++x)
        for (int64_t ch = 0; ch < c; ++ch)
          im.at(y, x, ch) =
              static_cast<uint8_t>(40 + 3 * x + 2 * y + 20 * ch);  // <= 243: no wrap-around
    const std::string path = dir.file("a.jpg");
    write_jpeg(path, im, 95);
    const Image back = read_image(path);
    ASSERT_EQ(back.channels, c);
    ASSERT_EQ(back.pixels.size(), im.pixels.size());
    double err = 0;
    int max_err = 0;
    for (size_t i = 0; i < im.pixels.size(); ++i) {
      const int d = std::abs(int{back.pixels[i]} - int{im.pixels[i]});
      err += d, max_err = std::max(max_err, d);
    }
    EXPECT_LT(err / static_cast<double>(im.pixels.size()), 2.0);
    EXPECT_LE(max_err, 12);
  }
  EXPECT_THROW(encode_jpeg(gradient(4, 4, 3), 0), Error);
}

// A PNG written directly with libpng in a format our writer never produces.
std::vector<uint8_t> raw_png(int w, int h, int color_type, int bit_depth,
                             const std::vector<uint8_t>& rows_bytes,
                             const png_color* palette = nullptr, int palette_n = 0) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep d, size_t n) {
        auto* v = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        v->insert(v->end(), d, d + n);
      },
      nullptr);
  png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (palette) png_set_PLTE(png, info, palette, palette_n);
  png_write_info(png, info);
  const size_t stride = rows_bytes.size() / static_cast<size_t>(h);
  for (int y = 0; y < h; ++y) png_write_row(png, rows_bytes.data() + y * stride);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// write_image picks the encoder by the name (read_image then sees that encoder's signature);
// other names are refused before anything is written.
TEST(Image, WriteImageFollowsTheExtension) {
  TempDir dir;
  const Image im = gradient(9, 11, 3);
  auto head = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> b(4);
    in.read(reinterpret_cast<char*>(b.data()), 4);
    return b;
  };
  for (const char* name : {"a.png", "b.PNG"}) {
    write_image(dir.file(name), im);
    EXPECT_EQ(head(dir.file(name)), (std::vector<uint8_t>{0x89, 'P', 'N', 'G'})) << name;
    EXPECT_EQ(read_image(dir.file(name)).pixels, im.pixels);
  }
  for (const char* name : {"c.jpg", "d.JPEG"}) {
    write_image(dir.file(name), im);
    EXPECT_EQ(head(dir.file(name))[0], 0xFF) << name;  // SOI marker FF D8
    EXPECT_EQ(head(dir.file(name))[1], 0xD8) << name;
    EXPECT_EQ(read_image(dir.file(name)).height, 9);
  }
  EXPECT_EQ(image_format_for("x/y.Jpg"), ImageFormat::jpeg);
  EXPECT_FALSE(image_format_for("grid.gif"));
  EXPECT_FALSE(image_format_for("png"));
  EXPECT_THROW(write_image(dir.file("e.bmp"), im), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("e.bmp")));
}

TEST(Image, PngFormatsDecodeToGrayOrRgb) {
  // 16-bit gray: the high byte survives.
  {
    const Image im =
        decode_png(raw_png(2, 1, PNG_COLOR_TYPE_GRAY, 16, {0x12, 0x34, 0xAB, 0xCD}), "g16");
    EXPECT_EQ(im.channels, 1);
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{0x12, 0xAB}));
  }
  // 1-bit gray expands to 0 / 255.
  {
    const Image im = decode_png(raw_png(3, 1, PNG_COLOR_TYPE_GRAY, 1, {0b10100000}), "g1");
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{255, 0, 255}));
  }
  // Gray + alpha composites over black.
  {
    const Image im =
        decode_png(raw_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {200, 255, 200, 0}), "ga");
    EXPECT_EQ(im.channels, 1);
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{200, 0}));
  }
  // RGBA: half alpha halves the colour.
  {
    const Image im = decode_png(raw_png(1, 1, PNG_COLOR_TYPE_RGBA, 8, {100, 200, 50, 128}), "rgba");
    EXPECT_EQ(im.channels, 3);
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{50, 100, 25}));
  }
  // Palette, 4-bit indices.
  {
    const png_color pal[2] = {{10, 20, 30}, {200, 100, 0}};
    const Image im = decode_png(raw_png(2, 1, PNG_COLOR_TYPE_PALETTE, 4, {0x10}, pal, 2), "pal");
    EXPECT_EQ(im.channels, 3);
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{200, 100, 0, 10, 20, 30}));
  }
}

using duet::test::error_of;

TEST(Image, CorruptAndTruncatedPngRejected) {
  TempDir dir;
  const std::vector<uint8_t> good = encode_png(gradient(20, 30, 3));
  // Every truncation fails cleanly (IEND is checked, so even a cut after the pixels counts).
  for (size_t keep = 0; keep < good.size(); keep += std::max<size_t>(1, good.size() / 97)) {
    const std::vector<uint8_t> cut(good.begin(), good.begin() + keep);
    EXPECT_THROW(decode_png(cut, "cut.png"), Error) << "keep " << keep;
  }
  // Flipped bytes inside IDAT break its CRC.
  std::vector<uint8_t> bad = good;
  bad[bad.size() / 2] ^= 0xFF;
  write_bytes(dir.file("bad.png"), bad);
  const std::string msg = error_of([&] { read_image(dir.file("bad.png")); });
  EXPECT_NE(msg.find("bad.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("PNG"), std::string::npos) << msg;
  // Unknown signature.
  write_bytes(dir.file("text.png"), {'h', 'e', 'l', 'l', 'o', '!', '!', '!', '!'});
  EXPECT_NE(error_of([&] { read_image(dir.file("text.png")); }).find("text.png"),
            std::string::npos);
}

TEST(Image, CorruptAndTruncatedJpegRejected) {
  TempDir dir;
  const std::vector<uint8_t> good = encode_jpeg(gradient(32, 48, 3), 90);
  ASSERT_NO_THROW(decode_jpeg(good, "good.jpg"));
  for (size_t keep = 3; keep < good.size(); keep += std::max<size_t>(1, good.size() / 97)) {
    const std::vector<uint8_t> cut(good.begin(), good.begin() + keep);
    EXPECT_THROW(decode_jpeg(cut, "cut.jpg"), Error) << "keep " << keep;
  }
  // Missing only the final EOI marker: libjpeg merely warns; we must still reject.
  EXPECT_THROW(decode_jpeg(std::vector<uint8_t>(good.begin(), good.end() - 2), "noeoi.jpg"), Error);
  // A bad sample precision in the frame header is a hard libjpeg error (which would exit()).
  std::vector<uint8_t> bad = good;
  for (size_t i = 0; i + 4 < bad.size(); ++i)
    if (bad[i] == 0xFF && bad[i + 1] == 0xC0) {
      bad[i + 4] = 3;  // precision byte
      break;
    }
  write_bytes(dir.file("bad.jpg"), bad);
  const std::string msg = error_of([&] { read_image(dir.file("bad.jpg")); });
  EXPECT_NE(msg.find("bad.jpg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("JPEG"), std::string::npos) << msg;
  // Signature then garbage.
  std::vector<uint8_t> junk = {0xFF, 0xD8, 0xFF};
  for (int i = 0; i < 200; ++i) junk.push_back(static_cast<uint8_t>(i * 7));
  EXPECT_THROW(decode_jpeg(junk, "junk.jpg"), Error);
}

TEST(Image, ResizeKnownFacts) {
  const Image im = gradient(9, 11, 3);
  EXPECT_EQ(resize_bilinear(im, 9, 11).pixels, im.pixels);  // same size: identity
  // A constant image stays constant at any size.
  Image flat(10, 6, 1);
  std::fill(flat.pixels.begin(), flat.pixels.end(), 77);
  for (auto [h, w] : {std::pair{3, 2}, {1, 1}, {25, 13}}) {
    const Image r = resize_bilinear(flat, h, w);
    EXPECT_EQ(r.height, h);
    EXPECT_EQ(r.width, w);
    for (uint8_t v : r.pixels) EXPECT_EQ(v, 77);
  }
  // Halving averages 2x2 blocks (area-correct): a checkerboard becomes flat mid-gray.
  Image checker(8, 8, 1);
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x) checker.at(y, x, 0) = ((x + y) % 2) ? 200 : 0;
  const Image half = resize_bilinear(checker, 4, 4);
  for (int64_t y = 1; y < 3; ++y)
    for (int64_t x = 1; x < 3; ++x) EXPECT_NEAR(half.at(y, x, 0), 100, 1);
  // Shrinking to one pixel gives the mean.
  EXPECT_NEAR(resize_bilinear(checker, 1, 1).pixels[0], 100, 1);
}

TEST(Image, ChannelConversion) {
  const Image g = gradient(3, 4, 1);
  const Image rgb = convert_channels(g, 3);
  ASSERT_EQ(rgb.channels, 3);
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(rgb.at(y, x, c), g.at(y, x, 0));
  EXPECT_EQ(convert_channels(rgb, 1).pixels, g.pixels);  // gray -> rgb -> gray is exact
  Image red(1, 1, 3);
  red.pixels = {255, 0, 0};
  EXPECT_EQ(convert_channels(red, 1).pixels[0], 76);  // 0.299 * 255
  EXPECT_THROW(convert_channels(g, 2), Error);
}

}  // namespace
}  // namespace duet::data
