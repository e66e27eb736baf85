#include "duet/data/image.h"

// clang-format off
#include <cstdio>   // jpeglib.h needs FILE and size_t declared first
#include <csetjmp>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
// clang-format on

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "duet/io/atomic_file.h"
#include "duet/tensor/error.h"

namespace duet::data {

namespace {

// Decoded images above this many pixels are refused before any pixel buffer is allocated.
constexpr int64_t kMaxPixels = int64_t{1} << 28;

// The libraries report errors through callbacks that must not return. We longjmp back to a frame
// whose only live objects are trivially destructible (all C++ containers live in the caller), so
// no destructor is skipped; C++ exceptions never cross the C libraries' frames.

struct PngReadState {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  std::jmp_buf jmp;
  char msg[200] = {};
};

void png_error_fn(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngReadState*>(png_get_error_ptr(png));
  std::snprintf(st->msg, sizeof(st->msg), "%s", msg ? msg : "libpng error");
  std::longjmp(st->jmp, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}  // benign; the decoder carries on

void png_read_fn(png_structp png, png_bytep out, size_t n) {
  auto* st = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_error(png, "file is truncated");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

struct PngRaw {
  int64_t width = 0, height = 0, channels = 0;  // channels after expansion: 1..4
  std::vector<uint8_t>* pixels = nullptr;
  std::vector<png_bytep>* rows = nullptr;
};

bool png_decode_raw(PngReadState& st, PngRaw& raw) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_error_fn, png_warning_fn);
  if (!png) {
    std::snprintf(st.msg, sizeof(st.msg), "cannot create a libpng reader");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(st.msg, sizeof(st.msg), "cannot create a libpng reader");
    return false;
  }
  if (setjmp(st.jmp)) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, &st, png_read_fn);
  png_read_info(png, info);
  const int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (w <= 0 || h <= 0 || w > kMaxPixels / h) {
    std::snprintf(st.msg, sizeof(st.msg), "size %lld x %lld is out of range",
                  static_cast<long long>(w), static_cast<long long>(h));
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_expand(png);  // palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha
  png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int64_t c = png_get_channels(png, info);
  raw.width = w, raw.height = h, raw.channels = c;
  raw.pixels->resize(static_cast<size_t>(w * h * c));
  raw.rows->resize(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) (*raw.rows)[y] = raw.pixels->data() + y * w * c;
  png_read_image(png, raw.rows->data());
  png_read_end(png, nullptr);  // checks the chunks after the image, so a cut-off file fails
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// Composites alpha over black: the background of the data sets this feeds.
uint8_t over_black(uint8_t v, uint8_t a) {
  return static_cast<uint8_t>((v * a + 127) / 255);
}

struct JpegErrorMgr {
  jpeg_error_mgr pub;
  std::jmp_buf jmp;
  char msg[JMSG_LENGTH_MAX] = {};
};

void jpeg_error_exit_fn(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorMgr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->msg);
  std::longjmp(err->jmp, 1);
}

// libjpeg only warns on a premature end of file or damaged entropy data and fills the rest with
// gray; those warnings mean lost pixels, so we make them errors. Metadata warnings (stray bytes
// between markers, a bad ICC profile, an unknown JFIF revision) lose no pixels and are ignored.
bool jpeg_warning_loses_pixels(int code) {
  switch (code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
      return true;
    default:
      return false;
  }
}

void jpeg_emit_message_fn(j_common_ptr cinfo, int level) {
  if (level < 0 && jpeg_warning_loses_pixels(cinfo->err->msg_code)) jpeg_error_exit_fn(cinfo);
}
void jpeg_output_message_fn(j_common_ptr) {}

struct JpegDecodeState {
  jpeg_decompress_struct cinfo;
  JpegErrorMgr err;
  int64_t width = 0, height = 0, channels = 0;
  bool cmyk = false, adobe = false;
  std::vector<uint8_t>* pixels = nullptr;
};

void install_jpeg_errors(JpegErrorMgr& err) {
  jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_error_exit_fn;
  err.pub.emit_message = jpeg_emit_message_fn;
  err.pub.output_message = jpeg_output_message_fn;
}

bool jpeg_decode_raw(JpegDecodeState& st, const uint8_t* data, size_t size) {
  std::memset(&st.cinfo, 0, sizeof(st.cinfo));
  install_jpeg_errors(st.err);
  st.cinfo.err = &st.err.pub;
  if (setjmp(st.err.jmp)) {
    jpeg_destroy_decompress(&st.cinfo);
    return false;
  }
  jpeg_create_decompress(&st.cinfo);
  jpeg_mem_src(&st.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&st.cinfo, TRUE);
  const int64_t w = st.cinfo.image_width, h = st.cinfo.image_height;
  if (w <= 0 || h <= 0 || w > kMaxPixels / h) {
    std::snprintf(st.err.msg, sizeof(st.err.msg), "size %lld x %lld is out of range",
                  static_cast<long long>(w), static_cast<long long>(h));
    jpeg_destroy_decompress(&st.cinfo);
    return false;
  }
  const J_COLOR_SPACE cs = st.cinfo.jpeg_color_space;
  st.cmyk = cs == JCS_CMYK || cs == JCS_YCCK;
  st.adobe = st.cinfo.saw_Adobe_marker;
  st.cinfo.out_color_space = st.cmyk ? JCS_CMYK : cs == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&st.cinfo);
  st.width = st.cinfo.output_width, st.height = st.cinfo.output_height;
  st.channels = st.cinfo.output_components;
  st.pixels->resize(static_cast<size_t>(st.width * st.height * st.channels));
  while (st.cinfo.output_scanline < st.cinfo.output_height) {
    JSAMPROW row = st.pixels->data() + int64_t{st.cinfo.output_scanline} * st.width * st.channels;
    jpeg_read_scanlines(&st.cinfo, &row, 1);
  }
  jpeg_finish_decompress(&st.cinfo);
  jpeg_destroy_decompress(&st.cinfo);
  return true;
}

struct PngWriteState {
  unsigned char* buf = nullptr;  // malloc'd: grown inside libpng's frames, where we cannot throw
  size_t size = 0, cap = 0;
  std::jmp_buf jmp;
  char msg[200] = {};
};

void png_error_fn_write(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngWriteState*>(png_get_error_ptr(png));
  std::snprintf(st->msg, sizeof(st->msg), "%s", msg ? msg : "libpng error");
  std::longjmp(st->jmp, 1);
}

void png_write_fn(png_structp png, png_bytep data, size_t n) {
  auto* st = static_cast<PngWriteState*>(png_get_io_ptr(png));
  if (st->size + n > st->cap) {
    size_t cap = std::max<size_t>(st->cap * 2, st->size + n + 4096);
    auto* grown = static_cast<unsigned char*>(std::realloc(st->buf, cap));
    if (!grown) png_error(png, "out of memory");
    st->buf = grown, st->cap = cap;
  }
  std::memcpy(st->buf + st->size, data, n);
  st->size += n;
}
void png_flush_fn(png_structp) {}

bool png_encode_raw(PngWriteState& st, const Image& im, std::vector<png_bytep>& rows) {
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, png_error_fn_write, png_warning_fn);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(st.jmp)) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &st, png_write_fn, png_flush_fn);
  png_set_IHDR(png, info, static_cast<png_uint_32>(im.width), static_cast<png_uint_32>(im.height),
               8, im.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

void check_image(const Image& im, const char* what) {
  DUET_CHECK(im.channels == 1 || im.channels == 3, what, ": image has ", im.channels,
             " channels; expected 1 or 3");
  DUET_CHECK(im.height > 0 && im.width > 0 && im.height <= 0xFFFF && im.width <= 0xFFFF, what,
             ": image size ", im.height, " x ", im.width, " is out of range");
  DUET_CHECK(im.pixels.size() == static_cast<size_t>(im.height * im.width * im.channels), what,
             ": pixel buffer holds ", im.pixels.size(), " bytes, expected ",
             im.height * im.width * im.channels);
}

}  // namespace

