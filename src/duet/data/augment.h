// Per-channel normalisation statistics and the training-time augmentations (random crop with
// zero padding, horizontal flip, random erasing). Every random choice for a sample is a pure
// function of (seed, epoch, sample index), so any batch can be rebuilt exactly after a restart.
#pragma once

#include <cstdint>
#include <vector>

#include "duet/data/dataset.h"
#include "duet/tensor/tensor.h"

namespace duet::data {

// Per-channel mean and standard deviation of pixel/255 over a data set (the population std).
struct NormStats {
  std::vector<float> mean, std;
};
// Exact integer sums underneath, so the result does not depend on the thread count.
NormStats compute_norm_stats(const Dataset& d);

struct AugmentConfig {
  int64_t crop_padding = 0;  // > 0: pad with this many zero pixels, then crop H x W at random
  bool hflip = false;        // flip left-right with probability 1/2
  float erase_prob = 0.0f;   // random erasing (Zhong et al.) with this probability
  float erase_area_min = 0.02f, erase_area_max = 0.33f;  // fraction of the image area
  float erase_ratio_min = 0.3f, erase_ratio_max = 3.3f;  // aspect ratio h / w (log-uniform)
  // > 0: only epochs 0 .. epochs - 1 are augmented; the later ones see the plain images, so a
  // short run ends on the distribution it is tested on. 0: every epoch.
  int64_t epochs = 0;

  bool any() const { return crop_padding > 0 || hflip || erase_prob > 0.0f; }
  // Whether the samples of (0-based) `epoch` are augmented.
  bool active(int64_t epoch) const { return any() && (epochs <= 0 || epoch < epochs); }
};

// The random choices for one sample.
struct AugmentDraw {
  int64_t crop_top = 0, crop_left = 0;  // offset into the padded image, in [0, 2 * padding]
  bool flip = false;
  bool erase = false;
  int64_t erase_top = 0, erase_left = 0, erase_h = 0, erase_w = 0;
};

// Draws from Philox keyed by `seed`, counter (epoch, index): no stream state.
AugmentDraw draw_augment(const AugmentConfig& cfg, int64_t height, int64_t width, uint64_t seed,
                         uint64_t epoch, uint64_t index);

// Primitives over one float image [C, H, W] (dst and src must not overlap unless stated).
// dst = the H x W window at (top, left) of src zero-padded by `pad` on every side.
void crop_padded(const float* src, float* dst, int64_t c, int64_t h, int64_t w, int64_t pad,
                 int64_t top, int64_t left);
void hflip(float* img, int64_t c, int64_t h, int64_t w);  // in place
void erase(float* img, int64_t c, int64_t h, int64_t w, int64_t top, int64_t left, int64_t eh,
           int64_t ew, float value = 0.0f);  // in place; the rectangle is clipped to the image

// One training sample, as the loader makes it: pixel/255, crop and flip (padding is black, as in
// the usual recipe), normalise with `stats` (empty = none), then erase to 0 (the mean after
// normalisation). `scratch` holds c*h*w floats.
void make_sample(const uint8_t* src, float* dst, float* scratch, int64_t c, int64_t h, int64_t w,
                 const AugmentConfig& cfg, const NormStats& stats, const AugmentDraw& draw);

// A second view of a finished batch: `images` [N, C, H, W] are already normalised with `stats`
// (empty = pixels / 255); each is mapped back to pixel / 255, augmented like make_sample (black
// padding, flip, then erase to 0) and normalised again, into a new tensor. Image i draws with
// (seed, epoch, first_index + i), so the view is a pure function of the batch's position. An
// epoch past cfg.epochs gets a plain copy.
Tensor augment_normalised(const Tensor& images, const AugmentConfig& cfg, const NormStats& stats,
                          uint64_t seed, uint64_t epoch, uint64_t first_index);

}  // namespace duet::data
