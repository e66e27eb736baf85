// permute / strided_copy compare cases: transposes (blocked tile path) with tails, NCHW<->NHWC,
// 3-d and 6-d permutations, identity, and strided views (slices, broadcast, negative strides).
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/permute.h"
#include "duet/tensor/error.h"

namespace {

using Dims = std::vector<int64_t>;

std::string dims_label(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += duet::str(i ? "," : "", d[i]);
  return s + "]";
}

int64_t numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

void add_permute(const Dims& shape, const Dims& perm) {
  const int64_t n = numel(shape);
  duet::test::add_kernel_case(
      {duet::str("permute/", dims_label(shape), "/", dims_label(perm)), double(n), 0, 0, [=] {
         auto x = duet::test::random_vector(size_t(n), 60 + size_t(n));
         return [=](bool fast, std::vector<float>& res) {
           res.assign(size_t(n), -7.0f);
           (fast ? duet::kernels::permute : duet::kernels::ref::permute)(
               int(shape.size()), shape.data(), perm.data(), x.data(), res.data());
         };
       }});
}

// Reads a buffer of `buffer` floats at `start` with the given view shape and strides.
void add_strided(const std::string& what, int64_t buffer, int64_t start, const Dims& shape,
                 const Dims& strides) {
  const int64_t n = numel(shape);
  duet::test::add_kernel_case(
      {duet::str("permute/strided_copy/", what, "/", dims_label(shape), dims_label(strides)),
       double(n), 0, 0, [=] {
         auto x = duet::test::random_vector(size_t(buffer), 70);
         return [=](bool fast, std::vector<float>& res) {
           res.assign(size_t(n), -7.0f);
           (fast ? duet::kernels::strided_copy : duet::kernels::ref::strided_copy)(
               int(shape.size()), shape.data(), strides.data(), x.data() + start, res.data());
         };
       }});
}

duet::test::Register reg([] {
  add_permute({7, 13}, {1, 0});
  add_permute({128, 127}, {1, 0});
  add_permute({1, 5}, {1, 0});
  add_permute({5, 1}, {1, 0});
  add_permute({2, 3, 13, 24}, {0, 1, 3, 2});
  add_permute({2, 3, 13, 24}, {0, 2, 3, 1});  // NCHW -> NHWC
  add_permute({2, 13, 24, 3}, {0, 3, 1, 2});  // NHWC -> NCHW
  add_permute({3, 5, 7}, {2, 0, 1});
  add_permute({3, 5, 7}, {1, 2, 0});
  add_permute({3, 5, 7}, {2, 1, 0});
  add_permute({3, 5, 7}, {0, 1, 2});
  add_permute({2, 3, 1, 4, 5, 2}, {5, 3, 1, 0, 2, 4});
  add_permute({2, 4, 127, 16}, {0, 2, 1, 3});  // attention heads <-> sequence
  add_permute({4, 64, 32, 32}, {0, 2, 3, 1});
  add_permute({512, 1024}, {1, 0});
  add_strided("slice", 200, 3, {5, 7}, {20, 2});
  add_strided("broadcast", 13, 0, {7, 13}, {0, 1});
  add_strided("broadcast_col", 7, 0, {7, 13}, {1, 0});
  add_strided("flip", 127, 126, {127}, {-1});
  add_strided("flip2d", 35, 34, {5, 7}, {-7, -1});
  add_strided("transposed_slice", 1000, 1, {9, 13}, {1, 70});
  add_strided("mixed3d", 2000, 5, {3, 4, 5}, {1, 300, 12});
  add_strided("scalar", 4, 2, {}, {});
});

}  // namespace
