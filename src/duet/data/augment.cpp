#include "duet/data/augment.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

namespace duet::data {

NormStats compute_norm_stats(const Dataset& d) {
  DUET_CHECK(d.size() > 0, "normalisation stats: the data set is empty");
  const int64_t c = d.channels, hw = d.height * d.width;
  // Per-image integer sums are exact, so any partition of the images gives the same totals.
  std::vector<uint64_t> sum(static_cast<size_t>(c), 0), sq(static_cast<size_t>(c), 0);
  std::vector<std::vector<uint64_t>> part_sum(static_cast<size_t>(num_threads())),
      part_sq(static_cast<size_t>(num_threads()));
  parallel_for(d.size(), 64, [&](int64_t b, int64_t e) {
    std::vector<uint64_t> s(static_cast<size_t>(c), 0), q(static_cast<size_t>(c), 0);
    for (int64_t i = b; i < e; ++i) {
      const uint8_t* img = d.image(i);
      for (int64_t ch = 0; ch < c; ++ch) {
        uint64_t a = 0, a2 = 0;
        for (int64_t p = 0; p < hw; ++p) {
          const uint64_t v = img[ch * hw + p];
          a += v, a2 += v * v;
        }
        s[static_cast<size_t>(ch)] += a, q[static_cast<size_t>(ch)] += a2;
      }
    }
    const size_t t = static_cast<size_t>(thread_index());
    part_sum[t] = std::move(s), part_sq[t] = std::move(q);
  });
  for (size_t t = 0; t < part_sum.size(); ++t)
    for (size_t ch = 0; ch < part_sum[t].size(); ++ch)
      sum[ch] += part_sum[t][ch], sq[ch] += part_sq[t][ch];
  NormStats st;
  const double n = static_cast<double>(d.size()) * static_cast<double>(hw);
  for (size_t ch = 0; ch < static_cast<size_t>(c); ++ch) {
    const double mean = static_cast<double>(sum[ch]) / n;
    const double var = std::max(0.0, static_cast<double>(sq[ch]) / n - mean * mean);
    st.mean.push_back(static_cast<float>(mean / 255.0));
    st.std.push_back(static_cast<float>(std::sqrt(var) / 255.0));
  }
  return st;
}

namespace {

float unit(uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}
int64_t below(uint32_t x, int64_t bound) {  // uniform in [0, bound)
  return static_cast<int64_t>((static_cast<uint64_t>(x) * static_cast<uint64_t>(bound)) >> 32);
}

}  // namespace

AugmentDraw draw_augment(const AugmentConfig& cfg, int64_t height, int64_t width, uint64_t seed,
                         uint64_t epoch, uint64_t index) {
  AugmentDraw d;
  // Counter = (sample index, epoch * 16 + block): block 0 for crop / flip / the erase coin,
  // blocks 1..10 for the erase attempts.
  auto block = [&](uint64_t j) { return philox4x32(index, epoch * 16 + j, seed); };
  const auto r = block(0);
  if (cfg.crop_padding > 0) {
    d.crop_top = below(r[0], 2 * cfg.crop_padding + 1);
    d.crop_left = below(r[1], 2 * cfg.crop_padding + 1);
  } else {
    d.crop_top = d.crop_left = 0;
  }
  d.flip = cfg.hflip && (r[2] >> 31) != 0;
  if (cfg.erase_prob > 0.0f && unit(r[3]) < cfg.erase_prob) {
    const double area = static_cast<double>(height) * static_cast<double>(width);
    const double lr0 = std::log(cfg.erase_ratio_min), lr1 = std::log(cfg.erase_ratio_max);
    for (uint64_t attempt = 1; attempt <= 10; ++attempt) {
      const auto q = block(attempt);
      const double a =
          area * (cfg.erase_area_min + (cfg.erase_area_max - cfg.erase_area_min) * unit(q[0]));
      const double ratio = std::exp(lr0 + (lr1 - lr0) * unit(q[1]));
      const int64_t eh = std::llround(std::sqrt(a * ratio));
      const int64_t ew = std::llround(std::sqrt(a / ratio));
      if (eh < 1 || ew < 1 || eh >= height || ew >= width) continue;
      d.erase = true;
      d.erase_h = eh, d.erase_w = ew;
      d.erase_top = below(q[2], height - eh + 1);
      d.erase_left = below(q[3], width - ew + 1);
      break;
    }
  }
  return d;
}

void crop_padded(const float* src, float* dst, int64_t c, int64_t h, int64_t w, int64_t pad,
                 int64_t top, int64_t left) {
  DUET_CHECK(pad >= 0 && top >= 0 && left >= 0 && top <= 2 * pad && left <= 2 * pad,
             "crop_padded: offset (", top, ", ", left, ") outside [0, ", 2 * pad, "]");
  const int64_t dy = top - pad, dx = left - pad;  // source = destination + (dy, dx)
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y) {
      float* out = dst + (ch * h + y) * w;
      const int64_t sy = y + dy;
      if (sy < 0 || sy >= h) {
        std::fill(out, out + w, 0.0f);
        continue;
      }
      const float* in = src + (ch * h + sy) * w;
      const int64_t x0 = std::clamp<int64_t>(-dx, 0, w), x1 = std::clamp<int64_t>(w - dx, 0, w);
      std::fill(out, out + x0, 0.0f);
      if (x1 > x0)
        std::memcpy(out + x0, in + x0 + dx, static_cast<size_t>(x1 - x0) * sizeof(float));
      std::fill(out + std::max(x0, x1), out + w, 0.0f);
    }
}

