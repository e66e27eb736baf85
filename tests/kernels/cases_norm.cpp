// norm compare cases: batch norm (train forward with running stats, eval forward, backward),
// group norm and layer norm (forward and backward), with and without affine, fast vs the double
// twin. Channels 1, 3, 7, 13, 24; plane/row lengths 1, 5, 127, 128 and larger. Backward cases
// start from the reference's saved statistics. Perf "GFLOP/s" = giga-elements per second.
#include <limits>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/norm.h"

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

void add_bn(int64_t n, int64_t c, int64_t hw, bool affine) {
  const std::string tag = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(hw) +
                          (affine ? "/affine" : "/plain");
  const size_t sz = size_t(n * c * hw), cs = size_t(c);
  const double elems = double(sz);
  // Plain, and with each fused tail: the ReLU alone (about half the outputs clip to zero), a
  // residual alone, both.
  for (int mode = 0; mode < 4; ++mode) {
    const bool with_residual = mode & 1, relu = mode & 2;
    const std::string name = tag + (with_residual ? "/residual" : "") + (relu ? "/relu" : "");
    duet::test::add_kernel_case(
        {"batch_norm/train/" + name, elems, 1e-5, 1e-4, [=] {
           // An offset mean checks the two-pass variance.
           auto x = random_vector(sz, 100 + sz, 1.0f, 4.0f);
           auto g = random_vector(cs, 101, 0.5f, 1.5f), b = random_vector(cs, 102);
           auto rm = random_vector(cs, 103), rv = random_vector(cs, 104, 0.5f, 2.0f);
           auto res = random_vector(sz, 105 + sz);
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> y(sz, kNaN), sm(cs, kNaN), si(cs, kNaN), m = rm, v = rv;
             const k::NormTail tail{with_residual ? res.data() : nullptr, relu, k::ActFn::relu};
             (fast ? k::batch_norm2d_forward_train : k::ref::batch_norm2d_forward_train)(
                 n, c, hw, x.data(), opt(g, affine), opt(b, affine), 1e-5f, 0.1f, m.data(),
                 v.data(), y.data(), sm.data(), si.data(), tail);
             out = y;
             append(out, sm);
             append(out, si);
             append(out, m);
             append(out, v);
           };
         }});
    duet::test::add_kernel_case(
        {"batch_norm/eval/" + name, elems, 1e-5, 1e-4, [=] {
           auto x = random_vector(sz, 110 + sz, -2.0f, 2.0f);
           auto g = random_vector(cs, 111, 0.5f, 1.5f), b = random_vector(cs, 112);
           auto rm = random_vector(cs, 113), rv = random_vector(cs, 114, 0.5f, 2.0f);
           auto res = random_vector(sz, 115 + sz);
           return [=](bool fast, std::vector<float>& out) {
             out.assign(sz, kNaN);
             const k::NormTail tail{with_residual ? res.data() : nullptr, relu, k::ActFn::relu};
             (fast ? k::batch_norm2d_forward_eval : k::ref::batch_norm2d_forward_eval)(
                 n, c, hw, x.data(), opt(g, affine), opt(b, affine), rm.data(), rv.data(), 1e-5f,
                 out.data(), tail);
           };
         }});
  }
  // Plain, and with the fused tail's ReLU mask (dy is the gradient of relu(bn(x) + residual);
  // its output, about half of it clipped to exactly zero, decides where the gradient passes).
  for (bool relu : {false, true})
    duet::test::add_kernel_case(
        {"batch_norm/bwd/" + tag + (relu ? "/relu" : ""), elems, 1e-5, 1e-3, [=] {
           auto x = random_vector(sz, 120 + sz, 1.0f, 4.0f);
           auto dy = random_vector(sz, 121 + sz);
           auto g = random_vector(cs, 122, 0.5f, 1.5f);
           auto relu_out = random_vector(sz, 123 + sz);
           for (float& v : relu_out) v = v > 0.0f ? v : 0.0f;
           std::vector<float> y(sz), sm(cs), si(cs);
           k::ref::batch_norm2d_forward_train(n, c, hw, x.data(), nullptr, nullptr, 1e-5f, 0.1f,
                                              nullptr, nullptr, y.data(), sm.data(), si.data());
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> dx(sz, kNaN), dg(cs, kNaN), db(cs, kNaN), masked(sz, kNaN);
             const k::ReluGradMask mask{relu ? relu_out.data() : nullptr,
                                        relu ? masked.data() : nullptr};
             (fast ? k::batch_norm2d_backward : k::ref::batch_norm2d_backward)(
                 n, c, hw, x.data(), dy.data(), opt(g, affine), sm.data(), si.data(), dx.data(),
                 affine ? dg.data() : nullptr, affine ? db.data() : nullptr, mask);
             out = dx;
             if (relu) append(out, masked);
             if (affine) {
               append(out, dg);
               append(out, db);
             }
           };
         }});
}

