// The channel-blocked batch and group norms' drivers: the passes run per (image, block) item
// across the threads (the group norm's per unit of an image's blocks holding whole groups, all
// passes of a unit together), each item's per-lane float sums land in its own slot, and the
// slots are combined in a fixed order in double (images for the batch norm, a group's lanes for
// the group norm), so the thread count never changes a bit. Without AVX2 the passes run on
// scalar "lanes".
#include "duet/kernels/norm_blocked.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "duet/kernels/norm_blocked_rows.h"

#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

constexpr int64_t kB = kChannelBlock;

// One float as a vector of one lane, for CPUs without AVX2.
struct ScalarLanes {
  using V = float;
  static constexpr int64_t width = 1;
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V zero() { return 0.0f; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static V max(V a, V b) { return std::max(a, b); }
  static V keep_where_positive(V x, V v) { return x > 0.0f ? v : 0.0f; }
  // What activation_math_lanes.h's formulas use.
  static V set1(float x) { return x; }
  static V mul(V a, V b) { return a * b; }
  static V div(V a, V b) { return a / b; }
  static V min(V a, V b) { return std::min(a, b); }
  static V fnmadd(V a, V b, V c) { return c - a * b; }
  static V fmsub(V a, V b, V c) { return a * b - c; }
  static V abs(V a) { return std::fabs(a); }
  static V round(V a) { return std::nearbyint(a); }
  static V pow2(V n) { return std::ldexp(1.0f, static_cast<int>(n)); }
  static V if_sign(V x, V negative, V otherwise) { return std::signbit(x) ? negative : otherwise; }
};

const detail::BlockedNormRows& rows_for_cpu() {
  if (isa_at_least(Isa::avx512)) return detail::blocked_norm_rows_avx512();
  if (isa_at_least(Isa::avx2)) return detail::blocked_norm_rows_avx2();
  static const detail::BlockedNormRows scalar = detail::BlockedNormPasses<ScalarLanes>::table();
  return scalar;
}

void check_args(const char* what, int64_t n, int64_t c, int64_t hw, const NormTail& tail,
                const float* y) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, what, ": expected n, c, hw >= 1, got ", n, ", ", c, ", ",
             hw);
  DUET_CHECK(!tail.activate || tail.act == ActFn::relu, what,
             ": the only activation a blocked norm's tail takes is a ReLU");
  DUET_CHECK(tail.residual != y, what, ": the residual must not be the output buffer");
}

// Runs fn(item, offset) for every (image, block) item, offset = the item's first float.
template <class Fn>
void for_items(int64_t n, int64_t blocks, int64_t hw, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, 16384 / (hw * kB));
  parallel_for(n * blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) fn(item, item * hw * kB);
  });
}

// lanes[l] = sum over images of part[(i * blocks + l / 16) * 16 + l % 16], in image order.
std::vector<double> combine(const std::vector<float>& part, int64_t n, int64_t lanes) {
  std::vector<double> total(static_cast<size_t>(lanes), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < lanes; ++l) total[size_t(l)] += part[size_t(i * lanes + l)];
  return total;
}

// y = tail(a x + b) with per-lane a and b (zero past c).
void apply(const detail::BlockedNormRows& rows, int64_t n, int64_t blocks, int64_t hw,
           const float* x, const std::vector<float>& a, const std::vector<float>& b,
           const NormTail& tail, float* y) {
  for_items(n, blocks, hw, [&](int64_t item, int64_t o) {
    const int64_t blk = item % blocks;
    rows.affine(hw, x + o, a.data() + blk * kB, b.data() + blk * kB,
                tail.residual ? tail.residual + o : nullptr, tail.activate, y + o);
  });
}

void save_applied(const std::vector<float>& a, const std::vector<float>& b, int64_t c,
                  const AppliedAffine& applied) {
  if (applied.scale) std::copy_n(a.begin(), c, applied.scale);
  if (applied.shift) std::copy_n(b.begin(), c, applied.shift);
}

// A per-channel array padded with zeros to whole blocks.
std::vector<float> lanes_of(const float* v, int64_t c, int64_t lanes) {
  std::vector<float> out(size_t(lanes), 0.0f);
  std::copy_n(v, c, out.begin());
  return out;
}

}  // namespace

