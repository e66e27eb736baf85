// Generative classification (understanding through generation): an image is the class under
// which the class-conditional generator explains it best, i.e. whose flow-matching / diffusion
// loss is lowest, averaged over a fixed grid of times with fixed noises shared by all classes.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "duet/gen/objective.h"
#include "duet/models/unet.h"

namespace duet::eval {

struct GenerativeOptions {
  // The time grid: t_m = t_min + (t_max - t_min) (m + 0.5) / times, m = 0..times-1, visited in
  // the order of the base-2 radical inverse of m (for [0, 1] and 10 values: 0.05, 0.85, 0.45,
  // 0.25, 0.65, 0.15, 0.95, 0.55, 0.35, 0.75) so that the first few already span the range. The
  // noise at grid point m is one Philox(seed, m) draw used for every image and every class: the
  // per-class comparison is paired.
  int times = 10;
  // Each time's loss is weighted by a_t^signal_power, a_t the signal coefficient of
  // x_t = a_t x0 + b_t eps (gen::noise_level; 1 - t for flow), and an image's loss for a class is
  // the weighted mean over the times it was evaluated at (0: the plain mean). The defaults
  // [0.1, 0.9] and power 1 were chosen on training images (the first 1,500, two independent sets of
  // 32 noises, docs/gap.md): 90.3 % and 90.3 % against 89.5 % and 88.8 % for the earlier plain
  // mean over [0.2, 0.8]; on the full test set (30 times) 88.87 % against 87.92 %. The trade:
  // on inputs that carry noise of their own the weighted mean is far less robust (Gaussian noise
  // at severity 3: 35 % against 72 % for the plain mean over [0.2, 0.8]), since it leans on the
  // low-noise times.
  double t_min = 0.1, t_max = 0.9;
  double signal_power = 1.0;
  uint64_t seed = 0;
  // Pruning: once `prune_after` times are done (and after every later one), a class whose running
  // mean loss exceeds the image's best running mean by more than `prune_margin` (in per-element
  // squared error) is dropped for that image. Infinity turns pruning off.
  int prune_after = 3;
  double prune_margin = 0.1;
  // probabilities = softmax(-scale * loss) over the classes, loss in per-element squared error.
  // 400 minimises the negative log-likelihood of the weighted losses on the training images the
  // weighting was chosen on (both noise sets, 9 or 26 times; ECE 0.02 there against 0.09-0.10 at
  // the earlier 200, which suited the plain mean). A pruned class keeps the running mean it had
  // when dropped, raised to just above the final best + margin when lower, so the prediction is
  // always a class that saw every time.
  double scale = 400.0;
  int64_t batch = 250;          // rows (image, class pairs) per UNet call
  float lo = -1.0f, hi = 1.0f;  // the generator's value range, for u8 inputs
};

struct GenerativeResult {
  int64_t num_images = 0, num_classes = 0;
  std::vector<float> probs;     // [N, K] row-major
  std::vector<double> loss;     // [N, K] weighted mean per-element loss over the times evaluated
  std::vector<int> times_used;  // [N, K] how many times each class was evaluated at
  int64_t passes = 0;           // (image, class, time) UNet rows actually run
  int64_t full_passes = 0;      // ... without pruning: N * K * times
  int32_t predicted(int64_t i) const;  // argmin loss (first of equals); never a pruned class
};

// The grid indices m in evaluation order (see GenerativeOptions::times) and their times.
std::vector<int> generative_grid_order(int times);
double generative_time(const GenerativeOptions& options, int m);

// Usage Errors for times < 1, a t range outside [0, 1] or empty, a signal power outside [0, 16],
// prune_after < 1, a margin that is NaN or negative, scale <= 0 or batch < 1.
void validate_generative(const GenerativeOptions& options);

// Classifies x0 [N, C, H, W] (in the generator's value range) with every class of the generator.
// Eval mode, no gradients; the model's previous mode comes back.
GenerativeResult classify_generative(models::UNet& model, gen::Objective objective,
                                     const Tensor& x0, const GenerativeOptions& options);

// u8 images [n, c, h, w] -> lo + (hi - lo) * pixel / 255, the generator's training input.
Tensor u8_to_generator_input(const uint8_t* pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                             float lo, float hi);

}  // namespace duet::eval
