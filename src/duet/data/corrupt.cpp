#include "duet/data/corrupt.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

namespace duet::data {
namespace {

constexpr const char* kNames[] = {"noise", "blur", "contrast", "occlusion"};

uint8_t to_u8(double v) {
  return static_cast<uint8_t>(std::clamp(std::floor(v + 0.5), 0.0, 255.0));
}

// Separable Gaussian blur of one h x w plane, edges replicated, in double until the final
// rounding.
void blur_plane(uint8_t* p, int64_t h, int64_t w, double sigma) {
  const int64_t r = static_cast<int64_t>(std::ceil(3.0 * sigma));
  std::vector<double> k(static_cast<size_t>(2 * r + 1));
  double sum = 0.0;
  for (int64_t d = -r; d <= r; ++d)
    sum += k[static_cast<size_t>(d + r)] = std::exp(-double(d * d) / (2.0 * sigma * sigma));
  for (double& v : k) v /= sum;
  std::vector<double> rows(static_cast<size_t>(h * w));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      double s = 0.0;
      for (int64_t d = -r; d <= r; ++d)
        s += k[static_cast<size_t>(d + r)] * p[y * w + std::clamp<int64_t>(x + d, 0, w - 1)];
      rows[static_cast<size_t>(y * w + x)] = s;
    }
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      double s = 0.0;
      for (int64_t d = -r; d <= r; ++d)
        s += k[static_cast<size_t>(d + r)] *
             rows[static_cast<size_t>(std::clamp<int64_t>(y + d, 0, h - 1) * w + x)];
      p[y * w + x] = to_u8(s);
    }
}

}  // namespace

// A seed derived from (seed, i), so images are independent draws.
Generator corruption_generator(uint64_t seed, int64_t i) {
  constexpr uint64_t kCorruptStream = 0x636f7272;  // "corr"
  const auto w = philox4x32(static_cast<uint64_t>(i), kCorruptStream, seed);
  return Generator((static_cast<uint64_t>(w[0]) << 32) | w[1]);
}

Corruption parse_corruption(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string family = spec.substr(0, colon);
  Corruption c;
  bool known = false;
  for (int i = 0; i < 4; ++i)
    if (family == kNames[i]) c.kind = static_cast<CorruptionKind>(i), known = true;
  if (!known)
    fail_usage("--corrupt '", spec,
               "': unknown family (known: noise, blur, contrast, occlusion; e.g. noise:3)");
  const std::string sev = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (sev.size() != 1 || sev[0] < '1' || sev[0] > '5')
    fail_usage("--corrupt '", spec, "': the severity after ':' must be 1..5 (e.g. ", family, ":3)");
  c.severity = sev[0] - '0';
  return c;
}

std::string corruption_name(const Corruption& c) {
  return std::string(kNames[static_cast<int>(c.kind)]) + ":" + std::to_string(c.severity);
}

double corruption_strength(const Corruption& c) {
  DUET_CHECK(c.severity >= 1 && c.severity <= 5, "corrupt: severity ", c.severity, " outside 1..5");
  static constexpr std::array<std::array<double, 5>, 4> kTable = {{
      {0.08, 0.12, 0.18, 0.26, 0.38},  // noise std on [0, 1]
      {0.5, 0.75, 1.0, 1.25, 1.5},     // blur sigma, pixels
      {0.4, 0.3, 0.2, 0.1, 0.05},      // contrast factor
      {4, 7, 10, 13, 16},              // occlusion side, pixels
  }};
  return kTable[static_cast<size_t>(c.kind)][static_cast<size_t>(c.severity - 1)];
}

void corrupt_images(uint8_t* pixels, int64_t n, int64_t ch, int64_t h, int64_t w,
                    const Corruption& c, uint64_t seed) {
  DUET_CHECK(n >= 0 && ch >= 1 && h >= 1 && w >= 1, "corrupt: bad image shape [", n, ", ", ch, ", ",
             h, ", ", w, "]");
  const double s = corruption_strength(c);
  const int64_t plane = h * w, image = ch * plane;
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* im = pixels + i * image;
    switch (c.kind) {
      case CorruptionKind::noise: {
        Generator g = corruption_generator(seed, i);
        std::vector<float> z(static_cast<size_t>(image));
        g.normal(z.data(), image);
        for (int64_t j = 0; j < image; ++j) im[j] = to_u8(im[j] + 255.0 * s * z[size_t(j)]);
        break;
      }
      case CorruptionKind::blur:
        for (int64_t q = 0; q < ch; ++q) blur_plane(im + q * plane, h, w, s);
        break;
      case CorruptionKind::contrast:
        for (int64_t q = 0; q < ch; ++q) {
          uint8_t* p = im + q * plane;
          int64_t sum = 0;  // exact
          for (int64_t j = 0; j < plane; ++j) sum += p[j];
          const double m = double(sum) / double(plane);
          for (int64_t j = 0; j < plane; ++j) p[j] = to_u8(m + s * (p[j] - m));
        }
        break;
      case CorruptionKind::occlusion: {
        const int64_t side = std::min({static_cast<int64_t>(s), h, w});
        Generator g = corruption_generator(seed, i);
        const int64_t top = static_cast<int64_t>(g.next_below(static_cast<uint64_t>(h - side + 1)));
        const int64_t left =
            static_cast<int64_t>(g.next_below(static_cast<uint64_t>(w - side + 1)));
        for (int64_t q = 0; q < ch; ++q)
          for (int64_t y = top; y < top + side; ++y)
            std::memset(im + q * plane + y * w + left, 128, static_cast<size_t>(side));
        break;
      }
    }
  }
}

Dataset corrupt(const Dataset& d, const Corruption& c, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(d.size()));
  for (int64_t i = 0; i < d.size(); ++i) all[static_cast<size_t>(i)] = i;
  Dataset out = subset(d, all);  // a deep copy
  corrupt_images(out.images.data<uint8_t>(), out.size(), out.channels, out.height, out.width, c,
                 seed);
  return out;
}

}  // namespace duet::data