void batch_norm_blocked_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                      const float* gamma, const float* beta, float eps,
                                      float momentum, float* running_mean, float* running_var,
                                      float* y, float* save_mean, float* save_invstd,
                                      const NormTail& tail, const AppliedAffine& applied) {
  check_args("batch_norm_blocked_forward_train", n, c, hw, tail, y);
  const int64_t m = n * hw;
  DUET_CHECK(m > 1, "batch_norm_blocked_forward_train: expected more than 1 value per channel");
  const detail::BlockedNormRows* rows = &rows_for_cpu();
  const int64_t blocks = channel_blocks(c), lanes = blocks * kB;
  // x is read from memory once: each (image, block) item is summed, then its squared deviations
  // from its own mean are summed while the item is still in cache (at batch 128 a ResNet's
  // activations do not fit in the cache, and a second whole pass reads them from memory again).
  std::vector<float> sum(size_t(n * lanes)), centre(size_t(n * lanes)), dev2(size_t(n * lanes));
  for_items(n, blocks, hw, [&](int64_t item, int64_t o) {
    float* s = &sum[size_t(item * kB)];
    float* centred_at = &centre[size_t(item * kB)];
    rows->sum(hw, x + o, s);
    for (int64_t l = 0; l < kB; ++l) centred_at[l] = s[l] / float(hw);
    rows->sum_sq_dev(hw, x + o, centred_at, &dev2[size_t(item * kB)]);
  });
  const std::vector<double> sums = combine(sum, n, lanes);
  // The items' deviations about their centres c_i become deviations about the batch mean mu
  // exactly: sum (x - mu)^2 = dev2_i + 2 (c_i - mu) (s_i - hw c_i) + hw (c_i - mu)^2, in double
  // and in image order, so the result does not depend on the thread count.
  std::vector<double> squares(size_t(lanes), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < lanes; ++l) {
      const size_t at = size_t(i * lanes + l);
      const double ci = centre[at], d = ci - sums[size_t(l)] / double(m);
      squares[size_t(l)] += dev2[at] + d * (2.0 * (sum[at] - double(hw) * ci) + double(hw) * d);
    }
  std::vector<float> a(static_cast<size_t>(lanes), 0.0f), b(static_cast<size_t>(lanes), 0.0f);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mu = sums[size_t(ch)] / double(m), var = squares[size_t(ch)] / double(m);
    const double invstd = 1.0 / std::sqrt(var + eps);
    if (save_mean) save_mean[ch] = static_cast<float>(mu);
    if (save_invstd) save_invstd[ch] = static_cast<float>(invstd);
    if (running_mean)
      running_mean[ch] = static_cast<float>((1.0 - momentum) * running_mean[ch] + momentum * mu);
    if (running_var)
      running_var[ch] = static_cast<float>((1.0 - momentum) * running_var[ch] +
                                           momentum * var * double(m) / double(m - 1));
    const double scale = invstd * (gamma ? gamma[ch] : 1.0f);
    a[size_t(ch)] = float(scale);
    b[size_t(ch)] = float((beta ? beta[ch] : 0.0f) - mu * scale);
  }
  save_applied(a, b, c, applied);
  apply(*rows, n, blocks, hw, x, a, b, tail, y);
}

void batch_norm_blocked_forward_eval(int64_t n, int64_t c, int64_t hw, const float* x,
                                     const float* gamma, const float* beta,
                                     const float* running_mean, const float* running_var, float eps,
                                     float* y, const NormTail& tail, const AppliedAffine& applied) {
  check_args("batch_norm_blocked_forward_eval", n, c, hw, tail, y);
  const int64_t blocks = channel_blocks(c), lanes = blocks * kB;
  std::vector<float> a(static_cast<size_t>(lanes), 0.0f), b(static_cast<size_t>(lanes), 0.0f);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double scale = (gamma ? gamma[ch] : 1.0f) / std::sqrt(double(running_var[ch]) + eps);
    a[size_t(ch)] = float(scale);
    b[size_t(ch)] = float((beta ? beta[ch] : 0.0f) - running_mean[ch] * scale);
  }
  save_applied(a, b, c, applied);
  apply(rows_for_cpu(), n, blocks, hw, x, a, b, tail, y);
}

