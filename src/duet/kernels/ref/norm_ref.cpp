// Reference normalisations: statistics and gradients in double, straight from the textbook
// formulas (xhat = (x - mean) * rstd; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat xhat))).
#include <cmath>
#include <vector>

#include "duet/kernels/activation.h"
#include "duet/kernels/norm.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {
namespace {

void check_nchw(const char* what, int64_t n, int64_t c, int64_t hw) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, what, ": expected n, c, hw >= 1, got ", n, ", ", c, ", ",
             hw);
}

float at(const float* p, int64_t i, float dflt) {
  return p ? p[i] : dflt;
}

// y = (x - mean) * rstd * gamma + beta over the `count` elements idx(k) of one normalisation set
// (gamma/beta indexed by ch(k)); shared by the three forward references.
template <class Idx, class Ch>
void normalise(int64_t count, Idx idx, Ch ch, const float* x, double mean, double rstd,
               const float* gamma, const float* beta, float* y) {
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = idx(k);
    y[i] =
        static_cast<float>((x[i] - mean) * rstd * at(gamma, ch(k), 1.0f) + at(beta, ch(k), 0.0f));
  }
}

template <class Idx>
void moments(int64_t count, Idx idx, const float* x, double* mean, double* var) {
  double s = 0;
  for (int64_t k = 0; k < count; ++k) s += x[idx(k)];
  const double m = s / double(count);
  double q = 0;
  for (int64_t k = 0; k < count; ++k) q += (x[idx(k)] - m) * (x[idx(k)] - m);
  *mean = m;
  *var = q / double(count);
}

// dx over one normalisation set, with the per-element gamma given by ch(k).
template <class Idx, class Ch>
void backward_set(int64_t count, Idx idx, Ch ch, const float* x, const float* dy,
                  const float* gamma, double mean, double rstd, float* dx) {
  double s_g = 0, s_gx = 0;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = idx(k);
    const double g = dy[i] * double(at(gamma, ch(k), 1.0f));
    s_g += g;
    s_gx += g * (x[i] - mean) * rstd;
  }
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = idx(k);
    const double g = dy[i] * double(at(gamma, ch(k), 1.0f));
    const double xhat = (x[i] - mean) * rstd;
    dx[i] = static_cast<float>(rstd * (g - s_g / count - xhat * s_gx / count));
  }
}

// The fused tail as its own passes over the normalised y: the residual, then the activation.
void apply_tail(int64_t count, const NormTail& tail, float* y) {
  if (tail.residual)
    for (int64_t i = 0; i < count; ++i) y[i] += tail.residual[i];
  if (tail.activate) ref::activation_forward(tail.act, count, y, y);
}

}  // namespace

void batch_norm2d_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                const float* gamma, const float* beta, float eps, float momentum,
                                float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, const NormTail& tail) {
  check_nchw("batch_norm2d_forward_train", n, c, hw);
  const int64_t m = n * hw;
  DUET_CHECK(m > 1, "batch_norm2d_forward_train: expected more than 1 value per channel, got ", m);
  for (int64_t ch = 0; ch < c; ++ch) {
    auto idx = [&](int64_t k) { return ((k / hw) * c + ch) * hw + k % hw; };
    auto chan = [&](int64_t) { return ch; };
    double mean, var;
    moments(m, idx, x, &mean, &var);
    const double invstd = 1.0 / std::sqrt(var + eps);
    normalise(m, idx, chan, x, mean, invstd, gamma, beta, y);
    if (save_mean) save_mean[ch] = static_cast<float>(mean);
    if (save_invstd) save_invstd[ch] = static_cast<float>(invstd);
    if (running_mean)
      running_mean[ch] =
          static_cast<float>((1 - momentum) * double(running_mean[ch]) + momentum * mean);
    if (running_var)
      running_var[ch] = static_cast<float>((1 - momentum) * double(running_var[ch]) +
                                           momentum * var * m / (m - 1));
  }
  apply_tail(n * c * hw, tail, y);
}

void batch_norm2d_forward_eval(int64_t n, int64_t c, int64_t hw, const float* x, const float* gamma,
                               const float* beta, const float* running_mean,
                               const float* running_var, float eps, float* y,
                               const NormTail& tail) {
  check_nchw("batch_norm2d_forward_eval", n, c, hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double rstd = 1.0 / std::sqrt(double(running_var[ch]) + eps);
    normalise(
        n * hw, [&](int64_t k) { return ((k / hw) * c + ch) * hw + k % hw; },
        [&](int64_t) { return ch; }, x, running_mean[ch], rstd, gamma, beta, y);
  }
  apply_tail(n * c * hw, tail, y);
}

void batch_norm2d_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                           const float* gamma, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, const ReluGradMask& relu) {
  check_nchw("batch_norm2d_backward", n, c, hw);
  DUET_CHECK(!relu.y || relu.masked_dy, "batch_norm2d_backward: a ReLU mask needs masked_dy");
  DUET_CHECK(!relu.x_scale, "batch_norm2d_backward: a ReLU mask from x is for blocked inputs only");
  if (relu.y) {  // the ReLU's backward first, as its own pass
    for (int64_t k = 0; k < n * c * hw; ++k) relu.masked_dy[k] = relu.y[k] > 0.0f ? dy[k] : 0.0f;
    dy = relu.masked_dy;
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    auto idx = [&](int64_t k) { return ((k / hw) * c + ch) * hw + k % hw; };
    auto chan = [&](int64_t) { return ch; };
    backward_set(n * hw, idx, chan, x, dy, gamma, save_mean[ch], save_invstd[ch], dx);
    double sg = 0, sb = 0;
    for (int64_t k = 0; k < n * hw; ++k) {
      sg += dy[idx(k)] * (x[idx(k)] - double(save_mean[ch])) * save_invstd[ch];
      sb += dy[idx(k)];
    }
    if (dgamma) dgamma[ch] = static_cast<float>(sg);
    if (dbeta) dbeta[ch] = static_cast<float>(sb);
  }
}

