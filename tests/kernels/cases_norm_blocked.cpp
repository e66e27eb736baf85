// Channel-blocked batch and group norm compare cases (kernels/norm_blocked.h) against the
// channel-major double twins on the same values: batch norm's train forward with each fused tail,
// eval forward, backward with and without the ReLU mask, and eval mode's backward against a plain
// loop; group norm's forward and backward with each activation, with groups inside one block,
// groups that span blocks and groups that straddle a block boundary. Channels 3 and 24 leave
// padding lanes (which both sides must keep zero), 16 and 32 fill whole blocks; odd pixel counts
// meet the passes' two-accumulator tails.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/norm_blocked.h"

namespace {

namespace k = duet::kernels;
using duet::test::random_vector;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void append(std::vector<float>& out, const std::vector<float>& v) {
  out.insert(out.end(), v.begin(), v.end());
}
const float* opt(const std::vector<float>& v, bool on) {
  return on ? v.data() : nullptr;
}

// Blocked copies of channel-major values.
std::vector<float> blocked(int64_t n, int64_t c, int64_t hw, const std::vector<float>& x) {
  std::vector<float> b(size_t(n * k::channel_blocks(c) * hw * k::kChannelBlock));
  k::to_channel_blocked(n, c, hw, x.data(), b.data());
  return b;
}

void add_bn_blocked(int64_t n, int64_t c, int64_t hw, bool affine) {
  const std::string tag = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(hw) +
                          (affine ? "/affine" : "/plain");
  const size_t sz = size_t(n * c * hw), cs = size_t(c);
  const size_t bz = size_t(n * k::channel_blocks(c) * hw * k::kChannelBlock);
  for (int mode = 0; mode < 4; ++mode) {
    const bool with_residual = mode & 1, relu = mode & 2;
    const std::string name = tag + (with_residual ? "/residual" : "") + (relu ? "/relu" : "");
    duet::test::add_kernel_case(
        {"batch_norm_blocked/train/" + name, double(sz), 1e-5, 1e-4, [=] {
           // An offset mean checks the two-pass variance.
           auto x = random_vector(sz, 200 + sz, 1.0f, 4.0f);
           auto g = random_vector(cs, 201, 0.5f, 1.5f), b = random_vector(cs, 202);
           auto rm = random_vector(cs, 203), rv = random_vector(cs, 204, 0.5f, 2.0f);
           auto res = random_vector(sz, 205 + sz);
           const auto xb = blocked(n, c, hw, x), resb = blocked(n, c, hw, res);
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> y(bz, kNaN), sm(cs, kNaN), si(cs, kNaN), m = rm, v = rv;
             std::vector<float> scale(cs, kNaN), shift(cs, kNaN);
             const k::NormTail tail{with_residual ? resb.data() : nullptr, relu, k::ActFn::relu};
             (fast ? k::batch_norm_blocked_forward_train
                   : k::ref::batch_norm_blocked_forward_train)(
                 n, c, hw, xb.data(), opt(g, affine), opt(b, affine), 1e-5f, 0.1f, m.data(),
                 v.data(), y.data(), sm.data(), si.data(), tail,
                 k::AppliedAffine{scale.data(), shift.data()});
             out = y;
             for (const auto* part : {&sm, &si, &m, &v, &scale, &shift}) append(out, *part);
           };
         }});
    duet::test::add_kernel_case(
        {"batch_norm_blocked/eval/" + name, double(sz), 1e-5, 1e-4, [=] {
           auto x = random_vector(sz, 210 + sz, -2.0f, 2.0f);
           auto g = random_vector(cs, 211, 0.5f, 1.5f), b = random_vector(cs, 212);
           auto rm = random_vector(cs, 213), rv = random_vector(cs, 214, 0.5f, 2.0f);
           auto res = random_vector(sz, 215 + sz);
           const auto xb = blocked(n, c, hw, x), resb = blocked(n, c, hw, res);
           return [=](bool fast, std::vector<float>& out) {
             out.assign(bz, kNaN);
             if (fast) {
               const k::NormTail tail{with_residual ? resb.data() : nullptr, relu, k::ActFn::relu};
               k::batch_norm_blocked_forward_eval(n, c, hw, xb.data(), opt(g, affine),
                                                  opt(b, affine), rm.data(), rv.data(), 1e-5f,
                                                  out.data(), tail);
               return;
             }
             std::vector<float> y(sz);
             const k::NormTail tail{with_residual ? res.data() : nullptr, relu, k::ActFn::relu};
             k::ref::batch_norm2d_forward_eval(n, c, hw, x.data(), opt(g, affine), opt(b, affine),
                                               rm.data(), rv.data(), 1e-5f, y.data(), tail);
             k::to_channel_blocked(n, c, hw, y.data(), out.data());
           };
         }});
  }
  // A ReLU tail without residual whose mask the backward recomputes from x: the forward's own
  // scale and shift put about half of the values below zero.
  duet::test::add_kernel_case(
      {"batch_norm_blocked/bwd/" + tag + "/relu_from_x", double(sz), 1e-5, 1e-3, [=] {
         auto x = random_vector(sz, 240 + sz, 1.0f, 4.0f);
         auto dy = random_vector(sz, 241 + sz);
         auto g = random_vector(cs, 242, 0.5f, 1.5f), beta = random_vector(cs, 243, -0.5f, 0.5f);
         const auto xb = blocked(n, c, hw, x), dyb = blocked(n, c, hw, dy);
         std::vector<float> yb(bz), sm(cs), si(cs), scale(cs), shift(cs);
         k::batch_norm_blocked_forward_train(
             n, c, hw, xb.data(), opt(g, affine), opt(beta, affine), 1e-5f, 0.1f, nullptr, nullptr,
             yb.data(), sm.data(), si.data(), {nullptr, true}, {scale.data(), shift.data()});
         return [=](bool fast, std::vector<float>& out) {
           std::vector<float> dx(bz, kNaN), dg(cs, kNaN), db(cs, kNaN);
           k::ReluGradMask mask;
           mask.x_scale = scale.data();
           mask.x_shift = shift.data();
           float* dgp = affine ? dg.data() : nullptr;
           float* dbp = affine ? db.data() : nullptr;
           if (fast)
             k::batch_norm_blocked_backward(n, c, hw, xb.data(), dyb.data(), opt(g, affine),
                                            sm.data(), si.data(), dx.data(), dgp, dbp, mask);
           else
             k::ref::batch_norm_blocked_backward(n, c, hw, xb.data(), dyb.data(), opt(g, affine),
                                                 sm.data(), si.data(), dx.data(), dgp, dbp, mask);
           out = dx;
           if (affine) {
             append(out, dg);
             append(out, db);
           }
         };
       }});
  for (bool relu : {false, true}) {
    const std::string name = tag + (relu ? "/relu" : "");
    duet::test::add_kernel_case(
        {"batch_norm_blocked/bwd/" + name, double(sz), 1e-5, 1e-3, [=] {
           auto x = random_vector(sz, 220 + sz, 1.0f, 4.0f);
           auto dy = random_vector(sz, 221 + sz);
           auto g = random_vector(cs, 222, 0.5f, 1.5f);
           auto relu_out = random_vector(sz, 223 + sz);
           for (float& v : relu_out) v = v > 0.0f ? v : 0.0f;
           std::vector<float> y(sz), sm(cs), si(cs);
           k::ref::batch_norm2d_forward_train(n, c, hw, x.data(), nullptr, nullptr, 1e-5f, 0.1f,
                                              nullptr, nullptr, y.data(), sm.data(), si.data());
           const auto xb = blocked(n, c, hw, x), dyb = blocked(n, c, hw, dy),
                      relub = blocked(n, c, hw, relu_out);
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> dx(bz, kNaN), dg(cs, kNaN), db(cs, kNaN), masked(bz, kNaN);
             const k::ReluGradMask mask{relu ? relub.data() : nullptr,
                                        relu ? masked.data() : nullptr};
             if (fast)
               k::batch_norm_blocked_backward(
                   n, c, hw, xb.data(), dyb.data(), opt(g, affine), sm.data(), si.data(), dx.data(),
                   affine ? dg.data() : nullptr, affine ? db.data() : nullptr, mask);
             else
               k::ref::batch_norm_blocked_backward(
                   n, c, hw, xb.data(), dyb.data(), opt(g, affine), sm.data(), si.data(), dx.data(),
                   affine ? dg.data() : nullptr, affine ? db.data() : nullptr, mask);
             out = dx;
             if (relu) append(out, masked);
             if (affine) {
               append(out, dg);
               append(out, db);
             }
           };
         }});
    // Eval mode: fixed statistics, so dx = mask(dy) gamma invstd; dgamma and dbeta as in training.
    duet::test::add_kernel_case(
        {"batch_norm_blocked/bwd_eval/" + name, double(sz), 1e-5, 1e-3, [=] {
           auto x = random_vector(sz, 230 + sz, -2.0f, 2.0f);
           auto dy = random_vector(sz, 231 + sz);
           auto g = random_vector(cs, 232, 0.5f, 1.5f), rm = random_vector(cs, 233);
           auto rv = random_vector(cs, 234, 0.5f, 2.0f);
           auto relu_out = random_vector(sz, 235 + sz);
           for (float& v : relu_out) v = v > 0.0f ? v : 0.0f;
           std::vector<float> invstd(cs);
           for (size_t ch = 0; ch < cs; ++ch) invstd[ch] = 1.0f / std::sqrt(rv[ch] + 1e-5f);
           const auto xb = blocked(n, c, hw, x), dyb = blocked(n, c, hw, dy),
                      relub = blocked(n, c, hw, relu_out);
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> dx(bz, kNaN), dg(cs, 0.0f), db(cs, 0.0f);
             if (fast) {
               std::vector<float> masked(bz, kNaN);
               k::batch_norm_blocked_backward(
                   n, c, hw, xb.data(), dyb.data(), opt(g, affine), rm.data(), invstd.data(),
                   dx.data(), dg.data(), db.data(),
                   k::ReluGradMask{relu ? relub.data() : nullptr, relu ? masked.data() : nullptr},
                   false);
             } else {
               std::vector<double> sg(cs, 0.0), sb(cs, 0.0);
               std::vector<float> d(sz);
               for (int64_t i = 0; i < n; ++i)
                 for (int64_t ch = 0; ch < c; ++ch)
                   for (int64_t p = 0; p < hw; ++p) {
                     const size_t e = size_t((i * c + ch) * hw + p);
                     const double gv = relu && relu_out[e] <= 0.0f ? 0.0 : double(dy[e]);
                     const double gamma = affine ? g[size_t(ch)] : 1.0;
                     d[e] = float(gv * gamma * invstd[size_t(ch)]);
                     sb[size_t(ch)] += gv;
                     sg[size_t(ch)] += gv * (x[e] - rm[size_t(ch)]) * invstd[size_t(ch)];
                   }
               k::to_channel_blocked(n, c, hw, d.data(), dx.data());
               for (size_t ch = 0; ch < cs; ++ch) {
                 dg[ch] = float(sg[ch]);
                 db[ch] = float(sb[ch]);
               }
             }
             out = dx;
             append(out, dg);
             append(out, db);
           };
         }});
  }
}

