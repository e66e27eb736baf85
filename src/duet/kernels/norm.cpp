// Batch, group and layer norm built on the nn row primitives. Every statistic is reduced in a
// fixed order (per plane or row in float lanes, planes combined in double), so results do not
// depend on the thread count, and each output is written by exactly one thread.
#include "duet/kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "duet/kernels/nn_vec.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

using detail::NnVec;

// Minimum elements per thread chunk: below this the fork/join costs more than the work.
constexpr int64_t kGrainElems = 16384;

int64_t grain_for(int64_t elems_per_item) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, elems_per_item));
}

void check_nchw(const char* what, int64_t n, int64_t c, int64_t hw) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, what, ": expected n, c, hw >= 1, got ", n, ", ", c, ", ",
             hw);
}

// The residual is read plane by plane as y is written: y itself would be read after its writes.
void check_tail(const char* what, const NormTail& tail, const float* y) {
  DUET_CHECK(tail.residual != y, what, ": the residual must not be the output buffer");
}

// Channel ch's mean and biased variance over n planes of hw elements (two passes).
void channel_stats(const NnVec& v, int64_t n, int64_t c, int64_t hw, const float* x, int64_t ch,
                   double* mean, double* var) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += v.sum(hw, x + (i * c + ch) * hw);
  const double m = s / double(n * hw);
  double q = 0;
  for (int64_t i = 0; i < n; ++i) q += v.sum_sq_dev(hw, x + (i * c + ch) * hw, float(m));
  *mean = m;
  *var = q / double(n * hw);
}

// y = tail(a x + b) over one plane of hw values at `offset`: the residual and a ReLU in the
// affine's pass, another activation over the plane just written (still in L1).
void normalise_plane(const NnVec& v, int64_t hw, int64_t offset, const float* x, double a, double b,
                     const NormTail& tail, float* y) {
  const bool relu = tail.activate && tail.act == ActFn::relu;
  v.affine_tail(hw, x + offset, float(a), float(b),
                tail.residual ? tail.residual + offset : nullptr, relu, y + offset);
  if (tail.activate && !relu) v.act_forward(tail.act, hw, y + offset, y + offset);
}

}  // namespace

void batch_norm2d_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                const float* gamma, const float* beta, float eps, float momentum,
                                float* running_mean, float* running_var, float* y, float* save_mean,
                                float* save_invstd, const NormTail& tail) {
  check_nchw("batch_norm2d_forward_train", n, c, hw);
  check_tail("batch_norm2d_forward_train", tail, y);
  const int64_t m = n * hw;
  DUET_CHECK(m > 1, "batch_norm2d_forward_train: expected more than 1 value per channel, got ", m);
  const auto& v = detail::nn_vec();
  parallel_for(c, grain_for(m), [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) {
      double mean, var;
      channel_stats(v, n, c, hw, x, ch, &mean, &var);
      const double invstd = 1.0 / std::sqrt(var + eps);
      if (save_mean) save_mean[ch] = static_cast<float>(mean);
      if (save_invstd) save_invstd[ch] = static_cast<float>(invstd);
      if (running_mean)
        running_mean[ch] =
            static_cast<float>((1.0 - momentum) * running_mean[ch] + momentum * mean);
      if (running_var)
        running_var[ch] = static_cast<float>((1.0 - momentum) * running_var[ch] +
                                             momentum * var * double(m) / double(m - 1));
      const double a = invstd * (gamma ? gamma[ch] : 1.0f);
      const double b = (beta ? beta[ch] : 0.0f) - mean * a;
      for (int64_t i = 0; i < n; ++i) normalise_plane(v, hw, (i * c + ch) * hw, x, a, b, tail, y);
    }
  });
}

void batch_norm2d_forward_eval(int64_t n, int64_t c, int64_t hw, const float* x, const float* gamma,
                               const float* beta, const float* running_mean,
                               const float* running_var, float eps, float* y,
                               const NormTail& tail) {
  check_nchw("batch_norm2d_forward_eval", n, c, hw);
  check_tail("batch_norm2d_forward_eval", tail, y);
  const auto& v = detail::nn_vec();
  parallel_for(n * c, grain_for(hw), [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) {
      const int64_t ch = p % c;
      const double a = (gamma ? gamma[ch] : 1.0f) / std::sqrt(double(running_var[ch]) + eps);
      const double b = (beta ? beta[ch] : 0.0f) - running_mean[ch] * a;
      normalise_plane(v, hw, p * hw, x, a, b, tail, y);
    }
  });
}

