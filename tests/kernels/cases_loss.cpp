// loss compare cases: cross-entropy (loss and dlogits, label smoothing 0 and 0.1, classes 1 to
// 1000, batches 1 to 300 so several row blocks run on different threads) and MSE forward and
// backward, fast vs the double twin.
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/loss.h"

namespace {

namespace k = duet::kernels;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void add_ce(int64_t n, int64_t c, float eps) {
  const std::string tag =
      std::to_string(n) + "x" + std::to_string(c) + "/ls" + std::to_string(int(eps * 100 + 0.5f));
  const size_t sz = size_t(n * c);
  duet::test::add_kernel_case({"cross_entropy/" + tag, double(sz), 1e-6, 1e-5, [=] {
                                 auto x = duet::test::random_vector(sz, 70 + sz, -6.0f, 6.0f);
                                 auto u = duet::test::random_vector(size_t(n), 80 + n, 0.0f, 1.0f);
                                 std::vector<int32_t> t(static_cast<size_t>(n));
                                 for (int64_t i = 0; i < n; ++i)
                                   t[i] = std::min<int32_t>(int32_t(c - 1), int32_t(u[i] * c));
                                 return [=](bool fast, std::vector<float>& out) {
                                   std::vector<float> d(sz, kNaN);
                                   const float loss =
                                       (fast ? k::cross_entropy : k::ref::cross_entropy)(
                                           n, c, x.data(), t.data(), eps, 0.7f, d.data());
                                   out.assign(1, loss);
                                   out.insert(out.end(), d.begin(), d.end());
                                 };
                               }});
}

void add_mse(int64_t n) {
  const size_t sz = size_t(n);
  duet::test::add_kernel_case({"mse/n" + std::to_string(n), double(n), 1e-7, 1e-5, [=] {
                                 auto a = duet::test::random_vector(sz, 90 + n, -3.0f, 3.0f);
                                 auto b = duet::test::random_vector(sz, 91 + n);
                                 return [=](bool fast, std::vector<float>& out) {
                                   std::vector<float> da(sz, kNaN), db(sz, kNaN);
                                   const float l = (fast ? k::mse_forward : k::ref::mse_forward)(
                                       n, a.data(), b.data());
                                   (fast ? k::mse_backward : k::ref::mse_backward)(
                                       n, a.data(), b.data(), 1.3f, da.data(), db.data());
                                   out.assign(1, l);
                                   out.insert(out.end(), da.begin(), da.end());
                                   out.insert(out.end(), db.begin(), db.end());
                                 };
                               }});
}

duet::test::Register reg([] {
  for (float eps : {0.0f, 0.1f}) {
    add_ce(1, 1, eps);
    add_ce(3, 5, eps);
    add_ce(7, 10, eps);
    add_ce(13, 127, eps);
    add_ce(24, 128, eps);
    add_ce(300, 1000, eps);
  }
  for (int64_t n : {1, 5, 127, 128, 100003}) add_mse(n);
});

}  // namespace