Image::Image(int64_t h, int64_t w, int64_t c) : height(h), width(w), channels(c) {
  DUET_CHECK(h > 0 && w > 0 && (c == 1 || c == 3) && w <= kMaxPixels / h, "image size ", h, " x ",
             w, " x ", c, " is out of range");
  pixels.assign(static_cast<size_t>(h * w * c), 0);
}

Image decode_png(std::span<const uint8_t> bytes, const std::string& label) {
  PngReadState st;
  st.data = bytes.data(), st.size = bytes.size();
  DUET_CHECK(bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0, label,
             ": not a PNG file (bad signature)");
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  PngRaw raw;
  raw.pixels = &pixels, raw.rows = &rows;
  if (!png_decode_raw(st, raw)) fail(label, ": corrupt PNG: ", st.msg);
  const bool color = raw.channels >= 3;
  const bool alpha = raw.channels == 2 || raw.channels == 4;
  Image out(raw.height, raw.width, color ? 3 : 1);
  const int64_t n = raw.height * raw.width, ci = raw.channels, co = out.channels;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* s = pixels.data() + i * ci;
    uint8_t* d = out.pixels.data() + i * co;
    for (int64_t c = 0; c < co; ++c) d[c] = alpha ? over_black(s[c], s[ci - 1]) : s[c];
  }
  return out;
}