void batch_norm2d_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                           const float* gamma, const float* save_mean, const float* save_invstd,
                           float* dx, float* dgamma, float* dbeta, const ReluGradMask& relu) {
  check_nchw("batch_norm2d_backward", n, c, hw);
  DUET_CHECK(!relu.y || relu.masked_dy, "batch_norm2d_backward: a ReLU mask needs masked_dy");
  DUET_CHECK(!relu.x_scale, "batch_norm2d_backward: a ReLU mask from x is for blocked inputs only");
  const auto& v = detail::nn_vec();
  const double m = double(n * hw);
  // With a ReLU the batch norm's output gradient is the masked one, written here once.
  const float* g = relu.y ? relu.masked_dy : dy;
  parallel_for(c, grain_for(n * hw), [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) {
      const float mean = save_mean[ch];
      const double invstd = save_invstd[ch];
      double s_dy = 0, s_dyx = 0;  // sum(g), sum(g * (x - mean))
      for (int64_t i = 0; i < n; ++i) {
        const int64_t o = (i * c + ch) * hw;
        if (relu.y)
          v.act_backward(ActFn::relu, hw, relu.y + o, nullptr, dy + o, relu.masked_dy + o);
        float a, b;
        v.sum_dy_dyx(hw, g + o, x + o, mean, &a, &b);
        s_dy += a;
        s_dyx += b;
      }
      if (dbeta) dbeta[ch] = static_cast<float>(s_dy);
      if (dgamma) dgamma[ch] = static_cast<float>(s_dyx * invstd);
      // dx = k (dy - mean(dy) - xhat * mean(dy * xhat)), k = gamma * invstd, folded into
      // dx = a dy + b x + c0.
      const double k = (gamma ? gamma[ch] : 1.0f) * invstd;
      const double b = -k * invstd * invstd * s_dyx / m;
      const double c0 = -k * s_dy / m - b * mean;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t o = (i * c + ch) * hw;
        v.affine2(hw, g + o, x + o, float(k), float(b), float(c0), dx + o);
      }
    }
  });
}

namespace {

// Mean and 1 / sqrt(variance + eps) of the cg planes of hw values at xg (one group, contiguous).
void group_stats(const detail::NnVec& v, int64_t cg, int64_t hw, const float* xg, float eps,
                 double* mean, double* rstd) {
  const double d = double(cg * hw);
  double s = 0;
  for (int64_t j = 0; j < cg; ++j) s += v.sum(hw, xg + j * hw);
  *mean = s / d;
  double q = 0;
  for (int64_t j = 0; j < cg; ++j) q += v.sum_sq_dev(hw, xg + j * hw, float(*mean));
  *rstd = 1.0 / std::sqrt(q / d + eps);
}

void check_groups(const char* name, int64_t c, int64_t groups) {
  DUET_CHECK(groups >= 1 && c % groups == 0, name, ": channels ", c, " not divisible by groups ",
             groups);
}

}  // namespace

void group_norm_stats(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x, float eps,
                      float* mean, float* rstd) {
  check_nchw("group_norm_stats", n, c, hw);
  check_groups("group_norm_stats", c, groups);
  const auto& v = detail::nn_vec();
  const int64_t cg = c / groups;
  parallel_for(n * groups, grain_for(cg * hw), [&](int64_t b0, int64_t b1) {
    for (int64_t ng = b0; ng < b1; ++ng) {
      double m, r;
      group_stats(v, cg, hw, x + ng * cg * hw, eps, &m, &r);
      mean[ng] = static_cast<float>(m);
      rstd[ng] = static_cast<float>(r);
    }
  });
}

