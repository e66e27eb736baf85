#include "duet/eval/generative_classifier.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "duet/autograd/autograd.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"

namespace duet::eval {
namespace {

double radical_inverse(uint32_t m) {
  double r = 0.0, f = 0.5;
  for (; m; m >>= 1, f /= 2) r += f * (m & 1);
  return r;
}

// The fixed noise of grid point m: the same for every image and class.
Tensor grid_noise(uint64_t seed, int m, const Shape& image) {
  constexpr uint64_t kGenClsStream = 0x67636c73;  // "gcls"
  const auto w = philox4x32(static_cast<uint64_t>(m), kGenClsStream, seed);
  Generator g((static_cast<uint64_t>(w[0]) << 32) | w[1]);
  return Tensor::normal(image, g);
}

}  // namespace

int32_t GenerativeResult::predicted(int64_t i) const {
  const double* l = loss.data() + i * num_classes;
  return static_cast<int32_t>(std::min_element(l, l + num_classes) - l);
}

std::vector<int> generative_grid_order(int times) {
  std::vector<int> m(static_cast<size_t>(std::max(times, 0)));
  for (int i = 0; i < times; ++i) m[static_cast<size_t>(i)] = i;
  std::stable_sort(m.begin(), m.end(), [](int a, int b) {
    return radical_inverse(static_cast<uint32_t>(a)) < radical_inverse(static_cast<uint32_t>(b));
  });
  return m;
}

double generative_time(const GenerativeOptions& o, int m) {
  return o.t_min + (o.t_max - o.t_min) * (m + 0.5) / o.times;
}

void validate_generative(const GenerativeOptions& o) {
  if (o.times < 1 || o.times > 10000)
    fail_usage("--gen-times must be in [1, 10000], got ", o.times);
  if (!(o.t_min >= 0 && o.t_max <= 1 && o.t_min < o.t_max))
    fail_usage("generative classifier: the t range must satisfy 0 <= t_min < t_max <= 1, got [",
               o.t_min, ", ", o.t_max, "]");
  if (!(o.signal_power >= 0 && o.signal_power <= 16))
    fail_usage("--gen-signal-power must be in [0, 16], got ", o.signal_power);
  if (o.prune_after < 1) fail_usage("--prune-after must be >= 1, got ", o.prune_after);
  if (!(o.prune_margin >= 0))
    fail_usage("--prune-margin must be >= 0 (inf: off), got ", o.prune_margin);
  if (!(o.scale > 0) || std::isinf(o.scale)) fail_usage("--gen-scale must be > 0, got ", o.scale);
  if (o.batch < 1) fail_usage("generative classifier: batch must be >= 1, got ", o.batch);
  if (!(o.hi > o.lo)) fail_usage("generative classifier: value range needs lo < hi");
}

Tensor u8_to_generator_input(const uint8_t* pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                             float lo, float hi) {
  Tensor out = Tensor::empty(Shape{n, c, h, w});
  float* x = out.data<float>();
  const float s = (hi - lo) / 255.0f;
  for (int64_t i = 0; i < out.numel(); ++i) x[i] = lo + s * static_cast<float>(pixels[i]);
  return out;
}

GenerativeResult classify_generative(models::UNet& model, gen::Objective objective,
                                     const Tensor& x0, const GenerativeOptions& o) {
  validate_generative(o);
  const auto& cfg = model.config();
  DUET_CHECK(x0.rank() == 4 && x0.dim(1) == cfg.in_channels && x0.dim(2) == cfg.image_size &&
                 x0.dim(3) == cfg.image_size,
             "generative classifier: images ", x0.shape().str(), " do not fit the generator's ",
             cfg.in_channels, "x", cfg.image_size, "x", cfg.image_size);
  const int64_t n = x0.dim(0), k = cfg.num_classes, per = x0.numel() / std::max<int64_t>(n, 1);
  const Shape one{1, x0.dim(1), x0.dim(2), x0.dim(3)};
  const std::vector<float> xv = x0.to_vector();
  const std::vector<int> order = generative_grid_order(o.times);

  GenerativeResult r;
  r.num_images = n, r.num_classes = k;
  r.loss.assign(static_cast<size_t>(n * k), 0.0);
  r.times_used.assign(static_cast<size_t>(n * k), 0);
  r.full_passes = n * k * o.times;
  // Weighted sums of the per-element losses and of the weights, per (image, class).
  std::vector<double> sum(static_cast<size_t>(n * k), 0.0), weights(sum.size(), 0.0);
  const auto running_mean = [&](size_t j) { return sum[j] / weights[j]; };
  std::vector<char> live(static_cast<size_t>(n * k), 1);

  const bool was_training = model.is_training();
  model.eval();
  autograd::NoGradGuard no_grad;
  try {
    for (int step = 0; step < o.times; ++step) {
      const int m = order[static_cast<size_t>(step)];
      const double t = generative_time(o, m);
      const std::vector<float> eps = grid_noise(o.seed, m, one).to_vector();
      const gen::NoiseLevel nl = gen::noise_level(objective, t);
      const float a = static_cast<float>(nl.a), b = static_cast<float>(nl.b);
      const double weight = std::pow(nl.a, o.signal_power);
      DUET_CHECK(weight > 0, "generative classifier: the signal weight at t = ", t,
                 " is not positive (signal ", nl.a, ")");
      // Every live (image, class) pair, in image-major order, run in batches of o.batch rows.
      std::vector<int64_t> rows;
      for (int64_t j = 0; j < n * k; ++j)
        if (live[static_cast<size_t>(j)]) rows.push_back(j);
      for (size_t b0 = 0; b0 < rows.size(); b0 += static_cast<size_t>(o.batch)) {
        const size_t b1 = std::min(rows.size(), b0 + static_cast<size_t>(o.batch));
        const int64_t nb = static_cast<int64_t>(b1 - b0);
        Tensor xt = Tensor::empty(Shape{nb, x0.dim(1), x0.dim(2), x0.dim(3)});
        std::vector<int32_t> labels(static_cast<size_t>(nb));
        float* xp = xt.data<float>();
        for (int64_t r0 = 0; r0 < nb; ++r0) {
          const int64_t j = rows[b0 + static_cast<size_t>(r0)], i = j / k;
          labels[static_cast<size_t>(r0)] = static_cast<int32_t>(j % k);
          const float* src = xv.data() + i * per;
          for (int64_t e = 0; e < per; ++e)
            xp[r0 * per + e] = a * src[e] + b * eps[static_cast<size_t>(e)];
        }
        const Tensor pred = model.forward(xt, Tensor::full(Shape{nb}, static_cast<float>(t)),
                                          Tensor::from_vector(labels, Shape{nb}));
        const float* pp = pred.data<float>();
        for (int64_t r0 = 0; r0 < nb; ++r0) {
          const int64_t j = rows[b0 + static_cast<size_t>(r0)], i = j / k;
          const float* src = xv.data() + i * per;
          double se = 0.0;
          for (int64_t e = 0; e < per; ++e) {
            const double d =
                double(pp[r0 * per + e]) -
                gen::regression_target(objective, a, b, src[e], eps[static_cast<size_t>(e)]);
            se += d * d;
          }
          sum[static_cast<size_t>(j)] += weight * se / static_cast<double>(per);
          weights[static_cast<size_t>(j)] += weight;
          ++r.times_used[static_cast<size_t>(j)];
        }
        r.passes += nb;
      }
      // Prune: per image, classes more than the margin above the best running mean.
      if (step + 1 >= o.prune_after && step + 1 < o.times && !std::isinf(o.prune_margin)) {
        for (int64_t i = 0; i < n; ++i) {
          double best = INFINITY;
          for (int64_t c = 0; c < k; ++c)
            if (live[static_cast<size_t>(i * k + c)])
              best = std::min(best, running_mean(static_cast<size_t>(i * k + c)));
          for (int64_t c = 0; c < k; ++c) {
            const size_t j = static_cast<size_t>(i * k + c);
            if (live[j] && running_mean(j) > best + o.prune_margin) live[j] = 0;
          }
        }
      }
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);

  r.probs.assign(static_cast<size_t>(n * k), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    double lmin = INFINITY;
    for (int64_t c = 0; c < k; ++c) {
      const size_t j = static_cast<size_t>(i * k + c);
      r.loss[j] = running_mean(j);
      if (live[j]) lmin = std::min(lmin, r.loss[j]);
    }
    // A pruned class was more than the margin behind when dropped; keep it behind the final best
    // (strictly), so that the prediction is always a class that saw every time.
    for (int64_t c = 0; c < k; ++c) {
      const size_t j = static_cast<size_t>(i * k + c);
      if (!live[j])
        r.loss[j] = std::max(r.loss[j], std::nextafter(lmin + o.prune_margin, INFINITY));
    }
    double z = 0.0;
    for (int64_t c = 0; c < k; ++c) z += std::exp(-o.scale * (r.loss[size_t(i * k + c)] - lmin));
    for (int64_t c = 0; c < k; ++c)
      r.probs[size_t(i * k + c)] =
          static_cast<float>(std::exp(-o.scale * (r.loss[size_t(i * k + c)] - lmin)) / z);
  }
  return r;
}

}  // namespace duet::eval
