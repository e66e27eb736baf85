// pool compare cases: max pool (values and argmax indices, ties included), average pool
// (count_include_pad) and global average pool, forward and backward, fast vs the tap-by-tap
// twin. Channels 1, 3, 7, 13, 24; widths 1, 5, 127, 128; padding, rectangular windows and
// strides larger than the kernel.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/pool.h"

namespace {

namespace k = duet::kernels;
using duet::test::random_vector;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void add_pool(int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh,
              int64_t sw, int64_t ph, int64_t pw, bool ties = false) {
  k::Pool2dShape s;
  s.batch = n;
  s.channels = c;
  s.in_h = h;
  s.in_w = w;
  s.kernel_h = kh;
  s.kernel_w = kw;
  s.stride_h = sh;
  s.stride_w = sw;
  s.pad_h = ph;
  s.pad_w = pw;
  const std::string tag = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) +
                          "x" + std::to_string(w) + "/k" + std::to_string(kh) + "x" +
                          std::to_string(kw) + "s" + std::to_string(sh) + "x" + std::to_string(sw) +
                          "p" + std::to_string(ph) + "x" + std::to_string(pw) +
                          (ties ? "/ties" : "");
  const size_t in = size_t(n * c * h * w), on = size_t(n * c * s.out_h() * s.out_w());
  const double taps = double(on * kh * kw);
  auto input = [=](uint64_t seed) {
    auto x = random_vector(in, seed, -2.0f, 2.0f);
    // Quantised inputs make equal maxima common, so "first position wins" is exercised.
    if (ties)
      for (auto& v : x) v = std::round(v * 2.0f) / 2.0f;
    return x;
  };
  duet::test::add_kernel_case({"max_pool/fwd/" + tag, taps, 0, 0, [=] {
                                 auto x = input(200 + in);
                                 return [=](bool fast, std::vector<float>& out) {
                                   std::vector<float> y(on, kNaN);
                                   std::vector<int32_t> idx(on, -5);
                                   (fast ? k::max_pool2d_forward : k::ref::max_pool2d_forward)(
                                       s, x.data(), y.data(), idx.data());
                                   out = y;
                                   for (int32_t i : idx) out.push_back(float(i));
                                 };
                               }});
  duet::test::add_kernel_case({"max_pool/bwd/" + tag, double(on), 1e-6, 1e-5, [=] {
                                 auto x = input(210 + in);
                                 auto dy = random_vector(on, 211 + on);
                                 std::vector<float> y(on);
                                 std::vector<int32_t> idx(on);
                                 k::ref::max_pool2d_forward(s, x.data(), y.data(), idx.data());
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(in, kNaN);
                                   (fast ? k::max_pool2d_backward : k::ref::max_pool2d_backward)(
                                       s, dy.data(), idx.data(), out.data());
                                 };
                               }});
  duet::test::add_kernel_case({"avg_pool/fwd/" + tag, taps, 1e-6, 1e-5, [=] {
                                 auto x = input(220 + in);
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(on, kNaN);
                                   (fast ? k::avg_pool2d_forward : k::ref::avg_pool2d_forward)(
                                       s, x.data(), out.data());
                                 };
                               }});
  duet::test::add_kernel_case({"avg_pool/bwd/" + tag, taps, 1e-6, 1e-5, [=] {
                                 auto dy = random_vector(on, 230 + on);
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(in, kNaN);
                                   (fast ? k::avg_pool2d_backward : k::ref::avg_pool2d_backward)(
                                       s, dy.data(), out.data());
                                 };
                               }});
}

void add_gap(int64_t n, int64_t c, int64_t hw) {
  const std::string tag = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(hw);
  const size_t in = size_t(n * c * hw), on = size_t(n * c);
  duet::test::add_kernel_case({"global_avg_pool/fwd/" + tag, double(in), 1e-6, 1e-5, [=] {
                                 auto x = random_vector(in, 240 + in);
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(on, kNaN);
                                   (fast ? k::global_avg_pool_forward
                                         : k::ref::global_avg_pool_forward)(n, c, hw, x.data(),
                                                                            out.data());
                                 };
                               }});
  duet::test::add_kernel_case({"global_avg_pool/bwd/" + tag, double(in), 1e-7, 1e-5, [=] {
                                 auto dy = random_vector(on, 250 + on);
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(in, kNaN);
                                   (fast ? k::global_avg_pool_backward
                                         : k::ref::global_avg_pool_backward)(n, c, hw, dy.data(),
                                                                             out.data());
                                 };
                               }});
}

duet::test::Register reg([] {
  add_pool(1, 1, 1, 1, 1, 1, 1, 1, 0, 0);
  add_pool(2, 3, 5, 5, 2, 2, 2, 2, 0, 0);
  add_pool(1, 7, 127, 5, 3, 3, 2, 2, 1, 1);
  add_pool(2, 13, 8, 128, 3, 3, 1, 1, 1, 1);
  add_pool(2, 24, 32, 32, 2, 2, 2, 2, 0, 0);
  add_pool(2, 24, 32, 32, 2, 2, 2, 2, 0, 0, true);
  add_pool(1, 3, 7, 9, 3, 3, 3, 3, 1, 1, true);
  add_pool(1, 2, 6, 7, 2, 3, 1, 2, 1, 1);
  add_pool(1, 3, 11, 127, 2, 2, 3, 3, 0, 0);  // stride > kernel skips inputs
  add_pool(1, 13, 9, 9, 5, 5, 2, 2, 2, 2);
  add_gap(1, 1, 1);
  add_gap(2, 3, 5);
  add_gap(2, 7, 127);
  add_gap(3, 13, 128);
  add_gap(8, 24, 64);
});

}  // namespace