void hflip(float* img, int64_t c, int64_t h, int64_t w) {
  for (int64_t r = 0; r < c * h; ++r) std::reverse(img + r * w, img + (r + 1) * w);
}

void erase(float* img, int64_t c, int64_t h, int64_t w, int64_t top, int64_t left, int64_t eh,
           int64_t ew, float value) {
  const int64_t y0 = std::clamp<int64_t>(top, 0, h), y1 = std::clamp<int64_t>(top + eh, 0, h);
  const int64_t x0 = std::clamp<int64_t>(left, 0, w), x1 = std::clamp<int64_t>(left + ew, 0, w);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = y0; y < y1; ++y)
      std::fill(img + (ch * h + y) * w + x0, img + (ch * h + y) * w + x1, value);
}

void make_sample(const uint8_t* src, float* dst, float* scratch, int64_t c, int64_t h, int64_t w,
                 const AugmentConfig& cfg, const NormStats& stats, const AugmentDraw& draw) {
  const int64_t n = c * h * w, hw = h * w;
  const bool crop = cfg.crop_padding > 0;
  float* first = crop ? scratch : dst;
  for (int64_t i = 0; i < n; ++i) first[i] = static_cast<float>(src[i]) * (1.0f / 255.0f);
  if (crop) crop_padded(scratch, dst, c, h, w, cfg.crop_padding, draw.crop_top, draw.crop_left);
  if (draw.flip) hflip(dst, c, h, w);
  if (!stats.mean.empty()) {
    DUET_CHECK(
        static_cast<int64_t>(stats.mean.size()) == c && static_cast<int64_t>(stats.std.size()) == c,
        "normalisation stats have ", stats.mean.size(), " channels; images have ", c);
    for (int64_t ch = 0; ch < c; ++ch) {
      const float m = stats.mean[static_cast<size_t>(ch)];
      const float inv = 1.0f / std::max(stats.std[static_cast<size_t>(ch)], 1e-6f);
      for (int64_t p = 0; p < hw; ++p) dst[ch * hw + p] = (dst[ch * hw + p] - m) * inv;
    }
  }
  if (draw.erase) erase(dst, c, h, w, draw.erase_top, draw.erase_left, draw.erase_h, draw.erase_w);
}

Tensor augment_normalised(const Tensor& images, const AugmentConfig& cfg, const NormStats& stats,
                          uint64_t seed, uint64_t epoch, uint64_t first_index) {
  DUET_CHECK(images.rank() == 4 && images.dtype() == DType::f32 && images.is_contiguous(),
             "augment_normalised: expected contiguous f32 [N, C, H, W], got ",
             images.shape().str());
  if (!cfg.active(static_cast<int64_t>(epoch))) return images.clone();  // past until:E
  const int64_t n = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
  const int64_t hw = h * w, size = c * hw;
  DUET_CHECK(stats.mean.empty() || (static_cast<int64_t>(stats.mean.size()) == c &&
                                    static_cast<int64_t>(stats.std.size()) == c),
             "normalisation stats have ", stats.mean.size(), " channels; images have ", c);
  Tensor out = Tensor::empty(images.shape());
  const float* src = images.data<float>();
  float* dst = out.data<float>();
  // Serial: it runs on the loader's background thread, next to a training step using the pool.
  std::vector<float> pixels(static_cast<size_t>(size));
  for (int64_t i = 0; i < n; ++i) {
    const float* in = src + i * size;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float m = stats.mean.empty() ? 0.0f : stats.mean[static_cast<size_t>(ch)];
      const float sd = stats.mean.empty() ? 1.0f : stats.std[static_cast<size_t>(ch)];
      for (int64_t p = 0; p < hw; ++p) pixels[ch * hw + p] = in[ch * hw + p] * sd + m;
    }
    const AugmentDraw draw =
        draw_augment(cfg, h, w, seed, epoch, first_index + static_cast<uint64_t>(i));
    float* o = dst + i * size;
    if (cfg.crop_padding > 0) {
      crop_padded(pixels.data(), o, c, h, w, cfg.crop_padding, draw.crop_top, draw.crop_left);
    } else {
      std::copy(pixels.begin(), pixels.end(), o);
    }
    if (draw.flip) hflip(o, c, h, w);
    for (int64_t ch = 0; ch < c && !stats.mean.empty(); ++ch) {
      const float m = stats.mean[static_cast<size_t>(ch)];
      const float inv = 1.0f / std::max(stats.std[static_cast<size_t>(ch)], 1e-6f);
      for (int64_t p = 0; p < hw; ++p) o[ch * hw + p] = (o[ch * hw + p] - m) * inv;
    }
    if (draw.erase) erase(o, c, h, w, draw.erase_top, draw.erase_left, draw.erase_h, draw.erase_w);
  }
  return out;
}

}  // namespace duet::data
