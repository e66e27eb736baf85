// upsample compare cases: nearest-neighbour upsampling by integer factors (equal, unequal and
// 1) forward and backward, fast vs the per-output-pixel twin, on widths 1, 5, 127, 128.
#include <limits>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/upsample.h"

namespace {

namespace k = duet::kernels;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void add_up(int64_t n, int64_t c, int64_t h, int64_t w, int64_t sh, int64_t sw) {
  const std::string tag = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) +
                          "x" + std::to_string(w) + "/s" + std::to_string(sh) + "x" +
                          std::to_string(sw);
  const size_t in = size_t(n * c * h * w), on = in * size_t(sh * sw);
  duet::test::add_kernel_case({"upsample_nearest/fwd/" + tag, double(on), 0, 0, [=] {
                                 auto x = duet::test::random_vector(in, 300 + in);
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(on, kNaN);
                                   (fast ? k::upsample_nearest2d_forward
                                         : k::ref::upsample_nearest2d_forward)(
                                       n, c, h, w, sh, sw, x.data(), out.data());
                                 };
                               }});
  duet::test::add_kernel_case({"upsample_nearest/bwd/" + tag, double(on), 1e-6, 1e-5, [=] {
                                 auto dy = duet::test::random_vector(on, 310 + on);
                                 return [=](bool fast, std::vector<float>& out) {
                                   out.assign(in, kNaN);
                                   (fast ? k::upsample_nearest2d_backward
                                         : k::ref::upsample_nearest2d_backward)(
                                       n, c, h, w, sh, sw, dy.data(), out.data());
                                 };
                               }});
}

duet::test::Register reg([] {
  add_up(1, 1, 1, 1, 2, 2);
  add_up(2, 3, 5, 5, 2, 2);
  add_up(1, 7, 3, 127, 3, 1);
  add_up(2, 13, 4, 128, 2, 3);
  add_up(2, 24, 16, 16, 2, 2);
  add_up(1, 3, 5, 5, 1, 1);
});

}  // namespace