const char* act_name(k::Activation act) {
  switch (act) {
    case k::Activation::none:
      return "none";
    case k::Activation::relu:
      return "relu";
    case k::Activation::silu:
      return "silu";
    case k::Activation::gelu:
      return "gelu";
  }
  return "?";
}

void add_gn_blocked(int64_t n, int64_t c, int64_t hw, int64_t groups, bool affine,
                    bool with_shift) {
  const size_t sz = size_t(n * c * hw), cs = size_t(c), gs = size_t(n * groups);
  const size_t bz = size_t(n * k::channel_blocks(c) * hw * k::kChannelBlock);
  for (k::Activation act :
       {k::Activation::none, k::Activation::relu, k::Activation::silu, k::Activation::gelu}) {
    const std::string name = std::to_string(n) + "x" + std::to_string(c) + "x" +
                             std::to_string(hw) + "/g" + std::to_string(groups) +
                             (affine ? "/affine/" : "/plain/") + (with_shift ? "shift/" : "") +
                             act_name(act);
    duet::test::add_kernel_case(
        {"group_norm_blocked/fwd/" + name, double(sz), 1e-5, 1e-4, [=] {
           auto x = random_vector(sz, 240 + sz, 1.0f, 4.0f);
           auto g = random_vector(cs, 241, 0.5f, 1.5f);
           auto b = random_vector(cs, 242);
           auto sh = random_vector(size_t(n) * cs, 243, -2.0f, 2.0f);
           const auto xb = blocked(n, c, hw, x);
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> y(bz, kNaN), sm(gs, kNaN), sr(gs, kNaN);
             (fast ? k::group_norm_blocked_forward : k::ref::group_norm_blocked_forward)(
                 n, c, hw, groups, xb.data(), opt(sh, with_shift), opt(g, affine), opt(b, affine),
                 1e-5f, act, y.data(), sm.data(), sr.data());
             out = y;
             append(out, sm);
             append(out, sr);
           };
         }});
    duet::test::add_kernel_case(
        {"group_norm_blocked/bwd/" + name, double(sz), 1e-5, 1e-3, [=] {
           auto x = random_vector(sz, 250 + sz, 1.0f, 4.0f);
           auto dy = random_vector(sz, 251 + sz);
           auto g = random_vector(cs, 252, 0.5f, 1.5f);
           auto b = random_vector(cs, 253);
           auto sh = random_vector(size_t(n) * cs, 254, -2.0f, 2.0f);
           std::vector<float> xs = x;  // the statistics of x + shift
           for (size_t e = 0; e < sz && with_shift; ++e) xs[e] += sh[e / size_t(hw)];
           std::vector<float> y(sz), sm(gs), sr(gs);
           k::ref::group_norm_forward(n, c, hw, groups, xs.data(), nullptr, nullptr, 1e-5f,
                                      y.data(), sm.data(), sr.data());
           const auto xb = blocked(n, c, hw, x), dyb = blocked(n, c, hw, dy);
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> dx(bz, kNaN), dg(cs, kNaN), db(cs, kNaN), ds(size_t(n) * cs, kNaN);
             (fast ? k::group_norm_blocked_backward : k::ref::group_norm_blocked_backward)(
                 n, c, hw, groups, xb.data(), opt(sh, with_shift), dyb.data(), opt(g, affine),
                 opt(b, affine), act, sm.data(), sr.data(), dx.data(),
                 with_shift ? ds.data() : nullptr, affine ? dg.data() : nullptr,
                 affine ? db.data() : nullptr);
             out = dx;
             if (with_shift) append(out, ds);
             if (affine) {
               append(out, dg);
               append(out, db);
             }
           };
         }});
  }
}

const duet::test::Register reg([] {
  for (bool affine : {false, true})
    for (bool shift : {false, true}) {
      add_gn_blocked(2, 32, 49, 8, affine, shift);  // 4 channels a group, 4 groups a block
      add_gn_blocked(3, 64, 13, 2, affine, shift);  // a group spans two blocks
      add_gn_blocked(2, 24, 9, 3, affine, shift);   // 8-channel groups, one straddles blocks
      add_gn_blocked(1, 3, 7, 1, affine, shift);    // one group, padding lanes
      add_gn_blocked(2, 96, 10, 8, affine, shift);  // 12-channel groups: two 3-block units an image
    }
  for (bool affine : {false, true}) {
    add_bn_blocked(3, 3, 5, affine);
    add_bn_blocked(2, 16, 49, affine);
    add_bn_blocked(4, 24, 127, affine);
    add_bn_blocked(8, 32, 196, affine);
  }
});

}  // namespace
