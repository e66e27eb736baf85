// Common corruptions of u8 images for robustness tests, in the spirit of ImageNet-C (Hendrycks &
// Dietterich 2019) at a 28-pixel scale: Gaussian noise, Gaussian blur, contrast reduction and a
// grey occluding square, each at severities 1..5. Random choices are Philox(seed, image index).
#pragma once

#include <cstdint>
#include <string>

#include "duet/data/dataset.h"
#include "duet/tensor/rng.h"

namespace duet::data {

enum class CorruptionKind { noise, blur, contrast, occlusion };

struct Corruption {
  CorruptionKind kind = CorruptionKind::noise;
  int severity = 1;  // 1..5
};

// "noise:3" | "blur:1" | "contrast:5" | "occlusion:2" (usage Error naming the known families and
// the severity range otherwise), and back.
Corruption parse_corruption(const std::string& spec);
std::string corruption_name(const Corruption& c);

// The strength of a corruption at a severity, on pixels scaled to [0, 1]:
//   noise      standard deviation of added Gaussian noise: 0.08, 0.12, 0.18, 0.26, 0.38
//              (ImageNet-C's gaussian_noise values)
//   blur       Gaussian blur sigma in pixels: 0.5, 0.75, 1.0, 1.25, 1.5 (kernel radius
//              ceil(3 sigma), edges replicated)
//   contrast   factor c of x' = m + c (x - m), m the image's per-channel mean: 0.4, 0.3, 0.2,
//              0.1, 0.05 (ImageNet-C's contrast values)
//   occlusion  side in pixels of a square of grey (128) at a uniformly random position fully
//              inside the image: 4, 7, 10, 13, 16 (2 % to 33 % of a 28 x 28 image)
double corruption_strength(const Corruption& c);

// Corrupts u8 images [n, channels, height, width] in place. Results are rounded half up and
// clamped to [0, 255]. Image i's random draws come from Philox keyed by (seed, i) only, so a
// result does not depend on batching or on the other images.
void corrupt_images(uint8_t* pixels, int64_t n, int64_t channels, int64_t height, int64_t width,
                    const Corruption& c, uint64_t seed);

// The generator of image i's random draws (noise values; the occluder's top then left, each one
// next_below draw), exposed so tests can recompute the corruption by hand.
Generator corruption_generator(uint64_t seed, int64_t i);

// A corrupted deep copy of a data set (labels and names kept).
Dataset corrupt(const Dataset& d, const Corruption& c, uint64_t seed);

}  // namespace duet::data