void add_gn(int64_t n, int64_t c, int64_t hw, int64_t groups, bool affine) {
  const std::string tag = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(hw) +
                          "/g" + std::to_string(groups) + (affine ? "/affine" : "/plain");
  const size_t sz = size_t(n * c * hw), cs = size_t(c), st = size_t(n * groups);
  // Plain, and with the fused SiLU tail (ops::group_norm's act).
  for (bool silu : {false, true}) {
    const std::string name = tag + (silu ? "/silu" : "");
    const k::NormTail tail{nullptr, silu, k::ActFn::silu};
    duet::test::add_kernel_case({"group_norm/fwd/" + name, double(sz), 1e-5, 1e-4, [=] {
                                   auto x = random_vector(sz, 130 + sz, -1.0f, 3.0f);
                                   auto g = random_vector(cs, 131, 0.5f, 1.5f),
                                        b = random_vector(cs, 132);
                                   return [=](bool fast, std::vector<float>& out) {
                                     std::vector<float> y(sz, kNaN), sm(st, kNaN), sr(st, kNaN);
                                     (fast ? k::group_norm_forward : k::ref::group_norm_forward)(
                                         n, c, hw, groups, x.data(), opt(g, affine), opt(b, affine),
                                         1e-5f, y.data(), sm.data(), sr.data(), tail);
                                     out = y;
                                     append(out, sm);
                                     append(out, sr);
                                   };
                                 }});
    // dy is the gradient of silu(z): the kernel recomputes z from x, the statistics, gamma and
    // beta.
    duet::test::add_kernel_case(
        {"group_norm/bwd/" + name, double(sz), 1e-5, 1e-3, [=] {
           auto x = random_vector(sz, 140 + sz, -1.0f, 3.0f);
           auto dy = random_vector(sz, 141 + sz);
           auto g = random_vector(cs, 142, 0.5f, 1.5f), b = random_vector(cs, 143);
           std::vector<float> y(sz), sm(st), sr(st);
           k::ref::group_norm_forward(n, c, hw, groups, x.data(), nullptr, nullptr, 1e-5f, y.data(),
                                      sm.data(), sr.data());
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> dx(sz, kNaN), dg(cs, kNaN), db(cs, kNaN);
             (fast ? k::group_norm_backward : k::ref::group_norm_backward)(
                 n, c, hw, groups, x.data(), dy.data(), opt(g, affine), sm.data(), sr.data(),
                 dx.data(), affine ? dg.data() : nullptr, affine ? db.data() : nullptr, tail,
                 opt(b, affine));
             out = dx;
             if (affine) {
               append(out, dg);
               append(out, db);
             }
           };
         }});
  }
  // The statistics alone against those the reference forward saves.
  if (affine)
    duet::test::add_kernel_case(
        {"group_norm/stats/" + tag, double(sz), 1e-5, 1e-4, [=] {
           auto x = random_vector(sz, 150 + sz, -1.0f, 3.0f);
           return [=](bool fast, std::vector<float>& out) {
             std::vector<float> y(sz), sm(st, kNaN), sr(st, kNaN);
             if (fast)
               k::group_norm_stats(n, c, hw, groups, x.data(), 1e-5f, sm.data(), sr.data());
             else
               k::ref::group_norm_forward(n, c, hw, groups, x.data(), nullptr, nullptr, 1e-5f,
                                          y.data(), sm.data(), sr.data());
             out = sm;
             append(out, sr);
           };
         }});
}