void batch_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                                 const float* gamma, const float* save_mean,
                                 const float* save_invstd, float* dx, float* dgamma, float* dbeta,
                                 const ReluGradMask& relu, bool batch_statistics) {
  check_args("batch_norm_blocked_backward", n, c, hw, {}, dx);
  DUET_CHECK(!relu.y || relu.masked_dy, "batch_norm_blocked_backward: a ReLU mask needs masked_dy");
  const bool relu_from_x = relu.x_scale != nullptr;
  DUET_CHECK(!relu_from_x || (relu.x_shift && !relu.y), "batch_norm_blocked_backward: a ReLU ",
             "mask from x needs x_shift with x_scale, and no y");
  const detail::BlockedNormRows* rows = &rows_for_cpu();
  const int64_t blocks = channel_blocks(c), lanes = blocks * kB;
  const double m = double(n * hw);
  const std::vector<float> mean = lanes_of(save_mean, c, lanes);
  const std::vector<float> ra =
      relu_from_x ? lanes_of(relu.x_scale, c, lanes) : std::vector<float>{};
  const std::vector<float> rb =
      relu_from_x ? lanes_of(relu.x_shift, c, lanes) : std::vector<float>{};
  std::vector<float> part_dy(size_t(n * lanes)), part_dyx(size_t(n * lanes));
  for_items(n, blocks, hw, [&](int64_t item, int64_t o) {
    const int64_t at = item % blocks * kB;
    if (relu_from_x)
      rows->grad_sums_relu(hw, dy + o, x + o, ra.data() + at, rb.data() + at, mean.data() + at,
                           &part_dy[item * kB], &part_dyx[item * kB]);
    else
      rows->grad_sums(hw, dy + o, relu.y ? relu.y + o : nullptr,
                      relu.y ? relu.masked_dy + o : nullptr, x + o, mean.data() + at,
                      &part_dy[item * kB], &part_dyx[item * kB]);
  });
  const std::vector<double> s_dy = combine(part_dy, n, lanes), s_dyx = combine(part_dyx, n, lanes);
  // dx = k (dy - mean(dy) - xhat mean(dy xhat)), k = gamma invstd, as dx = k dy + b x + c0;
  // with fixed statistics (eval mode) the norm is affine in x: dx = k dy.
  std::vector<float> k(static_cast<size_t>(lanes), 0.0f), b(static_cast<size_t>(lanes), 0.0f),
      c0(static_cast<size_t>(lanes), 0.0f);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double invstd = save_invstd[ch], sd = s_dy[size_t(ch)], sx = s_dyx[size_t(ch)];
    if (dbeta) dbeta[ch] = static_cast<float>(sd);
    if (dgamma) dgamma[ch] = static_cast<float>(sx * invstd);
    const double kk = (gamma ? gamma[ch] : 1.0f) * invstd;
    k[size_t(ch)] = float(kk);
    if (!batch_statistics) continue;
    const double bb = -kk * invstd * invstd * sx / m;
    b[size_t(ch)] = float(bb);
    c0[size_t(ch)] = float(-kk * sd / m - bb * save_mean[ch]);
  }
  const float* g = relu.y ? relu.masked_dy : dy;
  for_items(n, blocks, hw, [&](int64_t item, int64_t o) {
    const int64_t at = item % blocks * kB;
    if (relu_from_x)
      rows->affine2_relu(hw, dy + o, x + o, ra.data() + at, rb.data() + at, k.data() + at,
                         b.data() + at, c0.data() + at, dx + o);
    else
      rows->affine2(hw, g + o, x + o, k.data() + at, b.data() + at, c0.data() + at, dx + o);
  });
}