Image decode_jpeg(std::span<const uint8_t> bytes, const std::string& label) {
  DUET_CHECK(bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF, label,
             ": not a JPEG file (bad signature)");
  std::vector<uint8_t> pixels;
  auto st = std::make_unique<JpegDecodeState>();
  st->pixels = &pixels;
  if (!jpeg_decode_raw(*st, bytes.data(), bytes.size()))
    fail(label, ": corrupt JPEG: ", st->err.msg);
  if (!st->cmyk) {
    DUET_CHECK(st->channels == 1 || st->channels == 3, label, ": JPEG decoded to ", st->channels,
               " channels");
    Image out;
    out.height = st->height, out.width = st->width, out.channels = st->channels;
    out.pixels = std::move(pixels);
    return out;
  }
  // Adobe writes CMYK inverted (0 = full ink), which is what almost every CMYK JPEG carries.
  Image out(st->height, st->width, 3);
  const int64_t n = st->height * st->width;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* s = pixels.data() + i * 4;
    const int k = st->adobe ? s[3] : 255 - s[3];
    for (int c = 0; c < 3; ++c) {
      const int v = st->adobe ? s[c] : 255 - s[c];
      out.pixels[static_cast<size_t>(i * 3 + c)] = static_cast<uint8_t>((v * k + 127) / 255);
    }
  }
  return out;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  DUET_CHECK(in.good(), path, ": cannot open for reading");
  const std::streamoff size = in.tellg();
  DUET_CHECK(size >= 0, path, ": cannot determine the file size");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  DUET_CHECK(in.gcount() == size, path, ": read failed");
  return bytes;
}

Image read_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  if (bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0) return decode_png(bytes, path);
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8) return decode_jpeg(bytes, path);
  fail(path, ": not a PNG or JPEG file (unknown signature)");
}

std::vector<uint8_t> encode_png(const Image& image) {
  check_image(image, "encode_png");
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int64_t y = 0; y < image.height; ++y)
    rows[static_cast<size_t>(y)] =
        const_cast<png_bytep>(image.pixels.data() + y * image.width * image.channels);
  PngWriteState st;
  const bool ok = png_encode_raw(st, image, rows);
  std::vector<uint8_t> out;
  if (ok) out.assign(st.buf, st.buf + st.size);
  std::free(st.buf);
  DUET_CHECK(ok, "encode_png: ", st.msg[0] ? st.msg : "cannot create a libpng writer");
  return out;
}

namespace {

struct JpegEncodeState {
  jpeg_compress_struct cinfo;
  JpegErrorMgr err;
  unsigned char* buf = nullptr;  // malloc'd by jpeg_mem_dest
  unsigned long size = 0;
};

bool jpeg_encode_raw(JpegEncodeState& st, const Image& im, int quality) {
  std::memset(&st.cinfo, 0, sizeof(st.cinfo));
  install_jpeg_errors(st.err);
  st.cinfo.err = &st.err.pub;
  if (setjmp(st.err.jmp)) {
    jpeg_destroy_compress(&st.cinfo);
    return false;
  }
  jpeg_create_compress(&st.cinfo);
  jpeg_mem_dest(&st.cinfo, &st.buf, &st.size);
  st.cinfo.image_width = static_cast<JDIMENSION>(im.width);
  st.cinfo.image_height = static_cast<JDIMENSION>(im.height);
  st.cinfo.input_components = static_cast<int>(im.channels);
  st.cinfo.in_color_space = im.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&st.cinfo);
  jpeg_set_quality(&st.cinfo, quality, TRUE);
  jpeg_start_compress(&st.cinfo, TRUE);
  while (st.cinfo.next_scanline < st.cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(im.pixels.data() +
                                        int64_t{st.cinfo.next_scanline} * im.width * im.channels);
    jpeg_write_scanlines(&st.cinfo, &row, 1);
  }
  jpeg_finish_compress(&st.cinfo);
  jpeg_destroy_compress(&st.cinfo);
  return true;
}

}  // namespace

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  check_image(image, "encode_jpeg");
  DUET_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality ", quality,
             " is out of range; expected 1..100");
  auto st = std::make_unique<JpegEncodeState>();
  const bool ok = jpeg_encode_raw(*st, image, quality);
  std::vector<uint8_t> out;
  if (ok) out.assign(st->buf, st->buf + st->size);
  std::free(st->buf);
  DUET_CHECK(ok, "encode_jpeg: ", st->err.msg);
  return out;
}

void write_png(const std::string& path, const Image& image) {
  const std::vector<uint8_t> bytes = encode_png(image);
  io::write_file_atomic(path, std::as_bytes(std::span(bytes)));
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  const std::vector<uint8_t> bytes = encode_jpeg(image, quality);
  io::write_file_atomic(path, std::as_bytes(std::span(bytes)));
}

