// Corruptions (data/corrupt.h) against values computed by hand: contrast around the image mean
// with half-up rounding, a separable Gaussian blur with replicated edges, Gaussian noise from the
// documented per-image generator, and a grey occluding square; spec parsing and its usage errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../harness/error_capture.h"
#include "duet/data/corrupt.h"
#include "duet/tensor/error.h"

using namespace duet;
using namespace duet::data;

namespace {

std::vector<uint8_t> corrupted(std::vector<uint8_t> px, int64_t n, int64_t c, int64_t h, int64_t w,
                               const std::string& spec, uint64_t seed = 5) {
  corrupt_images(px.data(), n, c, h, w, parse_corruption(spec), seed);
  return px;
}

using duet::test::exit_code;

}  // namespace

TEST(Corrupt, ContrastScalesAroundTheImageMean) {
  // Mean 100: severity 1 (c = 0.4) and 5 (c = 0.05).
  EXPECT_EQ(corrupted({0, 100, 200, 100}, 1, 1, 2, 2, "contrast:1"),
            (std::vector<uint8_t>{60, 100, 140, 100}));
  EXPECT_EQ(corrupted({0, 100, 200, 100}, 1, 1, 2, 2, "contrast:5"),
            (std::vector<uint8_t>{95, 100, 105, 100}));
  // Mean 127.5, c = 0.4: 127.5 -+ 51 = 76.5, 178.5, rounded half up. Each channel has its own mean:
  // the second channel (mean 10) becomes 10 + 0.4 * (+-10).
  EXPECT_EQ(corrupted({0, 255, 0, 20}, 1, 2, 1, 2, "contrast:1"),
            (std::vector<uint8_t>{77, 179, 6, 14}));
}

TEST(Corrupt, BlurIsASeparableGaussianWithReplicatedEdges) {
  // sigma 0.5 (severity 1): radius 2, weights exp(-2 d^2) / (1 + 2 e^-2 + 2 e^-8)
  //   k0 = 0.786570, k1 = 0.106450, k2 = 0.000264.
  // A 1 x 3 row [0, 0, 255]: vertical pass is the identity (one row); horizontal with the right
  // edge replicated: [255 k2, 255 (k1 + k2), 255 (k0 + k1 + k2)] = [0.07, 27.21, 227.79].
  EXPECT_EQ(corrupted({0, 0, 255}, 1, 1, 1, 3, "blur:1"), (std::vector<uint8_t>{0, 27, 228}));
  // A centred impulse of 255 in 5 x 5: 255 k0^2 = 157.77, 255 k0 k1 = 21.35, 255 k1^2 = 2.89,
  // 255 k0 k2 = 0.05.
  std::vector<uint8_t> impulse(25, 0);
  impulse[12] = 255;
  const auto b = corrupted(impulse, 1, 1, 5, 5, "blur:1");
  EXPECT_EQ(b[12], 158);
  EXPECT_EQ(b[7], 21);
  EXPECT_EQ(b[11], 21);
  EXPECT_EQ(b[6], 3);
  EXPECT_EQ(b[10], 0);
  int sum = 0;
  for (uint8_t v : b) sum += v;
  EXPECT_EQ(sum, 158 + 4 * 21 + 4 * 3);  // everything else rounds to 0
  // Severity 5 (sigma 1.5) spreads further: the centre of the impulse in a 13 x 13 image is
  // 255 (1 / sum_d exp(-d^2 / 4.5), d = -5..5)^2 = 255 / 3.759233^2 = 18.04.
  std::vector<uint8_t> big(169, 0);
  big[84] = 255;
  double s = 0;
  for (int d = -5; d <= 5; ++d) s += std::exp(-d * d / 4.5);
  EXPECT_NEAR(s, 3.759233, 1e-6);
  EXPECT_EQ(corrupted(big, 1, 1, 13, 13, "blur:5")[84], 18);
}

TEST(Corrupt, NoiseAddsScaledGaussianDrawsPerImage) {
  std::vector<uint8_t> px(2 * 12);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 11);
  const auto out = corrupted(px, 2, 1, 3, 4, "noise:3", 9);  // std 0.18 of 255
  int changed = 0;
  for (int64_t i = 0; i < 2; ++i) {
    Generator g = corruption_generator(9, i);
    std::vector<float> z(12);
    g.normal(z.data(), 12);
    for (int64_t j = 0; j < 12; ++j) {
      const double v = px[size_t(i * 12 + j)] + 255.0 * 0.18 * z[size_t(j)];
      const double want = std::min(255.0, std::max(0.0, std::floor(v + 0.5)));
      EXPECT_EQ(out[size_t(i * 12 + j)], static_cast<uint8_t>(want)) << i << " " << j;
      changed += out[size_t(i * 12 + j)] != px[size_t(i * 12 + j)];
    }
  }
  EXPECT_GE(changed, 20);
  // The two images got different noise; another seed gives other values; the same seed repeats.
  EXPECT_NE(corrupted(px, 2, 1, 3, 4, "noise:3", 10), out);
  EXPECT_EQ(corrupted(px, 2, 1, 3, 4, "noise:3", 9), out);
}

TEST(Corrupt, OcclusionPaintsAGreySquare) {
  // Severity 1 (side 4) covers a whole 4 x 4 image, in every channel.
  EXPECT_EQ(corrupted(std::vector<uint8_t>(32, 7), 1, 2, 4, 4, "occlusion:1"),
            std::vector<uint8_t>(32, 128));
  // Side 7 (severity 2) in 10 x 12: top and left from the image's generator.
  const std::vector<uint8_t> px(120, 3);
  const auto out = corrupted(px, 1, 1, 10, 12, "occlusion:2", 4);
  Generator g = corruption_generator(4, 0);
  const int64_t top = static_cast<int64_t>(g.next_below(4)),
                left = static_cast<int64_t>(g.next_below(6));
  for (int64_t y = 0; y < 10; ++y)
    for (int64_t x = 0; x < 12; ++x) {
      const bool inside = y >= top && y < top + 7 && x >= left && x < left + 7;
      EXPECT_EQ(out[size_t(y * 12 + x)], inside ? 128 : 3) << y << " " << x;
    }
}

TEST(Corrupt, StrengthTableAndSpecs) {
  EXPECT_DOUBLE_EQ(corruption_strength(parse_corruption("noise:3")), 0.18);
  EXPECT_DOUBLE_EQ(corruption_strength(parse_corruption("blur:3")), 1.0);
  EXPECT_DOUBLE_EQ(corruption_strength(parse_corruption("contrast:3")), 0.2);
  EXPECT_DOUBLE_EQ(corruption_strength(parse_corruption("occlusion:3")), 10);
  EXPECT_EQ(corruption_name(parse_corruption("occlusion:5")), "occlusion:5");
  for (const char* bad : {"noise", "noise:", "noise:0", "noise:6", "noise:3x", "fog:1", ""})
    EXPECT_EQ(exit_code([bad] { parse_corruption(bad); }), 2) << bad;
}

TEST(Corrupt, DatasetCopyLeavesTheOriginal) {
  Dataset d;
  d.images = Tensor::zeros(Shape{2, 1, 4, 4}, DType::u8);
  d.labels = Tensor::from_vector(std::vector<int32_t>{0, 1}, Shape{2});
  d.class_names = {"a", "b"};
  d.channels = 1, d.height = 4, d.width = 4;
  const Dataset c = corrupt(d, parse_corruption("occlusion:1"), 0);
  EXPECT_EQ(c.image(1)[5], 128);
  EXPECT_EQ(d.image(1)[5], 0);
  EXPECT_EQ(c.label(1), 1);
}