namespace {

// The fewest whole blocks holding whole groups (lcm(c / groups, 16) channels), when they tile the
// channels; else all of an image's blocks (groups never span images).
int64_t group_unit_blocks(int64_t c, int64_t groups) {
  const int64_t blocks = channel_blocks(c), per = c / groups;
  const int64_t u = std::lcm(per, kB) / kB;
  return c % kB == 0 && blocks % u == 0 ? u : blocks;
}

void check_group_args(const char* what, int64_t n, int64_t c, int64_t hw, int64_t groups) {
  DUET_CHECK(n >= 1 && c >= 1 && hw >= 1, what, ": expected n, c, hw >= 1, got ", n, ", ", c, ", ",
             hw);
  DUET_CHECK(groups >= 1 && c % groups == 0, what, ": ", c, " channels are not divisible into ",
             groups, " groups");
}

}  // namespace

void group_norm_blocked_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                const float* shift, const float* gamma, const float* beta,
                                float eps, Activation act, float* y, float* save_mean,
                                float* save_rstd) {
  check_group_args("group_norm_blocked_forward", n, c, hw, groups);
  const detail::BlockedNormRows* rows = &rows_for_cpu();
  const int64_t blocks = channel_blocks(c), per = c / groups;
  const double m = double(per * hw);
  auto shift_of = [&](int64_t i, int64_t ch) { return shift ? shift[i * c + ch] : 0.0f; };
  // The three passes (sums, squared deviations, output) run unit by unit, so the second and
  // third read the unit from cache, not from memory (unet-s: 50 KiB a block at 28 x 28, 6.4 MB a
  // batch of 64). Per unit, the arithmetic and its order are those of a whole-tensor pass.
  const int64_t u = group_unit_blocks(c, groups), units = blocks / u, lanes_u = u * kB;
  const int64_t grain = std::max<int64_t>(1, 16384 / (hw * lanes_u));
  parallel_for(n * units, grain, [&](int64_t begin, int64_t end) {
    const size_t nl = static_cast<size_t>(lanes_u);
    std::vector<float> part(nl), centre(nl), a(nl), b(nl);
    std::vector<double> mean, rstd;
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t i = unit / units, ch0 = unit % units * lanes_u;
      const int64_t ch1 = std::min(c, ch0 + lanes_u), g0 = ch0 / per, g1 = ch1 / per;
      const float* xu = x + unit * u * hw * kB;
      float* yu = y + unit * u * hw * kB;
      for (int64_t k = 0; k < u; ++k) rows->sum(hw, xu + k * hw * kB, &part[size_t(k * kB)]);
      for (int64_t ch = ch0; ch < ch1 && shift; ++ch)
        part[size_t(ch - ch0)] += float(hw) * shift_of(i, ch);
      // Each group's lanes in order, in double: the group's mean.
      mean.assign(size_t(g1 - g0), 0.0);
      for (int64_t ch = ch0; ch < ch1; ++ch) mean[size_t(ch / per - g0)] += part[size_t(ch - ch0)];
      for (double& v : mean) v /= m;
      // Deviations of x + shift from the group's mean are those of x from mean - shift.
      std::fill(centre.begin(), centre.end(), 0.0f);
      for (int64_t ch = ch0; ch < ch1; ++ch)
        centre[size_t(ch - ch0)] = float(mean[size_t(ch / per - g0)]) - shift_of(i, ch);
      for (int64_t k = 0; k < u; ++k)
        rows->sum_sq_dev(hw, xu + k * hw * kB, &centre[size_t(k * kB)], &part[size_t(k * kB)]);
      rstd.assign(size_t(g1 - g0), 0.0);
      for (int64_t ch = ch0; ch < ch1; ++ch) rstd[size_t(ch / per - g0)] += part[size_t(ch - ch0)];
      for (int64_t g = g0; g < g1; ++g) {
        double& r = rstd[size_t(g - g0)];
        r = 1.0 / std::sqrt(r / m + eps);
        save_mean[i * groups + g] = float(mean[size_t(g - g0)]);
        save_rstd[i * groups + g] = float(r);
      }
      // y = act(a x + b): a = rstd gamma, b = beta + (shift - mean) a, per lane; zero past c.
      std::fill(a.begin(), a.end(), 0.0f);
      std::fill(b.begin(), b.end(), 0.0f);
      for (int64_t ch = ch0; ch < ch1; ++ch) {
        const size_t g = size_t(ch / per - g0), l = size_t(ch - ch0);
        const double scale = rstd[g] * (gamma ? gamma[ch] : 1.0f);
        a[l] = float(scale);
        b[l] = float((beta ? beta[ch] : 0.0f) + (shift_of(i, ch) - mean[g]) * scale);
      }
      for (int64_t k = 0; k < u; ++k)
        rows->affine_act(hw, xu + k * hw * kB, &a[size_t(k * kB)], &b[size_t(k * kB)], act,
                         yu + k * hw * kB);
    }
  });
}