void group_norm_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                        const float* gamma, const float* beta, float eps, float* y,
                        float* save_mean, float* save_rstd, const NormTail& tail) {
  check_nchw("group_norm_forward", n, c, hw);
  check_tail("group_norm_forward", tail, y);
  check_groups("group_norm_forward", c, groups);
  const auto& v = detail::nn_vec();
  const int64_t cg = c / groups;
  parallel_for(n * groups, grain_for(cg * hw), [&](int64_t b0, int64_t b1) {
    for (int64_t ng = b0; ng < b1; ++ng) {
      const int64_t c0 = (ng % groups) * cg;
      const float* xg = x + ng * cg * hw;  // a group is one contiguous block of cg planes
      double mean, rstd;
      group_stats(v, cg, hw, xg, eps, &mean, &rstd);
      if (save_mean) save_mean[ng] = static_cast<float>(mean);
      if (save_rstd) save_rstd[ng] = static_cast<float>(rstd);
      for (int64_t j = 0; j < cg; ++j) {
        const double a = rstd * (gamma ? gamma[c0 + j] : 1.0f);
        const double b = (beta ? beta[c0 + j] : 0.0f) - mean * a;
        normalise_plane(v, hw, (ng * cg + j) * hw, x, a, b, tail, y);
      }
    }
  });
}

void group_norm_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                         const float* dy, const float* gamma, const float* save_mean,
                         const float* save_rstd, float* dx, float* dgamma, float* dbeta,
                         const NormTail& act_tail, const float* beta) {
  check_nchw("group_norm_backward", n, c, hw);
  DUET_CHECK(groups >= 1 && c % groups == 0, "group_norm_backward: channels ", c,
             " not divisible by groups ", groups);
  DUET_CHECK(!act_tail.residual, "group_norm_backward: a residual tail has no backward here");
  const auto& v = detail::nn_vec();
  const int64_t cg = c / groups;
  const double d = double(cg * hw);
  // Per (sample, channel) sums, kept so dgamma/dbeta can be reduced over samples afterwards in
  // a fixed order; [n, c] is tiny next to the activations.
  std::vector<float> s_dy(n * c), s_dyx(n * c);
  parallel_for(n * groups, grain_for(cg * hw), [&](int64_t b0, int64_t b1) {
    // With an activation: the group's gradient through it, dz = dy * act'(z), z recomputed.
    std::vector<float> dz(act_tail.activate ? size_t(cg * hw) : 0);
    for (int64_t ng = b0; ng < b1; ++ng) {
      const int64_t c0 = (ng % groups) * cg;
      const int64_t base = ng * cg * hw;
      const float mean = save_mean[ng];
      const double rstd = save_rstd[ng];
      const float* dy_group = dy + base;
      if (act_tail.activate) {
        for (int64_t j = 0; j < cg; ++j) {
          const double a = rstd * (gamma ? gamma[c0 + j] : 1.0f);
          const double b = (beta ? beta[c0 + j] : 0.0f) - mean * a;
          float* plane = dz.data() + j * hw;
          v.affine(hw, x + base + j * hw, float(a), float(b), plane);  // z
          v.act_backward(act_tail.act, hw, plane, nullptr, dy_group + j * hw, plane);
        }
        dy_group = dz.data();
      }
      double sum_g = 0, sum_gx = 0;  // sum(dxhat) and sum(dxhat * (x - mean)), dxhat = dy*gamma
      for (int64_t j = 0; j < cg; ++j) {
        const int64_t p = ng * cg + j;  // == i * c + c0 + j
        v.sum_dy_dyx(hw, dy_group + j * hw, x + base + j * hw, mean, &s_dy[p], &s_dyx[p]);
        const double g = gamma ? gamma[c0 + j] : 1.0f;
        sum_g += g * s_dy[p];
        sum_gx += g * s_dyx[p];
      }
      // dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) = a dy + b x + c.
      const double b = -rstd * rstd * rstd * sum_gx / d;
      const double cc = -rstd * sum_g / d - b * mean;
      for (int64_t j = 0; j < cg; ++j) {
        const double a = rstd * (gamma ? gamma[c0 + j] : 1.0f);
        v.affine2(hw, dy_group + j * hw, x + base + j * hw, float(a), float(b), float(cc),
                  dx + base + j * hw);
      }
    }
  });
  for (int64_t ch = 0; ch < c; ++ch) {
    double g = 0, bsum = 0;
    for (int64_t i = 0; i < n; ++i) {
      g += double(s_dyx[i * c + ch]) * save_rstd[i * groups + ch / cg];
      bsum += s_dy[i * c + ch];
    }
    if (dgamma) dgamma[ch] = static_cast<float>(g);
    if (dbeta) dbeta[ch] = static_cast<float>(bsum);
  }
}