void add_ln(int64_t rows, int64_t d, bool affine) {
  const std::string tag =
      std::to_string(rows) + "x" + std::to_string(d) + (affine ? "/affine" : "/plain");
  const size_t sz = size_t(rows * d), ds = size_t(d), rs = size_t(rows);
  duet::test::add_kernel_case({"layer_norm/fwd/" + tag, double(sz), 1e-5, 1e-4, [=] {
                                 auto x = random_vector(sz, 150 + sz, -1.0f, 3.0f);
                                 auto g = random_vector(ds, 151, 0.5f, 1.5f),
                                      b = random_vector(ds, 152);
                                 return [=](bool fast, std::vector<float>& out) {
                                   std::vector<float> y(sz, kNaN), sm(rs, kNaN), sr(rs, kNaN);
                                   (fast ? k::layer_norm_forward : k::ref::layer_norm_forward)(
                                       rows, d, x.data(), opt(g, affine), opt(b, affine), 1e-5f,
                                       y.data(), sm.data(), sr.data());
                                   out = y;
                                   append(out, sm);
                                   append(out, sr);
                                 };
                               }});
  duet::test::add_kernel_case({"layer_norm/bwd/" + tag, double(sz), 1e-5, 1e-3, [=] {
                                 auto x = random_vector(sz, 160 + sz, -1.0f, 3.0f);
                                 auto dy = random_vector(sz, 161 + sz);
                                 auto g = random_vector(ds, 162, 0.5f, 1.5f);
                                 std::vector<float> y(sz), sm(rs), sr(rs);
                                 k::ref::layer_norm_forward(rows, d, x.data(), nullptr, nullptr,
                                                            1e-5f, y.data(), sm.data(), sr.data());
                                 return [=](bool fast, std::vector<float>& out) {
                                   std::vector<float> dx(sz, kNaN), dg(ds, kNaN), db(ds, kNaN);
                                   (fast ? k::layer_norm_backward : k::ref::layer_norm_backward)(
                                       rows, d, x.data(), dy.data(), opt(g, affine), sm.data(),
                                       sr.data(), dx.data(), affine ? dg.data() : nullptr,
                                       affine ? db.data() : nullptr);
                                   out = dx;
                                   if (affine) {
                                     append(out, dg);
                                     append(out, db);
                                   }
                                 };
                               }});
}

duet::test::Register reg([] {
  for (bool affine : {true, false}) {
    add_bn(2, 1, 1, affine);
    add_bn(3, 3, 5, affine);
    add_bn(2, 7, 127, affine);
    add_bn(4, 13, 128, affine);
    add_bn(16, 13, 1, affine);  // [N, C] input (BatchNorm1d-like)
    add_bn(8, 24, 1024, affine);
    add_gn(2, 1, 5, 1, affine);
    add_gn(2, 3, 127, 1, affine);
    add_gn(2, 3, 128, 3, affine);
    add_gn(3, 24, 25, 8, affine);
    add_gn(2, 24, 1, 6, affine);
    add_gn(1, 13, 7, 13, affine);
    add_gn(4, 64, 256, 32, affine);
    add_ln(1, 1, affine);
    add_ln(3, 5, affine);
    add_ln(7, 127, affine);
    add_ln(13, 128, affine);
    add_ln(24, 768, affine);
    add_ln(300, 64, affine);
  }
});

}  // namespace
