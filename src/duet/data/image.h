// 8-bit images in memory (HWC, 1 or 3 channels) and their PNG / JPEG files. Decoding goes through
// libpng and libjpeg with longjmp error handlers, so a corrupt or truncated file becomes one
// duet::Error naming the file, never a crash or a library exit(). Resize and gray<->RGB helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace duet::data {

struct Image {
  int64_t height = 0, width = 0, channels = 0;  // channels: 1 (gray) or 3 (RGB)
  std::vector<uint8_t> pixels;                  // HWC, height * width * channels bytes

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c);  // zero-filled; throws on bad sizes
  uint8_t& at(int64_t y, int64_t x, int64_t c) {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
};

// Decoders accept any PNG (1-16 bit, gray, gray+alpha, palette, RGB, RGBA, tRNS) and any JPEG
// (gray, YCbCr, CMYK/YCCK). Gray sources give 1 channel, colour sources 3. Alpha is composited
// over black, the background convention of the data sets we train on. `label` names the source in
// error messages.
Image decode_png(std::span<const uint8_t> bytes, const std::string& label);
Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& label);
// Reads a PNG or JPEG file, chosen by its signature bytes (not by its name).
Image read_image(const std::string& path);

std::vector<uint8_t> encode_png(const Image& image);
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 90);  // quality 1..100
void write_png(const std::string& path, const Image& image);
void write_jpeg(const std::string& path, const Image& image, int quality = 90);

// The format a file name asks for: .png, or .jpg / .jpeg, in any case; nullopt for any other
// name (commands check their output names with it before long work starts).
enum class ImageFormat { png, jpeg };
std::optional<ImageFormat> image_format_for(const std::string& path);
// write_png or write_jpeg (quality 90) by the name's extension; Error naming the file otherwise.
void write_image(const std::string& path, const Image& image);

// Separable triangle (bilinear) filter whose support widens with the downscale factor, so
// shrinking averages every source pixel (area-correct) instead of sampling a few.
Image resize_bilinear(const Image& image, int64_t height, int64_t width);
// 1 -> 3 replicates gray; 3 -> 1 uses the ITU-R 601 luma weights (as libjpeg and PIL do).
Image convert_channels(const Image& image, int64_t channels);

// Both of the above, in the cheaper order (resizing the image with fewer channels).
Image conform_image(const Image& image, int64_t channels, int64_t height, int64_t width);

// Whole file into memory; throws duet::Error naming the path.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace duet::data