void layer_norm_forward(int64_t rows, int64_t d, const float* x, const float* gamma,
                        const float* beta, float eps, float* y, float* save_mean,
                        float* save_rstd) {
  DUET_CHECK(rows >= 0 && d >= 1, "layer_norm_forward: expected rows >= 0 and d >= 1, got ", rows,
             "x", d);
  const auto& v = detail::nn_vec();
  parallel_for(rows, grain_for(d), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* xr = x + r * d;
      float* yr = y + r * d;
      const float mean = v.sum(d, xr) / float(d);
      const float var = v.sum_sq_dev(d, xr, mean) / float(d);
      const float rstd = 1.0f / std::sqrt(var + eps);
      if (save_mean) save_mean[r] = mean;
      if (save_rstd) save_rstd[r] = rstd;
      v.affine(d, xr, rstd, -mean * rstd, yr);
      if (gamma || beta) v.mul_add(d, yr, gamma, beta, yr);
    }
  });
}

void layer_norm_backward(int64_t rows, int64_t d, const float* x, const float* dy,
                         const float* gamma, const float* save_mean, const float* save_rstd,
                         float* dx, float* dgamma, float* dbeta) {
  DUET_CHECK(rows >= 0 && d >= 1, "layer_norm_backward: expected rows >= 0 and d >= 1, got ", rows,
             "x", d);
  const auto& v = detail::nn_vec();
  parallel_for(rows, grain_for(d), [&](int64_t rb, int64_t re) {
    thread_local std::vector<float> gdy;  // dy * gamma of one row
    if (gamma) gdy.resize(d);
    for (int64_t r = rb; r < re; ++r) {
      const float* xr = x + r * d;
      const float* g = dy + r * d;
      if (gamma) {
        v.mul_add(d, g, gamma, nullptr, gdy.data());
        g = gdy.data();
      }
      const float mean = save_mean[r];
      const double rstd = save_rstd[r];
      float s_g, s_gx;
      v.sum_dy_dyx(d, g, xr, mean, &s_g, &s_gx);
      const double b = -rstd * rstd * rstd * s_gx / double(d);
      const double c0 = -rstd * s_g / double(d) - b * mean;
      v.affine2(d, g, xr, float(rstd), float(b), float(c0), dx + r * d);
    }
  });
  if (!dgamma && !dbeta) return;
  // Parameter grads sum over rows: split the columns instead, so no two threads share a sum.
  constexpr int64_t kTile = 256;
  parallel_for((d + kTile - 1) / kTile,
               std::max<int64_t>(1, kGrainElems / (kTile * std::max<int64_t>(1, rows))),
               [&](int64_t tb, int64_t te) {
                 double sg[kTile], sb[kTile];
                 for (int64_t t = tb; t < te; ++t) {
                   const int64_t j0 = t * kTile, w = std::min(kTile, d - j0);
                   std::fill(sg, sg + w, 0.0);
                   std::fill(sb, sb + w, 0.0);
                   for (int64_t r = 0; r < rows; ++r) {
                     const float* xr = x + r * d + j0;
                     const float* gr = dy + r * d + j0;
                     const float mean = save_mean[r], rstd = save_rstd[r];
                     for (int64_t j = 0; j < w; ++j) {
                       sg[j] += double(gr[j]) * ((xr[j] - mean) * rstd);
                       sb[j] += gr[j];
                     }
                   }
                   for (int64_t j = 0; j < w; ++j) {
                     if (dgamma) dgamma[j0 + j] = static_cast<float>(sg[j]);
                     if (dbeta) dbeta[j0 + j] = static_cast<float>(sb[j]);
                   }
                 }
               });
}

}  // namespace duet::kernels