void group_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                 const float* shift, const float* dy, const float* gamma,
                                 const float* beta, Activation act, const float* save_mean,
                                 const float* save_rstd, float* dx, float* dshift, float* dgamma,
                                 float* dbeta) {
  check_group_args("group_norm_blocked_backward", n, c, hw, groups);
  const detail::BlockedNormRows* rows = &rows_for_cpu();
  const int64_t blocks = channel_blocks(c), lanes = blocks * kB, per = c / groups;
  const double m = double(per * hw);
  auto shift_of = [&](int64_t i, int64_t ch) { return shift ? shift[i * c + ch] : 0.0f; };
  // Unit by unit, as the forward: g = dy act'(z) into dx with each lane's sums of g and
  // g (x - centre), then dx from them while the unit's g and x are in cache. dgamma and dbeta sum
  // over the images afterwards, from every unit's lane sums.
  const int64_t u = group_unit_blocks(c, groups), units = blocks / u, lanes_u = u * kB;
  const int64_t grain = std::max<int64_t>(1, 16384 / (hw * lanes_u));
  std::vector<float> part_dy(size_t(n * lanes)), part_dyx(size_t(n * lanes));
  std::vector<float> part_dx(dshift ? size_t(n * lanes) : 0);
  const float* g = act == Activation::none ? dy : dx;
  parallel_for(n * units, grain, [&](int64_t begin, int64_t end) {
    const size_t nl = static_cast<size_t>(lanes_u);
    // The forward's a and b (for act', and a = rstd gamma is dx's k), the centre of each lane
    // (the group's mean - shift), then dx = k g + bb x + c0; zero past c.
    std::vector<float> a(nl), b(nl), centre(nl), bb(nl), c0(nl);
    std::vector<double> s1, s2;
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t i = unit / units, ch0 = unit % units * lanes_u;
      const int64_t ch1 = std::min(c, ch0 + lanes_u), g0 = ch0 / per, g1 = ch1 / per;
      const int64_t o = unit * u * hw * kB;  // the unit's first float
      float* sdy = &part_dy[size_t(i * lanes + ch0)];
      float* sdyx = &part_dyx[size_t(i * lanes + ch0)];
      for (std::vector<float>* v : {&a, &b, &centre, &bb, &c0})
        std::fill(v->begin(), v->end(), 0.0f);
      for (int64_t ch = ch0; ch < ch1; ++ch) {
        const size_t k = size_t(i * groups + ch / per), l = size_t(ch - ch0);
        const float scale = save_rstd[k] * (gamma ? gamma[ch] : 1.0f);
        a[l] = scale;
        b[l] = (beta ? beta[ch] : 0.0f) + (shift_of(i, ch) - save_mean[k]) * scale;
        centre[l] = save_mean[k] - shift_of(i, ch);
      }
      for (int64_t k = 0; k < u; ++k) {
        const int64_t ok = o + k * hw * kB;
        const size_t l = size_t(k * kB);
        if (act == Activation::none)
          rows->grad_sums(hw, dy + ok, nullptr, nullptr, x + ok, &centre[l], sdy + l, sdyx + l);
        else
          rows->grad_sums_act(hw, dy + ok, x + ok, &a[l], &b[l], act, &centre[l], dx + ok, sdy + l,
                              sdyx + l);
      }
      // dx = rstd (gamma g - mean(gamma g) - xhat mean(gamma g xhat)) over the group, as
      // dx = k g + bb x + c0 with k = rstd gamma, bb = -rstd^3 S2 / m, c0 = -rstd S1 / m - bb
      // centre, S1 = sum gamma g, S2 = sum gamma g (x - centre); each group's lanes in order.
      s1.assign(size_t(g1 - g0), 0.0);
      s2.assign(size_t(g1 - g0), 0.0);
      for (int64_t ch = ch0; ch < ch1; ++ch) {
        const double gm = gamma ? gamma[ch] : 1.0f;
        s1[size_t(ch / per - g0)] += gm * sdy[ch - ch0];
        s2[size_t(ch / per - g0)] += gm * sdyx[ch - ch0];
      }
      for (int64_t ch = ch0; ch < ch1; ++ch) {
        const size_t gl = size_t(ch / per - g0), l = size_t(ch - ch0);
        const double r = save_rstd[i * groups + ch / per], bcoef = -r * r * r * s2[gl] / m;
        bb[l] = float(bcoef);
        c0[l] = float(-r * s1[gl] / m - bcoef * centre[l]);
      }
      for (int64_t k = 0; k < u; ++k) {
        const int64_t ok = o + k * hw * kB;
        const size_t l = size_t(k * kB);
        rows->affine2(hw, g + ok, x + ok, &a[l], &bb[l], &c0[l], dx + ok);
        // The shift's gradient sums each plane of dx while it is still in cache.
        if (dshift) rows->sum(hw, dx + ok, &part_dx[size_t(i * lanes + ch0) + l]);
      }
    }
  });
  // Per channel: dbeta = sum g, dgamma = sum g xhat, in image order.
  for (int64_t ch = 0; ch < c; ++ch) {
    double sd = 0.0, sx = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      sd += part_dy[size_t(i * lanes + ch)];
      sx += double(part_dyx[size_t(i * lanes + ch)]) * save_rstd[i * groups + ch / per];
    }
    if (dbeta) dbeta[ch] = float(sd);
    if (dgamma) dgamma[ch] = float(sx);
  }
  for (int64_t i = 0; i < n && dshift; ++i)
    for (int64_t ch = 0; ch < c; ++ch) dshift[i * c + ch] = part_dx[size_t(i * lanes + ch)];
}