std::optional<ImageFormat> image_format_for(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".png") return ImageFormat::png;
  if (ext == ".jpg" || ext == ".jpeg") return ImageFormat::jpeg;
  return std::nullopt;
}

void write_image(const std::string& path, const Image& image) {
  const auto format = image_format_for(path);
  DUET_CHECK(format, path, ": expected a .png, .jpg or .jpeg file name");
  if (*format == ImageFormat::png)
    write_png(path, image);
  else
    write_jpeg(path, image);
}

namespace {

// For output index o: input indices first[o] .. first[o] + taps - 1 with weights
// w[o * taps ..], zero-padded to a common tap count so the inner loops have a fixed trip count.
struct AxisWeights {
  int64_t taps = 0;
  std::vector<int64_t> first;
  std::vector<float> w;
};

AxisWeights triangle_weights(int64_t in, int64_t out) {
  AxisWeights a;
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = std::max(scale, 1.0);  // widen the tent when shrinking
  a.taps = std::min<int64_t>(in, static_cast<int64_t>(std::ceil(2 * support)) + 2);
  a.first.resize(static_cast<size_t>(out));
  a.w.assign(static_cast<size_t>(out * a.taps), 0.0f);
  for (int64_t o = 0; o < out; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(center - support)));
    const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(std::ceil(center + support)));
    lo = std::min(lo, in - a.taps);  // keep the window inside the input; extra taps weigh 0
    float* w = a.w.data() + o * a.taps;
    double sum = 0;
    for (int64_t i = std::max(lo, hi - a.taps); i < hi; ++i) {
      const double d = std::abs((static_cast<double>(i) + 0.5 - center) / support);
      w[i - lo] = static_cast<float>(std::max(0.0, 1.0 - d));
      sum += w[i - lo];
    }
    for (int64_t k = 0; k < a.taps; ++k) w[k] = static_cast<float>(w[k] / sum);
    a.first[static_cast<size_t>(o)] = lo;
  }
  return a;
}

}  // namespace

Image resize_bilinear(const Image& image, int64_t height, int64_t width) {
  check_image(image, "resize_bilinear");
  if (height == image.height && width == image.width) return image;
  Image out(height, width, image.channels);
  const int64_t c = image.channels, in_w = image.width;
  const AxisWeights wx = triangle_weights(image.width, width);
  const AxisWeights wy = triangle_weights(image.height, height);
  // Horizontal pass into floats [in_h, width, c], then vertical pass with rounding.
  std::vector<float> tmp(static_cast<size_t>(image.height * width * c));
  const uint8_t* src = image.pixels.data();
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      const float* w = wx.w.data() + x * wx.taps;
      const uint8_t* row = src + (y * in_w + wx.first[static_cast<size_t>(x)]) * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (int64_t k = 0; k < wx.taps; ++k) acc += w[k] * static_cast<float>(row[k * c + ch]);
        tmp[static_cast<size_t>((y * width + x) * c + ch)] = acc;
      }
    }
  const int64_t row_len = width * c;
  for (int64_t y = 0; y < height; ++y) {
    const float* w = wy.w.data() + y * wy.taps;
    const float* base = tmp.data() + wy.first[static_cast<size_t>(y)] * row_len;
    uint8_t* dst = out.pixels.data() + y * row_len;
    for (int64_t i = 0; i < row_len; ++i) {
      float acc = 0;
      for (int64_t k = 0; k < wy.taps; ++k) acc += w[k] * base[k * row_len + i];
      dst[i] = static_cast<uint8_t>(std::clamp(acc + 0.5f, 0.0f, 255.0f));
    }
  }
  return out;
}

Image convert_channels(const Image& image, int64_t channels) {
  check_image(image, "convert_channels");
  DUET_CHECK(channels == 1 || channels == 3, "convert_channels: ", channels,
             " channels requested; expected 1 or 3");
  if (channels == image.channels) return image;
  Image out(image.height, image.width, channels);
  const int64_t n = image.height * image.width;
  for (int64_t i = 0; i < n; ++i) {
    if (channels == 3) {
      for (int c = 0; c < 3; ++c) out.pixels[static_cast<size_t>(i * 3 + c)] = image.pixels[i];
    } else {
      const uint8_t* s = image.pixels.data() + i * 3;
      out.pixels[static_cast<size_t>(i)] =
          static_cast<uint8_t>((299 * s[0] + 587 * s[1] + 114 * s[2] + 500) / 1000);
    }
  }
  return out;
}

Image conform_image(const Image& image, int64_t channels, int64_t height, int64_t width) {
  if (channels > image.channels)
    return convert_channels(resize_bilinear(image, height, width), channels);
  return resize_bilinear(convert_channels(image, channels), height, width);
}

}  // namespace duet::data