void group_norm_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                        const float* gamma, const float* beta, float eps, float* y,
                        float* save_mean, float* save_rstd, const NormTail& tail) {
  check_nchw("group_norm_forward", n, c, hw);
  DUET_CHECK(groups >= 1 && c % groups == 0, "group_norm_forward: channels ", c,
             " not divisible by groups ", groups);
  const int64_t cg = c / groups, count = cg * hw;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t base = (i * c + g * cg) * hw;
      auto idx = [&](int64_t k) { return base + k; };
      auto chan = [&](int64_t k) { return g * cg + k / hw; };
      double mean, var;
      moments(count, idx, x, &mean, &var);
      const double rstd = 1.0 / std::sqrt(var + eps);
      normalise(count, idx, chan, x, mean, rstd, gamma, beta, y);
      if (save_mean) save_mean[i * groups + g] = static_cast<float>(mean);
      if (save_rstd) save_rstd[i * groups + g] = static_cast<float>(rstd);
    }
  apply_tail(n * c * hw, tail, y);
}

void group_norm_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                         const float* dy, const float* gamma, const float* save_mean,
                         const float* save_rstd, float* dx, float* dgamma, float* dbeta,
                         const NormTail& act_tail, const float* beta) {
  check_nchw("group_norm_backward", n, c, hw);
  DUET_CHECK(groups >= 1 && c % groups == 0, "group_norm_backward: channels ", c,
             " not divisible by groups ", groups);
  DUET_CHECK(!act_tail.residual, "group_norm_backward: a residual tail has no backward here");
  const int64_t cg = c / groups, count = cg * hw;
  // With an activation, the gradient through it first: dz = dy * act'(z), z recomputed.
  std::vector<float> dz;
  if (act_tail.activate) {
    std::vector<float> z(size_t(n * c * hw));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t base = (i * c + g * cg) * hw;
        normalise(
            count, [&](int64_t k) { return base + k; }, [&](int64_t k) { return g * cg + k / hw; },
            x, save_mean[i * groups + g], save_rstd[i * groups + g], gamma, beta, z.data());
      }
    dz.resize(z.size());
    ref::activation_backward(act_tail.act, int64_t(z.size()), z.data(), nullptr, dy, dz.data());
    dy = dz.data();
  }
  std::vector<double> sg(c, 0.0), sb(c, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t base = (i * c + g * cg) * hw;
      const double mean = save_mean[i * groups + g], rstd = save_rstd[i * groups + g];
      backward_set(
          count, [&](int64_t k) { return base + k; }, [&](int64_t k) { return g * cg + k / hw; }, x,
          dy, gamma, mean, rstd, dx);
      for (int64_t k = 0; k < count; ++k) {
        sg[g * cg + k / hw] += dy[base + k] * (x[base + k] - mean) * rstd;
        sb[g * cg + k / hw] += dy[base + k];
      }
    }
  for (int64_t ch = 0; ch < c; ++ch) {
    if (dgamma) dgamma[ch] = static_cast<float>(sg[ch]);
    if (dbeta) dbeta[ch] = static_cast<float>(sb[ch]);
  }
}

void layer_norm_forward(int64_t rows, int64_t d, const float* x, const float* gamma,
                        const float* beta, float eps, float* y, float* save_mean,
                        float* save_rstd) {
  DUET_CHECK(rows >= 0 && d >= 1, "layer_norm_forward: expected rows >= 0 and d >= 1, got ", rows,
             "x", d);
  for (int64_t r = 0; r < rows; ++r) {
    auto idx = [&](int64_t k) { return r * d + k; };
    auto chan = [&](int64_t k) { return k; };
    double mean, var;
    moments(d, idx, x, &mean, &var);
    const double rstd = 1.0 / std::sqrt(var + eps);
    normalise(d, idx, chan, x, mean, rstd, gamma, beta, y);
    if (save_mean) save_mean[r] = static_cast<float>(mean);
    if (save_rstd) save_rstd[r] = static_cast<float>(rstd);
  }
}

void layer_norm_backward(int64_t rows, int64_t d, const float* x, const float* dy,
                         const float* gamma, const float* save_mean, const float* save_rstd,
                         float* dx, float* dgamma, float* dbeta) {
  DUET_CHECK(rows >= 0 && d >= 1, "layer_norm_backward: expected rows >= 0 and d >= 1, got ", rows,
             "x", d);
  std::vector<double> sg(d, 0.0), sb(d, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    backward_set(
        d, [&](int64_t k) { return r * d + k; }, [&](int64_t k) { return k; }, x, dy, gamma,
        save_mean[r], save_rstd[r], dx);
    for (int64_t j = 0; j < d; ++j) {
      sg[j] += dy[r * d + j] * (x[r * d + j] - double(save_mean[r])) * save_rstd[r];
      sb[j] += dy[r * d + j];
    }
  }
  for (int64_t j = 0; j < d; ++j) {
    if (dgamma) dgamma[j] = static_cast<float>(sg[j]);
    if (dbeta) dbeta[j] = static_cast<float>(sb[j]);
  }
}

}  // namespace duet::kernels::ref