namespace ref {
namespace {

std::vector<float> unblocked(int64_t n, int64_t c, int64_t hw, const float* xb) {
  if (!xb) return {};
  std::vector<float> x(size_t(n * c * hw));
  from_channel_blocked(n, c, hw, xb, x.data());
  return x;
}

const float* data_or_null(const std::vector<float>& v) {
  return v.empty() ? nullptr : v.data();
}

}  // namespace

void batch_norm_blocked_forward_train(int64_t n, int64_t c, int64_t hw, const float* x,
                                      const float* gamma, const float* beta, float eps,
                                      float momentum, float* running_mean, float* running_var,
                                      float* y, float* save_mean, float* save_invstd,
                                      const NormTail& tail, const AppliedAffine& applied) {
  const std::vector<float> xc = unblocked(n, c, hw, x), rc = unblocked(n, c, hw, tail.residual);
  std::vector<float> yc(xc.size()), mean(static_cast<size_t>(c)), invstd(static_cast<size_t>(c));
  NormTail tc = tail;
  tc.residual = data_or_null(rc);
  ref::batch_norm2d_forward_train(n, c, hw, xc.data(), gamma, beta, eps, momentum, running_mean,
                                  running_var, yc.data(), mean.data(), invstd.data(), tc);
  to_channel_blocked(n, c, hw, yc.data(), y);
  for (int64_t ch = 0; ch < c; ++ch) {
    const float scale = invstd[size_t(ch)] * (gamma ? gamma[ch] : 1.0f);
    if (save_mean) save_mean[ch] = mean[size_t(ch)];
    if (save_invstd) save_invstd[ch] = invstd[size_t(ch)];
    if (applied.scale) applied.scale[ch] = scale;
    if (applied.shift) applied.shift[ch] = (beta ? beta[ch] : 0.0f) - mean[size_t(ch)] * scale;
  }
}

void batch_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, const float* x, const float* dy,
                                 const float* gamma, const float* save_mean,
                                 const float* save_invstd, float* dx, float* dgamma, float* dbeta,
                                 const ReluGradMask& relu_in) {
  // A mask from x: the ReLU's output recomputed, then the mask from y as below.
  const int64_t blocks = channel_blocks(c);
  std::vector<float> y_from_x, masked_from_x;
  ReluGradMask relu = relu_in;
  if (relu.x_scale) {
    y_from_x.resize(size_t(n * blocks * hw * kB));
    masked_from_x.resize(y_from_x.size());
    for (int64_t i = 0; i < n * blocks; ++i)
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t l = 0; l < kB; ++l) {
          const int64_t ch = i % blocks * kB + l, at = (i * hw + p) * kB + l;
          const float z = ch < c ? std::fma(x[at], relu.x_scale[ch], relu.x_shift[ch]) : 0.0f;
          y_from_x[size_t(at)] = z > 0.0f ? z : 0.0f;
        }
    relu = {y_from_x.data(), masked_from_x.data()};
  }
  const std::vector<float> xc = unblocked(n, c, hw, x), dyc = unblocked(n, c, hw, dy),
                           yc = unblocked(n, c, hw, relu.y);
  std::vector<float> dxc(xc.size()), masked(relu.y ? xc.size() : 0);
  ref::batch_norm2d_backward(n, c, hw, xc.data(), dyc.data(), gamma, save_mean, save_invstd,
                             dxc.data(), dgamma, dbeta,
                             ReluGradMask{data_or_null(yc), relu.y ? masked.data() : nullptr});
  to_channel_blocked(n, c, hw, dxc.data(), dx);
  if (relu.y) to_channel_blocked(n, c, hw, masked.data(), relu.masked_dy);
}

