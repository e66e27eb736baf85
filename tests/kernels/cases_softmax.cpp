// softmax compare cases: softmax and log_softmax forward and backward over the last dimension,
// fast vs the double twin, with row lengths 1, 5, 127, 128 and a wide one, row counts 1 to 256
// (enough to split over threads). Backward cases start from the reference's forward output.
#include <limits>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/softmax.h"

namespace {

namespace k = duet::kernels;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void add_softmax(int64_t rows, int64_t cols) {
  const std::string tag = std::to_string(rows) + "x" + std::to_string(cols);
  const size_t n = size_t(rows * cols);
  const double elems = double(n);
  for (bool log : {false, true}) {
    const std::string fam = log ? "log_softmax" : "softmax";
    duet::test::add_kernel_case(
        {fam + "/fwd/" + tag, elems, 1e-6, 1e-5, [=] {
           auto x = duet::test::random_vector(n, 40 + n, -8.0f, 8.0f);
           return [=](bool fast, std::vector<float>& out) {
             out.assign(n, kNaN);
             auto fn = log ? (fast ? k::log_softmax_forward : k::ref::log_softmax_forward)
                           : (fast ? k::softmax_forward : k::ref::softmax_forward);
             fn(rows, cols, x.data(), out.data());
           };
         }});
    duet::test::add_kernel_case(
        {fam + "/bwd/" + tag, elems, 1e-6, 1e-4, [=] {
           auto x = duet::test::random_vector(n, 50 + n, -8.0f, 8.0f);
           auto dy = duet::test::random_vector(n, 60 + n);
           std::vector<float> y(n);
           (log ? k::ref::log_softmax_forward : k::ref::softmax_forward)(rows, cols, x.data(),
                                                                         y.data());
           return [=](bool fast, std::vector<float>& out) {
             out.assign(n, kNaN);
             auto fn = log ? (fast ? k::log_softmax_backward : k::ref::log_softmax_backward)
                           : (fast ? k::softmax_backward : k::ref::softmax_backward);
             fn(rows, cols, y.data(), dy.data(), out.data());
           };
         }});
  }
}

duet::test::Register reg([] {
  add_softmax(1, 1);
  add_softmax(3, 5);
  add_softmax(7, 127);
  add_softmax(13, 128);
  add_softmax(24, 1000);
  add_softmax(256, 10);
  add_softmax(512, 257);
});

}  // namespace