namespace {
NormTail act_tail(Activation act) {
  switch (act) {
    case Activation::none:
      break;
    case Activation::relu:
      return {nullptr, true, ActFn::relu};
    case Activation::silu:
      return {nullptr, true, ActFn::silu};
    case Activation::gelu:
      return {nullptr, true, ActFn::gelu};
  }
  return {};
}

// x + shift, channel-major.
std::vector<float> shifted(int64_t n, int64_t c, int64_t hw, const float* x, const float* shift) {
  std::vector<float> xc = unblocked(n, c, hw, x);
  for (int64_t i = 0; i < n * c && shift; ++i)
    for (int64_t p = 0; p < hw; ++p) xc[size_t(i * hw + p)] += shift[i];
  return xc;
}
}  // namespace

void group_norm_blocked_forward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                const float* shift, const float* gamma, const float* beta,
                                float eps, Activation act, float* y, float* save_mean,
                                float* save_rstd) {
  const std::vector<float> xc = shifted(n, c, hw, x, shift);
  std::vector<float> yc(xc.size());
  ref::group_norm_forward(n, c, hw, groups, xc.data(), gamma, beta, eps, yc.data(), save_mean,
                          save_rstd, act_tail(act));
  to_channel_blocked(n, c, hw, yc.data(), y);
}

void group_norm_blocked_backward(int64_t n, int64_t c, int64_t hw, int64_t groups, const float* x,
                                 const float* shift, const float* dy, const float* gamma,
                                 const float* beta, Activation act, const float* save_mean,
                                 const float* save_rstd, float* dx, float* dshift, float* dgamma,
                                 float* dbeta) {
  const std::vector<float> xc = shifted(n, c, hw, x, shift), dyc = unblocked(n, c, hw, dy);
  std::vector<float> dxc(xc.size());
  ref::group_norm_backward(n, c, hw, groups, xc.data(), dyc.data(), gamma, save_mean, save_rstd,
                           dxc.data(), dgamma, dbeta, act_tail(act), beta);
  to_channel_blocked(n, c, hw, dxc.data(), dx);
  for (int64_t i = 0; i < n * c && dshift; ++i) {
    double sum = 0.0;
    for (int64_t p = 0; p < hw; ++p) sum += dxc[size_t(i * hw + p)];
    dshift[i] = float(sum);
  }
}

}  // namespace ref
}  // namespace duet::kernels
